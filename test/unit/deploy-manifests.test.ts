/**
 * The Kubernetes manifests of k8s/ (docs/deployment.md "Kubernetes"): each one is valid against the real Kubernetes
 * schemas (kubernetes-models, Kubernetes 1.27 OpenAPI), the kustomization only names files that exist and every
 * ConfigMap/Secret/Service/ServiceAccount it references resolves, the security settings are in place, no secret value
 * lives in git, and the gateway's configuration and policies in the ConfigMaps load with the real loaders.
 *
 * Every check names, in a comment, the mutation of the manifests that makes it fail.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { Model } from '@kubernetes-models/base';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet, type IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import {
  HorizontalPodAutoscaler,
  type IHorizontalPodAutoscaler,
} from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Ingress, type IIngress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { NetworkPolicy, type INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { INetworkPolicyPeer } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer';
import { PodDisruptionBudget, type IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import { Secret, type ISecret } from 'kubernetes-models/v1/Secret';
import { Service, type IService } from 'kubernetes-models/v1/Service';
import { ServiceAccount, type IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { loadPolicyDir } from '../../src/policy/compile.js';
import { CompiledPolicyEngine } from '../../src/policy/engine.js';
import { PolicyReloader, type PolicyReloadOutcome } from '../../src/policy/reloader.js';
import { loadPolicyFixtures, runPolicyFixtures } from '../../src/policy/test-runner.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const k8s = path.join(root, 'k8s');
/**
 * Folders of k8s/ without Kubernetes objects of this part: config/ and policies/ are the inputs of the ConfigMap
 * generators (checked below with the gateway's own loaders); grafana/ belongs to the telemetry part (dashboards).
 */
const NOT_MANIFESTS = new Set(['grafana', 'config', 'policies']);

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

interface LoadedDoc {
  readonly file: string;
  readonly object: K8sObject;
}

// ─── Reading ─────────────────────────────────────────────────────────────────────────────────────────────

function rel(file: string): string {
  return path.relative(root, file);
}

/** Every document of a (multi-document) YAML file; a syntax error fails with the file and line. */
function readDocs(file: string): K8sObject[] {
  const docs = parseAllDocuments(fs.readFileSync(file, 'utf8'), { prettyErrors: true });
  const out: K8sObject[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${rel(file)}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    out.push(value as K8sObject);
  }
  return out;
}

/** All `*.yaml` manifests under k8s/ (not kustomization files, not the config/policy inputs of the ConfigMaps). */
function manifestFiles(dir = k8s): string[] {
  const files: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (dir === k8s && NOT_MANIFESTS.has(entry.name)) continue;
      files.push(...manifestFiles(full));
    } else if (entry.name.endsWith('.yaml') && entry.name !== 'kustomization.yaml') files.push(full);
  }
  return files.sort();
}

interface Kustomization {
  namespace?: string;
  resources?: string[];
  images?: { name: string; newName?: string; newTag?: string; digest?: string }[];
  configMapGenerator?: {
    name: string;
    files?: string[];
    literals?: string[];
    options?: { disableNameSuffixHash?: boolean };
  }[];
  secretGenerator?: unknown[];
}

interface KustomizeTree {
  /** Objects of the `resources` files, recursively through sub-kustomizations. */
  readonly docs: LoadedDoc[];
  /** ConfigMaps made by `configMapGenerator`: name → data keys. */
  readonly generatedConfigMaps: Map<string, string[]>;
  readonly problems: string[];
  readonly kustomizations: { file: string; value: Kustomization }[];
}

/** Resolves a kustomization the way `kubectl apply -k` would read it (files and folders; generators). */
function readKustomization(
  dir: string,
  tree: KustomizeTree = { docs: [], generatedConfigMaps: new Map(), problems: [], kustomizations: [] },
): KustomizeTree {
  const file = path.join(dir, 'kustomization.yaml');
  if (!fs.existsSync(file)) {
    tree.problems.push(`${rel(dir)}: a folder in resources needs a kustomization.yaml`);
    return tree;
  }
  const value = parseYaml(fs.readFileSync(file, 'utf8')) as Kustomization;
  tree.kustomizations.push({ file, value });
  for (const entry of value.resources ?? []) {
    const target = path.join(dir, entry);
    if (!fs.existsSync(target)) tree.problems.push(`${rel(file)}: resource ${entry} does not exist`);
    else if (fs.statSync(target).isDirectory()) readKustomization(target, tree);
    else for (const object of readDocs(target)) tree.docs.push({ file: target, object });
  }
  for (const gen of value.configMapGenerator ?? []) {
    const keys: string[] = [];
    for (const spec of gen.files ?? []) {
      const [key, source] = spec.includes('=') ? (spec.split('=', 2) as [string, string]) : [path.basename(spec), spec];
      if (!fs.existsSync(path.join(dir, source)))
        tree.problems.push(`${rel(file)}: configMapGenerator ${gen.name}: ${source} does not exist`);
      keys.push(key);
    }
    for (const literal of gen.literals ?? []) keys.push(literal.split('=', 1)[0]!);
    tree.generatedConfigMaps.set(gen.name, keys);
  }
  return tree;
}

function must<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) throw new Error(`missing: ${what}`);
  return value;
}

const tree = readKustomization(k8s);
const rootKustomization = must(tree.kustomizations[0], 'k8s/kustomization.yaml').value;
const objects = tree.docs.map((d) => d.object);

function find<T>(kind: string, name: string): T {
  return must(
    objects.find((o) => o.kind === kind && o.metadata.name === name),
    `${kind}/${name} in the kustomization`,
  ) as unknown as T;
}

const gateway = find<IDeployment>('Deployment', 'gatehouse');
const gatewayPod = must(gateway.spec?.template.spec, 'the gateway pod spec');
const gatewayContainer = must(
  gatewayPod.containers.find((c) => c.name === 'gatehouse'),
  'the gatehouse container',
);
const podLabels = must(gateway.spec?.template.metadata?.labels, 'the gateway pod labels');

/** The Secrets the manifests may reference: those documented in secret.example.yaml (created out of band). */
const exampleSecrets = readDocs(path.join(k8s, 'secret.example.yaml')) as unknown as ISecret[];

// ─── The gateway's configuration (k8s/config/gatehouse.yaml), as the pod reads it ───────────────────────

interface RawConfig {
  server?: { port?: number; shutdownTimeoutMs?: number; trustedProxies?: string[]; forwardedClientCertHeader?: string };
  redis?: { url?: unknown };
  limits?: { store?: string };
  sessions?: { keys?: unknown[]; store?: string };
  audit?: { sink?: string };
  telemetry?: { metrics?: { prometheus?: { enabled?: boolean; host?: string; port?: number } } };
  policy?: { dir?: string };
  upstreams?: { name: string; url?: string }[];
}

const configFile = path.join(k8s, 'config', 'gatehouse.yaml');
const config = parseYaml(fs.readFileSync(configFile, 'utf8')) as RawConfig;

/** Paths of every `{ fromFile }` in the raw config. */
function fileRefs(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(fileRefs);
  if (typeof value !== 'object' || value === null) return [];
  const o = value as Record<string, unknown>;
  if (typeof o.fromFile === 'string' && Object.keys(o).length === 1) return [o.fromFile];
  return Object.values(o).flatMap(fileRefs);
}

function envRefs(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(envRefs);
  if (typeof value !== 'object' || value === null) return [];
  const o = value as Record<string, unknown>;
  if (typeof o.fromEnv === 'string' && Object.keys(o).length === 1) return [o.fromEnv];
  return Object.values(o).flatMap(envRefs);
}

// ─── Validation against the Kubernetes schemas ──────────────────────────────────────────────────────────

type ModelClass = new (data: never) => Model<unknown>;
const MODELS: Record<string, ModelClass> = {
  'v1/Namespace': Namespace as unknown as ModelClass,
  'v1/ServiceAccount': ServiceAccount as unknown as ModelClass,
  'v1/Service': Service as unknown as ModelClass,
  'v1/ConfigMap': ConfigMap as unknown as ModelClass,
  'v1/Secret': Secret as unknown as ModelClass,
  'apps/v1/Deployment': Deployment as unknown as ModelClass,
  'apps/v1/StatefulSet': StatefulSet as unknown as ModelClass,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler as unknown as ModelClass,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget as unknown as ModelClass,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy as unknown as ModelClass,
  'networking.k8s.io/v1/Ingress': Ingress as unknown as ModelClass,
};

/** Throws the schema errors of one object (kubernetes-models validates types, required fields and enums). */
function validate(object: K8sObject): void {
  const Model = MODELS[`${object.apiVersion}/${object.kind}`];
  if (Model === undefined) throw new Error(`no schema model for ${object.apiVersion}/${object.kind}: add it to MODELS`);
  new Model(object as never).validate();
}

describe('k8s/ manifests against the Kubernetes schemas', () => {
  const files = manifestFiles();

  it('finds the manifests', () => {
    // Mutation caught: a manifest moved or renamed away (the lists below would silently shrink).
    expect(files.map(rel)).toEqual(
      expect.arrayContaining([
        'k8s/deployment.yaml',
        'k8s/service.yaml',
        'k8s/hpa.yaml',
        'k8s/pdb.yaml',
        'k8s/networkpolicy.yaml',
        'k8s/redis/statefulset.yaml',
        'k8s/ingress/ingress-mtls.yaml',
        'k8s/ingress/ingress-passthrough.yaml',
        'k8s/secret.example.yaml',
      ]),
    );
  });

  it.each(files.map((f) => [rel(f), f]))('%s parses and every document is valid', (_name, file) => {
    // Mutation caught: `replicas: "3"`, a port as a string, a missing selector/containers, an unknown kind.
    const docs = readDocs(file);
    expect(docs.length).toBeGreaterThan(0);
    for (const doc of docs) {
      expect(typeof doc.apiVersion, `${rel(file)}: apiVersion`).toBe('string');
      expect(typeof doc.metadata?.name, `${rel(file)}: metadata.name`).toBe('string');
      expect(() => validate(doc), `${rel(file)}: ${doc.kind}/${doc.metadata.name}`).not.toThrow();
    }
  });

  it('the validator is not a no-op: a broken Deployment is refused', () => {
    // Control for the test above: if kubernetes-models stopped validating, this would pass silently.
    const broken = structuredClone(gateway) as unknown as K8sObject & { spec: Record<string, unknown> };
    broken.spec.replicas = 'three';
    expect(() => validate(broken)).toThrow(/replicas/);
    delete broken.spec.selector;
    broken.spec.replicas = 3;
    expect(() => validate(broken)).toThrow(/selector/);
  });
});

// ─── The kustomization ──────────────────────────────────────────────────────────────────────────────────

describe('k8s/kustomization.yaml', () => {
  it('names only files and folders that exist, and its generators read existing files', () => {
    // Mutation caught: a resource or generator file renamed or deleted (kubectl apply -k would fail).
    expect(tree.problems).toEqual([]);
    expect(tree.docs.length).toBeGreaterThan(8);
  });

  it('puts everything in the gatehouse namespace, which enforces the restricted Pod Security profile', () => {
    // Mutation caught: dropping `namespace:` (objects land in default) or the PSA label.
    expect(rootKustomization.namespace).toBe('gatehouse');
    const ns = find<K8sObject>('Namespace', 'gatehouse');
    expect(ns.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it('applies no Secret and generates none: secrets never live in git', () => {
    // Mutation caught: listing secret.example.yaml in resources, or a secretGenerator with literals/files.
    expect(objects.filter((o) => o.kind === 'Secret').map((o) => o.metadata.name)).toEqual([]);
    for (const k of tree.kustomizations) expect(k.value.secretGenerator, rel(k.file)).toBeUndefined();
    expect(rootKustomization.resources).not.toContain('secret.example.yaml');
  });

  it('the ingress examples are not applied by default', () => {
    // Mutation caught: adding ingress/ to resources without choosing a model (docs/deployment.md says how to add one).
    expect(objects.filter((o) => o.kind === 'Ingress')).toEqual([]);
  });

  it('sets the image, by tag or digest, never latest', () => {
    // Mutation caught: `newTag: latest`, or an image entry that does not match the Deployment's image name.
    const images = must(rootKustomization.images, 'images');
    const entry = must(
      images.find((i) => i.name === gatewayContainer.image?.split(':')[0]),
      'an images entry for the gateway',
    );
    expect(entry.newTag ?? entry.digest).toBeTruthy();
    expect(entry.newTag).not.toBe('latest');
    for (const o of objects) {
      for (const c of podSpecOf(o)?.containers ?? []) {
        // Mutation caught: `image: redis` or `image: x:latest` in any workload.
        expect(c.image, `${o.kind}/${o.metadata.name}`).toMatch(/^[^:@\s]+(:[^:@\s]+)(@sha256:[0-9a-f]{64})?$/);
        expect(c.image).not.toMatch(/:latest(@|$)/);
      }
    }
  });
});

// ─── References resolve ─────────────────────────────────────────────────────────────────────────────────

function podSpecOf(o: K8sObject): IPodSpec | undefined {
  if (o.kind === 'Deployment') return (o as unknown as IDeployment).spec?.template.spec;
  if (o.kind === 'StatefulSet') return (o as unknown as IStatefulSet).spec?.template.spec;
  return undefined;
}

function podLabelsOf(o: K8sObject): Record<string, string> {
  const spec = o.kind === 'Deployment' ? (o as unknown as IDeployment).spec : (o as unknown as IStatefulSet).spec;
  return spec?.template.metadata?.labels ?? {};
}

const workloads = objects.filter((o) => podSpecOf(o) !== undefined);

function matches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (selector === undefined || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

describe('every reference of the kustomization resolves', () => {
  const configMaps = new Map<string, string[]>(tree.generatedConfigMaps);
  for (const o of objects)
    if (o.kind === 'ConfigMap') configMaps.set(o.metadata.name, Object.keys((o as { data?: object }).data ?? {}));
  const secrets = new Map(
    exampleSecrets.map((s) => [s.metadata?.name ?? '', Object.keys({ ...s.data, ...s.stringData })]),
  );
  const services = objects.filter((o) => o.kind === 'Service') as unknown as IService[];

  it('ConfigMap and Secret volumes, and secretKeyRefs (name and key)', () => {
    // Mutation caught: a volume naming `gatehouse-conf`, a secretKeyRef key that secret.example.yaml does not document.
    const problems: string[] = [];
    for (const o of workloads) {
      const pod = podSpecOf(o)!;
      for (const v of pod.volumes ?? []) {
        if (v.configMap && !configMaps.has(v.configMap.name ?? ''))
          problems.push(`${o.metadata.name}: ConfigMap ${v.configMap.name}`);
        if (v.secret && !secrets.has(v.secret.secretName ?? ''))
          problems.push(`${o.metadata.name}: Secret ${v.secret.secretName}`);
      }
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref && !(secrets.get(ref.name ?? '') ?? []).includes(ref.key))
            problems.push(`${o.metadata.name}: env ${e.name} → ${ref.name}/${ref.key}`);
          const cm = e.valueFrom?.configMapKeyRef;
          if (cm && !(configMaps.get(cm.name ?? '') ?? []).includes(cm.key))
            problems.push(`${o.metadata.name}: env ${e.name} → ${cm.name}/${cm.key}`);
        }
        // Mutation caught: a volumeMount whose volume was renamed. (A StatefulSet's claim templates are volumes too.)
        const claims =
          o.kind === 'StatefulSet'
            ? ((o as unknown as IStatefulSet).spec?.volumeClaimTemplates ?? []).map((t) => t.metadata?.name)
            : [];
        for (const m of c.volumeMounts ?? [])
          if (!(pod.volumes ?? []).some((v) => v.name === m.name) && !claims.includes(m.name))
            problems.push(`${o.metadata.name}: mount of unknown volume ${m.name}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('service accounts, Services and their selectors, StatefulSet serviceName', () => {
    // Mutation caught: serviceAccountName typo; a Service selector matching no pod; a targetPort name no container has.
    for (const o of workloads) {
      const sa = podSpecOf(o)!.serviceAccountName;
      if (sa !== undefined)
        expect(
          objects.some((x) => x.kind === 'ServiceAccount' && x.metadata.name === sa),
          `${o.metadata.name}: ServiceAccount ${sa}`,
        ).toBe(true);
    }
    for (const s of services) {
      const target = workloads.find((w) => matches(s.spec?.selector, podLabelsOf(w)));
      expect(target, `Service ${s.metadata?.name} selects a workload`).toBeDefined();
      const ports = podSpecOf(target!)!.containers.flatMap((c) => c.ports ?? []);
      for (const p of s.spec?.ports ?? []) {
        const t = p.targetPort ?? p.port;
        expect(
          ports.some((cp) => cp.name === t || cp.containerPort === t),
          `Service ${s.metadata?.name} port ${p.name} → ${t}`,
        ).toBe(true);
      }
    }
    const redis = find<IStatefulSet>('StatefulSet', 'redis');
    expect(services.some((s) => s.metadata?.name === redis.spec?.serviceName)).toBe(true);
  });

  it('Redis reads its config and ACL file where they are mounted, and persists to its volume', () => {
    // Mutation caught: redis.conf's aclfile or dir pointing elsewhere than the mounts (Redis would refuse to
    // start, or keep its data on the read-only root), args naming another config path.
    const redis = find<IStatefulSet>('StatefulSet', 'redis');
    const pod = must(redis.spec?.template.spec, 'the Redis pod');
    const c = must(pod.containers[0], 'the Redis container');
    const conf = fs.readFileSync(path.join(k8s, 'redis', 'redis.conf'), 'utf8');
    const directive = (name: string): string =>
      must(new RegExp(`^${name}\\s+(\\S+)`, 'm').exec(conf)?.[1], `${name} in redis.conf`);
    const mountOf = (pred: (v: NonNullable<IPodSpec['volumes']>[number]) => boolean): string =>
      must(
        c.volumeMounts?.find((m) => pod.volumes?.some((v) => v.name === m.name && pred(v))),
        'a mount',
      ).mountPath;
    expect(path.posix.dirname(directive('aclfile'))).toBe(mountOf((v) => v.secret?.secretName === 'gatehouse-redis'));
    expect(c.args).toEqual([
      'redis-server',
      path.posix.join(
        mountOf((v) => v.configMap?.name === 'gatehouse-redis-config'),
        'redis.conf',
      ),
    ]);
    const claim = must(redis.spec?.volumeClaimTemplates?.[0]?.metadata?.name, 'a volume claim');
    expect(directive('dir')).toBe(
      must(
        c.volumeMounts?.find((m) => m.name === claim),
        'the data mount',
      ).mountPath,
    );
    expect(directive('appendonly')).toBe('yes');
    expect(exampleSecrets.find((s) => s.metadata?.name === 'gatehouse-redis')?.stringData?.['users.acl']).toMatch(
      /^user default off$/m,
    );
  });

  it('HorizontalPodAutoscaler and PodDisruptionBudget target the gateway Deployment', () => {
    // Mutation caught: HPA scaleTargetRef naming another Deployment; PDB selector not matching the pods; a PDB
    // without minAvailable/maxUnavailable; minReplicas 1.
    const hpa = find<IHorizontalPodAutoscaler>('HorizontalPodAutoscaler', 'gatehouse');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec?.scaleTargetRef).toMatchObject({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: gateway.metadata?.name,
    });
    expect(hpa.spec?.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec?.maxReplicas).toBeGreaterThan(hpa.spec?.minReplicas ?? 0);
    const pdb = find<IPodDisruptionBudget>('PodDisruptionBudget', 'gatehouse');
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(matches(pdb.spec?.selector?.matchLabels, podLabels)).toBe(true);
    expect(pdb.spec?.minAvailable ?? pdb.spec?.maxUnavailable).toBeDefined();
    // With maxUnavailable 1 (or minAvailable 1) and at least 2 replicas, a drain can always make progress
    // while one replica keeps serving.
    expect([pdb.spec?.minAvailable, pdb.spec?.maxUnavailable]).toContain(1);
  });

  it('the ingress examples route to an existing Service port', () => {
    // Mutation caught: backend service `gatehouse-svc` or port name `web`.
    for (const file of ['ingress-mtls.yaml', 'ingress-passthrough.yaml']) {
      const ing = must(readDocs(path.join(k8s, 'ingress', file))[0], file) as unknown as IIngress;
      for (const rule of ing.spec?.rules ?? []) {
        for (const p of rule.http?.paths ?? []) {
          const svc = must(
            services.find((s) => s.metadata?.name === p.backend.service?.name),
            `${file}: Service ${p.backend.service?.name}`,
          );
          expect(
            (svc.spec?.ports ?? []).some(
              (sp) => sp.name === p.backend.service?.port?.name || sp.port === p.backend.service?.port?.number,
            ),
            file,
          ).toBe(true);
        }
      }
    }
  });

  it('the mTLS ingress forwards the verified client certificate in the header the gateway reads', () => {
    // Mutation caught: auth-tls-verify-client "optional"/"off", pass-certificate "false", or a config header
    // other than ingress-nginx's `ssl-client-cert`.
    const ing = readDocs(path.join(k8s, 'ingress', 'ingress-mtls.yaml'))[0] as unknown as IIngress;
    const a = ing.metadata?.annotations ?? {};
    expect(a['nginx.ingress.kubernetes.io/auth-tls-secret']).toMatch(/^gatehouse\//);
    expect(a['nginx.ingress.kubernetes.io/auth-tls-verify-client']).toBe('on');
    expect(a['nginx.ingress.kubernetes.io/auth-tls-pass-certificate-to-upstream']).toBe('true');
    expect(config.server?.forwardedClientCertHeader).toBe('ssl-client-cert');
    expect(config.server?.trustedProxies?.length).toBeGreaterThan(0);
    const pass = readDocs(path.join(k8s, 'ingress', 'ingress-passthrough.yaml'))[0] as unknown as IIngress;
    expect(pass.metadata?.annotations?.['nginx.ingress.kubernetes.io/ssl-passthrough']).toBe('true');
  });
});

// ─── Security settings ──────────────────────────────────────────────────────────────────────────────────

describe('security settings of every workload', () => {
  it.each(workloads.map((o) => [`${o.kind}/${o.metadata.name}`, o]))(
    '%s runs non-root, read-only, unprivileged, with resources',
    (_name, o) => {
      const pod = podSpecOf(o)!;
      // Mutation caught: runAsNonRoot false/absent, runAsUser 0 or a name, seccomp Unconfined, a mounted SA token.
      expect(pod.securityContext?.runAsNonRoot).toBe(true);
      expect(Number.isInteger(pod.securityContext?.runAsUser) && pod.securityContext!.runAsUser! > 0).toBe(true);
      expect(pod.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(pod.hostNetwork ?? false).toBe(false);
      expect(pod.hostPID ?? false).toBe(false);
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])])
        expectHardened(c, `${o.metadata.name}/${c.name}`);
      // Mutation caught: an hostPath volume.
      expect((pod.volumes ?? []).filter((v) => v.hostPath !== undefined)).toEqual([]);
    },
  );

  function expectHardened(c: IContainer, where: string): void {
    const sc = c.securityContext;
    // Mutation caught: readOnlyRootFilesystem false, allowPrivilegeEscalation true, capabilities not dropped
    // or some added back, privileged true, runAsUser 0.
    expect(sc?.readOnlyRootFilesystem, where).toBe(true);
    expect(sc?.allowPrivilegeEscalation, where).toBe(false);
    expect(sc?.capabilities?.drop, where).toContain('ALL');
    expect(sc?.capabilities?.add ?? [], where).toEqual([]);
    expect(sc?.privileged ?? false, where).toBe(false);
    if (sc?.runAsUser !== undefined) expect(sc.runAsUser, where).toBeGreaterThan(0);
    // Mutation caught: a missing request or limit for cpu or memory.
    for (const kind of ['requests', 'limits'] as const) {
      expect(c.resources?.[kind]?.cpu, `${where} ${kind}.cpu`).toBeDefined();
      expect(c.resources?.[kind]?.memory, `${where} ${kind}.memory`).toBeDefined();
    }
  }

  it('the ServiceAccount does not mount a token either', () => {
    // Mutation caught: removing automountServiceAccountToken: false from serviceaccount.yaml.
    expect(find<IServiceAccount>('ServiceAccount', 'gatehouse').automountServiceAccountToken).toBe(false);
  });
});

describe('the gateway Deployment', () => {
  it('runs at least 2 replicas (the autoscaler minimum), spread over nodes, and never drops capacity during a rollout', () => {
    // Mutation caught: a `replicas` in the Deployment (each apply would undo the autoscaler's count); an HPA
    // minReplicas below 2; no hostname spread; a spread selector that matches no pod; maxUnavailable 1 with maxSurge 0.
    expect(gateway.spec?.replicas).toBeUndefined();
    expect(
      find<IHorizontalPodAutoscaler>('HorizontalPodAutoscaler', 'gatehouse').spec?.minReplicas,
    ).toBeGreaterThanOrEqual(2);
    const spread = gatewayPod.topologySpreadConstraints ?? [];
    const byHost = must(
      spread.find((t) => t.topologyKey === 'kubernetes.io/hostname'),
      'a hostname topology spread',
    );
    expect(byHost.maxSkew).toBe(1);
    expect(matches(byHost.labelSelector?.matchLabels, podLabels)).toBe(true);
    expect(spread.some((t) => t.topologyKey === 'topology.kubernetes.io/zone')).toBe(true);
    expect(gateway.spec?.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
  });

  it('probes /healthz (startup, liveness) and /readyz (readiness) on the port of server.port', () => {
    // Mutation caught: liveness on /readyz (an upstream outage would restart every pod), readiness on
    // /healthz, no startupProbe, a probe port that is not the gateway's.
    const port = must(
      gatewayContainer.ports?.find((p) => p.name === 'http'),
      'the http port',
    );
    expect(port.containerPort).toBe(config.server?.port);
    expect(gatewayContainer.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'http' });
    expect(gatewayContainer.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: 'http' });
    expect(gatewayContainer.startupProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'http' });
  });

  it('gives in-flight calls longer than server.shutdownTimeoutMs (plus preStop) before SIGKILL', () => {
    // Mutation caught: terminationGracePeriodSeconds 10 with shutdownTimeoutMs 20000, or a longer preStop sleep.
    const sleep = Number(gatewayContainer.lifecycle?.preStop?.exec?.command?.at(-1) ?? 0);
    const shutdownMs = config.server?.shutdownTimeoutMs ?? 10_000;
    expect(must(gatewayPod.terminationGracePeriodSeconds, 'terminationGracePeriodSeconds') * 1000).toBeGreaterThan(
      shutdownMs + sleep * 1000,
    );
  });

  it('mounts the config where its args point, the policies as a folder at policy.dir, secrets read-only, /tmp writable', () => {
    // Mutation caught: the policies mounted with subPath (kubelet would never update them), policy.dir and the
    // mount path diverging, --config pointing elsewhere, no writable /tmp under a read-only root.
    const mounts = gatewayContainer.volumeMounts ?? [];
    const volume = (name: string) =>
      must(
        gatewayPod.volumes?.find((v) => v.name === name),
        `volume ${name}`,
      );
    const policies = must(
      mounts.find((m) => volume(m.name).configMap?.name === 'gatehouse-policies'),
      'the policies mount',
    );
    expect(policies.subPath).toBeUndefined();
    expect(policies.mountPath).toBe(config.policy?.dir);
    const cfg = must(
      mounts.find((m) => volume(m.name).configMap?.name === 'gatehouse-config'),
      'the config mount',
    );
    const args = gatewayContainer.args ?? [];
    expect(args.slice(0, 1)).toEqual(['start']);
    expect(args[args.indexOf('--config') + 1]).toBe(path.posix.join(cfg.mountPath, 'gatehouse.yaml'));
    expect(tree.generatedConfigMaps.get('gatehouse-config')).toEqual(['gatehouse.yaml']);
    for (const m of mounts)
      if (volume(m.name).configMap || volume(m.name).secret) expect(m.readOnly, m.name).toBe(true);
    const tmp = must(
      mounts.find((m) => m.mountPath === '/tmp'),
      'a /tmp mount',
    );
    expect(volume(tmp.name).emptyDir).toBeDefined();
    // The secret files are where the config's fromFile references look.
    const secretsMount = must(
      mounts.find((m) => volume(m.name).secret?.secretName === 'gatehouse-secrets'),
      'the secrets mount',
    );
    for (const ref of fileRefs(config)) expect(ref.startsWith(`${secretsMount.mountPath}/`), ref).toBe(true);
  });

  it('every { fromEnv } of the config is set from a Secret', () => {
    // Mutation caught: a new `{ fromEnv: X }` in the config without an env entry (the pod would fail to load
    // its config), or that env entry given a literal `value:`.
    const env = new Map((gatewayContainer.env ?? []).map((e) => [e.name, e]));
    for (const name of envRefs(config)) {
      const e = must(env.get(name), `env ${name}`);
      expect(e.value, name).toBeUndefined();
      expect(e.valueFrom?.secretKeyRef, name).toBeDefined();
    }
  });

  it('the policies ConfigMap keeps a stable name (hot reload) and the config one a hashed name (rollout on change)', () => {
    // Mutation caught: dropping disableNameSuffixHash on the policies (each change would roll the pods instead of
    // reloading) or adding it to the config (a config change would never reach running pods).
    const gens = new Map((rootKustomization.configMapGenerator ?? []).map((g) => [g.name, g]));
    expect(gens.get('gatehouse-policies')?.options?.disableNameSuffixHash).toBe(true);
    expect(gens.get('gatehouse-config')?.options?.disableNameSuffixHash ?? false).toBe(false);
    // Every policy file of k8s/policies ships in the ConfigMap.
    const listed = (gens.get('gatehouse-policies')?.files ?? []).map((f) => path.basename(f)).sort();
    expect(listed).toEqual(
      fs
        .readdirSync(path.join(k8s, 'policies'))
        .filter((f) => f.endsWith('.yaml'))
        .sort(),
    );
  });
});

// ─── NetworkPolicy ──────────────────────────────────────────────────────────────────────────────────────

describe('NetworkPolicy', () => {
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy') as unknown as INetworkPolicy[];
  const gatewayPolicy = must(
    policies.find((p) => matches(p.spec?.podSelector?.matchLabels, podLabels)),
    'a NetworkPolicy selecting the gateway pods',
  );

  const allowsAll = (peer: INetworkPolicyPeer): boolean =>
    peer.ipBlock?.cidr === '0.0.0.0/0' ||
    peer.ipBlock?.cidr === '::/0' ||
    (peer.namespaceSelector !== undefined &&
      Object.keys(peer.namespaceSelector).length === 0 &&
      peer.podSelector === undefined);

  it('denies by default in the namespace', () => {
    // Mutation caught: deleting the default-deny policy or narrowing its policyTypes.
    const deny = must(
      policies.find((p) => p.spec?.podSelector && Object.keys(p.spec.podSelector).length === 0),
      'a default-deny policy',
    );
    expect(deny.spec?.policyTypes).toEqual(expect.arrayContaining(['Ingress', 'Egress']));
    expect(deny.spec?.ingress ?? []).toEqual([]);
    expect(deny.spec?.egress ?? []).toEqual([]);
  });

  it('no policy allows all egress', () => {
    // Mutation caught: an egress rule without `to` (any destination), `to: []`, 0.0.0.0/0, or `namespaceSelector: {}`.
    for (const p of policies) {
      for (const rule of p.spec?.egress ?? []) {
        expect(
          rule.to?.length ?? 0,
          `${p.metadata?.name}: an egress rule without destinations allows all`,
        ).toBeGreaterThan(0);
        for (const peer of rule.to ?? [])
          expect(allowsAll(peer), `${p.metadata?.name}: ${JSON.stringify(peer)}`).toBe(false);
        expect(
          rule.ports?.length ?? 0,
          `${p.metadata?.name}: an egress rule without ports allows every port`,
        ).toBeGreaterThan(0);
      }
    }
  });

  it('the gateway may reach DNS, the upstreams, Redis and the IdP over HTTPS — and nothing else', () => {
    // Mutation caught: Egress missing from policyTypes (egress would be unrestricted by this policy), the DNS
    // rule gone, a rule added for another port.
    expect(gatewayPolicy.spec?.policyTypes).toEqual(expect.arrayContaining(['Ingress', 'Egress']));
    const egress = must(gatewayPolicy.spec?.egress, 'egress rules');
    const ports = egress.map((r) => (r.ports ?? []).map((p) => `${p.protocol}/${p.port}`).join(','));
    expect(ports).toEqual(['UDP/53,TCP/53', 'TCP/8080', 'TCP/6379', 'TCP/443']);
    const redis = find<IStatefulSet>('StatefulSet', 'redis');
    const redisRule = must(
      egress.find((r) => r.ports?.some((p) => p.port === 6379)),
      'the Redis rule',
    );
    expect(
      redisRule.to?.some((peer) => matches(peer.podSelector?.matchLabels, redis.spec?.template.metadata?.labels ?? {})),
    ).toBe(true);
    // Every upstream of the config is in the namespace the upstream rule allows, on its port.
    const upstreamRule = egress[1]!;
    const ns = upstreamRule.to?.[0]?.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'];
    for (const u of config.upstreams ?? []) {
      const url = new URL(must(u.url, `${u.name}.url`));
      expect(url.hostname.split('.')[1], `${u.name} lives in ${ns}`).toBe(ns);
      expect(Number(url.port)).toBe(upstreamRule.ports?.[0]?.port);
    }
  });

  it('the gateway accepts the ingress controller on the MCP port and monitoring on the metrics port only', () => {
    // Mutation caught: an ingress rule without `from` (anyone), or the metrics port opened to the ingress controller.
    const ingress = must(gatewayPolicy.spec?.ingress, 'ingress rules');
    const seen = ingress.map((r) => {
      expect(r.from?.length ?? 0).toBeGreaterThan(0);
      const ns = r.from?.map((f) => f.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name']).join(',');
      return `${ns}:${(r.ports ?? []).map((p) => p.port).join(',')}`;
    });
    expect(seen.sort()).toEqual([`ingress-nginx:${config.server?.port}`, 'monitoring:9464']);
  });

  it('Redis accepts the gateway only and connects nowhere', () => {
    // Mutation caught: a Redis ingress rule from any pod, or egress allowed.
    const redis = find<IStatefulSet>('StatefulSet', 'redis');
    const rp = must(
      policies.find((p) => matches(p.spec?.podSelector?.matchLabels, redis.spec?.template.metadata?.labels ?? {})),
      'the Redis policy',
    );
    expect(rp.spec?.policyTypes).toEqual(expect.arrayContaining(['Ingress', 'Egress']));
    expect(rp.spec?.egress ?? []).toEqual([]);
    for (const r of rp.spec?.ingress ?? [])
      for (const f of r.from ?? []) expect(matches(f.podSelector?.matchLabels, podLabels)).toBe(true);
  });
});

// ─── No secret values in git ────────────────────────────────────────────────────────────────────────────

describe('no secret values in k8s/', () => {
  const allFiles = (dir: string): string[] =>
    fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => !(dir === k8s && e.name === 'grafana'))
      .flatMap((e) => (e.isDirectory() ? allFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));

  it('no private key, credential-bearing URL or secret-named literal env var in any file', () => {
    // Mutation caught: a PEM private key in a file, `redis://u:pw@…` in the config, `- name: API_KEY value: abc`.
    const problems: string[] = [];
    for (const file of allFiles(k8s)) {
      if (path.basename(file) === 'secret.example.yaml') continue;
      const text = fs.readFileSync(file, 'utf8');
      if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) problems.push(`${rel(file)}: a private key`);
      if (/\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@]+:[^\s/@]+@/i.test(text))
        problems.push(`${rel(file)}: a URL with a password`);
      if (
        /^\s*-?\s*name:\s*["']?[A-Z0-9_]*(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)[A-Z0-9_]*["']?\s*\n\s*value:/m.test(
          text,
        )
      )
        problems.push(`${rel(file)}: a secret-named env var with a literal value`);
    }
    expect(problems).toEqual([]);
  });

  it('secret.example.yaml holds placeholders only', () => {
    // Mutation caught: a real-looking value pasted into the example.
    for (const s of exampleSecrets) {
      expect(s.data, s.metadata?.name).toBeUndefined();
      for (const [key, value] of Object.entries(s.stringData ?? {}))
        expect(value, `${s.metadata?.name}/${key}`).toMatch(/REPLACE-ME/);
    }
  });
});

// ─── The configuration and policies of the ConfigMaps ───────────────────────────────────────────────────

describe('k8s/config/gatehouse.yaml (ConfigMap gatehouse-config)', () => {
  let tmp: string | undefined;
  afterEach(() => {
    if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
    tmp = undefined;
  });

  it('is valid against schemas/gatehouse.schema.json (Ajv 2020)', () => {
    // Mutation caught: an unknown or misspelt key (the schema rejects unknown keys everywhere), a wrong type.
    const schema = JSON.parse(fs.readFileSync(path.join(root, 'schemas/gatehouse.schema.json'), 'utf8')) as object;
    const check = new Ajv2020({ strict: true, allErrors: true }).compile(schema);
    const ok = check(config);
    expect(check.errors ?? [], JSON.stringify(check.errors)).toEqual([]);
    expect(ok).toBe(true);
  });

  it('loads with the real loader, secrets supplied as the pod supplies them', () => {
    // Mutation caught: everything the loader checks beyond the schema — e.g. forwardedClientCertHeader without
    // trustedProxies, 0.0.0.0/0 in trustedProxies, `auth.mode: none` on 0.0.0.0, a policy.dir that is not mounted.
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-k8s-'));
    const mounted = (p: string): string => path.join(tmp!, p.replace(/^\/etc\/gatehouse\//, ''));
    fs.cpSync(path.join(k8s, 'policies'), path.join(tmp, 'policies'), { recursive: true });
    // Random values of the shape the loader demands (session keys: 32 bytes in base64url; HMAC key: >= 32 bytes).
    const value = (): string => randomBytes(32).toString('base64url');
    for (const ref of fileRefs(config)) {
      fs.mkdirSync(path.dirname(mounted(ref)), { recursive: true });
      // Readable by the owner only: a secret file others can read is refused (the pod's is root-owned, 0440, fsGroup).
      fs.writeFileSync(mounted(ref), `${value()}\n`, { mode: 0o400 });
    }
    const text = fs.readFileSync(configFile, 'utf8').replaceAll('/etc/gatehouse/', `${tmp}/`);
    fs.mkdirSync(path.join(tmp, 'config'));
    const file = path.join(tmp, 'config', 'gatehouse.yaml');
    fs.writeFileSync(file, text);
    const env = Object.fromEntries(
      envRefs(config).map((name) => [
        name,
        /REDIS_URL$/.test(name) ? `redis://gatehouse:${value()}@redis.gatehouse.svc:6379/0` : value(),
      ]),
    );
    const loaded = loadConfig(file, { env });
    expect(loaded.server.host).toBe('0.0.0.0');
    expect(loaded.auth.mode).toBe('oauth');
    expect(loaded.policy?.dir).toBe(path.join(tmp, 'policies'));
    expect(loaded.upstreams.map((u) => u.name)).toEqual(['orders', 'search']);
  });

  it('fits the pod: audit to stdout (read-only root), metrics on the port the Service and NetworkPolicy open', () => {
    // Mutation caught: `audit.sink: file` (nothing writable but /tmp, which is lost with the pod), a metrics
    // port or host the Deployment/NetworkPolicy do not expose, shared state without Redis on 3 replicas.
    expect(config.audit?.sink ?? 'stdout').toBe('stdout');
    const prom = config.telemetry?.metrics?.prometheus;
    expect(prom?.enabled).toBe(true);
    expect(prom?.host).toBe('0.0.0.0');
    expect(gatewayContainer.ports?.find((p) => p.name === 'metrics')?.containerPort).toBe(prom?.port);
    expect(config.limits?.store).toBe('redis');
    expect(config.sessions?.store).toBe('redis');
    expect(config.sessions?.keys?.length).toBeGreaterThan(0);
    expect(config.redis?.url).toEqual({ fromEnv: expect.any(String) });
  });

  it('k8s/policies compiles, and its fixtures pass', () => {
    // Mutation caught: a policy file that does not compile, or a rule change that breaks a fixture.
    const policy = loadPolicyDir(path.join(k8s, 'policies'));
    expect(policy.rules.length).toBeGreaterThan(0);
    const report = runPolicyFixtures(policy, loadPolicyFixtures(path.join(k8s, 'policies')));
    expect(report.results.filter((r) => !r.passed).map((r) => `${r.fixture.name}: ${r.mismatches.join('; ')}`)).toEqual(
      [],
    );
    expect(report.passed).toBeGreaterThan(0);
    expect(report.uncoveredRules).toEqual([]);
  });
});

// ─── kubectl kustomize (when kubectl is installed) ──────────────────────────────────────────────────────

function hasKubectl(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

describe('kubectl kustomize k8s/', () => {
  // kubectl is not a project dependency: the checks above resolve the kustomization themselves; this one
  // confirms kustomize renders the same thing. Skipped only outside CI without kubectl; under CI (this machine kind
  // has /usr/bin/kubectl) a missing kubectl fails the test instead of skipping it.
  it.skipIf(!process.env.CI && !hasKubectl())('renders, and every rendered object is valid and namespaced', () => {
    const out = execFileSync('kubectl', ['kustomize', k8s], { encoding: 'utf8', timeout: 60_000 });
    const rendered = parseAllDocuments(out).map((d) => d.toJS() as K8sObject);
    for (const o of rendered) {
      expect(() => validate(o), `${o.kind}/${o.metadata.name}`).not.toThrow();
      if (o.kind !== 'Namespace') expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('gatehouse');
    }
    // The Deployment's reference follows the hashed config ConfigMap; the policies one keeps its name.
    const cms = rendered.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name);
    const dep = must(
      rendered.find((o) => o.kind === 'Deployment'),
      'Deployment',
    ) as unknown as IDeployment;
    const refs = (dep.spec?.template.spec?.volumes ?? []).flatMap((v) => (v.configMap?.name ? [v.configMap.name] : []));
    for (const r of refs) expect(cms).toContain(r);
    expect(refs).toContain('gatehouse-policies');
    expect(refs.some((r) => /^gatehouse-config-[a-z0-9]{10}$/.test(r))).toBe(true);
    expect(rendered.filter((o) => o.kind === 'Secret')).toEqual([]);
  });
});

// ─── Hot reload from a ConfigMap folder ─────────────────────────────────────────────────────────────────

/**
 * A ConfigMap mounted as a folder, as kubelet's atomic writer lays it out: the files live in a timestamped
 * `..<ts>` folder, `..data` is a symlink to it, and each visible name is a symlink `name -> ..data/name`. An
 * update writes a new `..<ts>` folder, points `..data_tmp` at it and renames it over `..data` (one atomic
 * rename), then removes the old folder.
 */
class KubeletVolume {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-configmap-'));
  #n = 0;

  publish(files: Record<string, string>): void {
    const ts = `..2026_01_01_00_00_0${this.#n++}.000000001`;
    fs.mkdirSync(path.join(this.dir, ts));
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(this.dir, ts, name), text);
    const data = path.join(this.dir, '..data');
    const previous = fs.existsSync(data) ? fs.readlinkSync(data) : undefined;
    fs.symlinkSync(ts, path.join(this.dir, '..data_tmp'));
    fs.renameSync(path.join(this.dir, '..data_tmp'), data);
    for (const name of Object.keys(files))
      if (!fs.existsSync(path.join(this.dir, name)))
        fs.symlinkSync(path.join('..data', name), path.join(this.dir, name));
    if (previous !== undefined) fs.rmSync(path.join(this.dir, previous), { recursive: true });
  }

  close(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

const rule = (tool: string): string =>
  `version: 1\nrules:\n  - id: r.${tool.slice(0, 1)}\n    effect: allow\n    match:\n      tools: ["${tool}"]\n`;

describe('policy.dir mounted from a ConfigMap (kubelet ..data symlink swap)', () => {
  let volume: KubeletVolume | undefined;
  let reloader: PolicyReloader | undefined;
  afterEach(() => {
    reloader?.close();
    volume?.close();
    reloader = undefined;
    volume = undefined;
  });

  it('the watcher notices the swap and reloads', async () => {
    // Mutation caught (in src/policy/reloader.ts): watching the files instead of the folder — a watch on
    // `a.yaml` follows the old inode, which kubelet never writes again.
    volume = new KubeletVolume();
    volume.publish({ 'a.yaml': rule('a__*') });
    const outcomes: PolicyReloadOutcome[] = [];
    const engine = new CompiledPolicyEngine(loadPolicyDir(volume.dir));
    reloader = new PolicyReloader({ dir: volume.dir, engine, onReload: (o) => outcomes.push(o), debounceMs: 50 });
    reloader.watch();
    volume.publish({ 'a.yaml': rule('b__*') });
    const deadline = Date.now() + 5000;
    while (outcomes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(outcomes.map((o) => o.trigger)).toContain('watch');
  });

  // Mutation caught (src/policy/compile.ts regularFileNames): keeping only `Dirent.isFile()` entries — kubelet's
  // visible names are symlinks, so the folder would compile to no rules.
  it('policy files behind kubelet symlinks are compiled, before and after the swap', () => {
    volume = new KubeletVolume();
    volume.publish({ 'a.yaml': rule('a__*') });
    const engine = new CompiledPolicyEngine(loadPolicyDir(volume.dir));
    expect(engine.policy.rules.map((r) => r.id)).toEqual(['r.a']);
    reloader = new PolicyReloader({ dir: volume.dir, engine, onReload: () => undefined });
    volume.publish({ 'a.yaml': rule('b__*') });
    expect(reloader.reload('SIGHUP').ok).toBe(true);
    expect(engine.policy.rules.map((r) => r.id)).toEqual(['r.b']);
  });
});
