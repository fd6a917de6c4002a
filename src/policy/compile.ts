/**
 * Loads and compiles a policy set (docs/architecture.md §8): read every `*.yaml` in the folder (not `*.test.yaml`) →
 * parse with line positions → check against `schemas/policy.schema.json` → checks the schema cannot express
 * (unique rule ids, field paths, roots, hosts, argument schemas compiled with Ajv) → index → deep-freeze
 * (docs/style.md habit 5). Every problem in every file is collected and thrown together as one `ConfigError`
 * (`file:line: /rules/3/match: message`), so a bad file keeps the old policy running and says what is wrong,
 * where. Nothing is compiled per request: globs become matchers, scopes arrays, argument schemas validators.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import schemaJson from '../../schemas/policy.schema.json' with { type: 'json' };
import {
  FragmentCompiler,
  loadPrecompiled,
  metaSchemaFingerprint,
  PRECOMPILED_VALIDATORS,
  schemaValidator,
} from '../config/precompiled-schema.js';
import { fileExposure } from '../config/file-exposure.js';
import { mapSchemaErrors } from '../config/schema-problems.js';
import { YamlSource } from '../config/yaml-source.js';
import { ConfigError, type ConfigProblem } from '../errors/config-error.js';
import type { Principal } from '../identity/principal.js';
import { escapePointer } from '../lib/json-pointer.js';
import { checkNoLeadingDash } from './constraints/no-leading-dash.js';
import { checkPathUnderRoots, parsePathRoot, type PathRoot } from './constraints/path-under-roots.js';
import { checkUrl, parseHostPattern, type HostPattern, type UrlRule } from './constraints/url-allowed.js';
import type { ArgumentViolation, Limits, TargetKind } from './decision.js';
import { parseFieldPath, readField, type FieldPath } from './field-path.js';
import { nameGlob, uriGlob, type Glob } from './glob.js';
import type { ArgumentCheck, CompiledPolicy, CompiledRule, CompiledScopes, Condition, KindIndex } from './model.js';
import { PatternIndex } from './pattern-index.js';
import { POLICY_WORDING } from './schema-wording.js';
import type { UpstreamRequest } from './upstream-requests.js';
import { deepFreeze } from '../lib/deep-freeze.js';

/** One policy file's text; `file` is how messages name it, its base name orders the set and enters the revision. */
export interface PolicySource {
  readonly file: string;
  readonly text: string;
}

export const FIXTURE_SUFFIX = '.test.yaml';

/** The policy files of a folder, in name order: `*.yaml` except `*.test.yaml`. Not recursive. */
export function listPolicyFiles(dir: string): string[] {
  return readDir(dir)
    .filter((name) => name.endsWith('.yaml') && !name.endsWith(FIXTURE_SUFFIX))
    .sort(compareNames)
    .map((name) => path.join(dir, name));
}

/** Reads and compiles every policy file of `dir`. Throws `ConfigError` listing every problem. */
export function loadPolicyDir(dir: string): CompiledPolicy {
  // Secure defaults: whoever may change the folder or a file in it grants themselves every tool. Checked on every
  // (re)load, so a reload into a writable folder keeps the running policy and says why.
  const problems = fileExposure(dir, 'policy folder').map((message): ConfigProblem => ({
    file: dir,
    path: '',
    message,
  }));
  const sources: PolicySource[] = [];
  for (const file of listPolicyFiles(dir)) {
    problems.push(...fileExposure(file, 'policy file').map((message) => ({ file, path: '', message })));
    try {
      sources.push({ file, text: fs.readFileSync(file, 'utf8') });
    } catch (err) {
      problems.push({
        file,
        path: '',
        message: `cannot read the policy file (${(err as NodeJS.ErrnoException).code ?? 'unknown error'})`,
      });
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return compilePolicy(sources);
}

/** The same as `loadPolicyDir`, as a Result: for reloads, which keep the running policy when this fails. */
export function tryLoadPolicyDir(
  dir: string,
): { ok: true; policy: CompiledPolicy } | { ok: false; error: ConfigError } {
  try {
    return { ok: true, policy: loadPolicyDir(dir) };
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, error: err };
    throw err;
  }
}

/** SHA-256 over the sorted (base name, content) pairs, hex, first 12 characters. */
export function policyRevision(sources: readonly PolicySource[]): string {
  const hash = createHash('sha256');
  const sorted = sources
    .map((s) => ({ name: path.basename(s.file), text: s.text }))
    .sort((a, b) => compareNames(a.name, b.name));
  for (const s of sorted) {
    hash.update(`${Buffer.byteLength(s.name)}:${s.name}\n${Buffer.byteLength(s.text)}:`);
    hash.update(s.text);
    hash.update('\n');
  }
  return hash.digest('hex').slice(0, 12);
}

/** Compiles policy texts (in any order: they are sorted by base name). Throws `ConfigError` listing every problem. */
export function compilePolicy(input: readonly PolicySource[]): CompiledPolicy {
  const sources = input.slice().sort((a, b) => compareNames(path.basename(a.file), path.basename(b.file)));
  const problems: ConfigProblem[] = [];
  const seenNames = new Map<string, string>();
  for (const s of sources) {
    const name = path.basename(s.file);
    const other = seenNames.get(name);
    if (other !== undefined)
      problems.push({
        file: s.file,
        path: '',
        message: `has the same file name as ${other}; names must be unique in a policy set`,
      });
    seenNames.set(name, s.file);
  }

  const fragments = new FragmentCompiler(precompiledMetaSchema());
  const validators = new Map<string, ValidateFunction>();
  const ids = new Map<string, string>();
  const rules: CompiledRule[] = [];
  for (const source of sources) {
    const src = new YamlSource(source.file, source.text, { syntaxErrors: 'plain' });
    problems.push(...src.problems);
    if (src.problems.length > 0) continue;
    const validate = policySchema();
    const schemaProblems = validate(src.data) ? [] : mapSchemaErrors(validate.errors ?? [], src, POLICY_WORDING);
    problems.push(...schemaProblems);
    const raw = src.data as RawFile | null | undefined;
    if (raw === null || typeof raw !== 'object' || !Array.isArray(raw.rules)) continue;
    raw.rules.forEach((rawRule, i) => {
      const at = `/rules/${i}`;
      const id = (rawRule as Partial<RawRule> | null)?.id;
      if (typeof id === 'string') {
        const first = ids.get(id);
        if (first !== undefined)
          problems.push(
            src.problem(
              `${at}/id`,
              `rule id "${id}" is already used at ${first}; ids must be unique across the policy set`,
            ),
          );
        else ids.set(id, `${path.basename(source.file)}:${src.line(`${at}/id`) ?? '?'}`);
      }
      // A rule with a schema problem has an unknown shape: one message per mistake is enough.
      if (schemaProblems.some((p) => p.path === at || p.path.startsWith(`${at}/`))) return;
      const rule = compileRule(rawRule, at, rules.length, src, { fragments, validators }, problems);
      if (rule !== undefined) rules.push(rule);
    });
  }
  if (problems.length > 0) {
    // Stable: files in set order, problems of one file by line.
    const fileOrder = new Map(sources.map((s, i) => [s.file, i]));
    throw new ConfigError(
      problems.sort(
        (a, b) => (fileOrder.get(a.file) ?? 0) - (fileOrder.get(b.file) ?? 0) || (a.line ?? 0) - (b.line ?? 0),
      ),
    );
  }

  return deepFreeze({
    revision: policyRevision(sources),
    files: sources.map((s) => path.basename(s.file)),
    rules,
    index: buildIndex(rules),
  });
}

// ─── The raw, schema-checked shape ────────────────────────────────────────────────────────────────────────

interface RawFile {
  version: 1;
  description?: string;
  rules: RawRule[];
}
interface RawRule {
  id: string;
  description?: string;
  effect: 'allow' | 'deny';
  match: {
    tools?: string[];
    resources?: string[];
    prompts?: string[];
    requests?: UpstreamRequest[];
    upstreams?: string[];
  };
  when?: RawWhen;
  arguments?: Record<string, unknown> & { constraints?: RawConstraint[] };
  redact?: string[];
  limits?: { rate?: { perMinute: number; burst?: number }; concurrency?: number; timeoutMs?: number };
  describe?: true | { limits?: boolean; note?: string };
  cache?: { ttl: string; scope?: 'principal' | 'public' };
  invalidates?: string[];
  idempotency?: { key: string; ttl?: string };
}
interface RawWhen {
  scopes?: { allOf?: string[]; anyOf?: string[] };
  subjects?: string[];
  clients?: string[];
  groups?: { anyOf: string[] };
  claims?: Record<string, ClaimValue | ClaimValue[]>;
  cert?: { subject?: string; san?: string };
  authenticated?: true;
}
type ClaimValue = string | number | boolean;
interface RawConstraint {
  field: string;
  kind: 'path' | 'url' | 'noLeadingDash';
  optional?: boolean;
  roots?: string[];
  schemes?: string[];
  hosts?: string[];
  ports?: number[];
}

// ─── One rule ────────────────────────────────────────────────────────────────────────────────────────────

/** One Ajv instance per compiled set (dropped with it on reload), and identical fragments compiled once. */
interface SchemaCompiler {
  readonly fragments: FragmentCompiler;
  readonly validators: Map<string, ValidateFunction>;
}

function compileRule(
  raw: RawRule,
  at: string,
  order: number,
  src: YamlSource,
  schemas: SchemaCompiler,
  problems: ConfigProblem[],
): CompiledRule | undefined {
  const before = problems.length;
  const line = src.line(at);
  const match = {
    ...(raw.match.tools ? { tools: raw.match.tools.map(nameGlob) } : {}),
    ...(raw.match.resources ? { resources: raw.match.resources.map(uriGlob) } : {}),
    ...(raw.match.prompts ? { prompts: raw.match.prompts.map(nameGlob) } : {}),
    ...(raw.match.requests ? { requests: raw.match.requests.map(nameGlob) } : {}),
    ...(raw.match.upstreams ? { upstreams: new Set(raw.match.upstreams) } : {}),
  };
  const when = raw.when ?? {};
  const identity = compileIdentity(when);
  const scopes: CompiledScopes | undefined = when.scopes
    ? { allOf: when.scopes.allOf ?? [], anyOf: when.scopes.anyOf ?? [] }
    : undefined;

  if (raw.match.requests !== undefined) requestRuleProblems(raw, at, src, problems);

  const argumentChecks: ArgumentCheck[] = [];
  if (raw.arguments !== undefined) {
    if (
      raw.match.resources !== undefined &&
      raw.match.tools === undefined &&
      raw.match.prompts === undefined &&
      raw.match.upstreams === undefined
    ) {
      problems.push(
        src.problem(
          `${at}/arguments`,
          'applies to tool and prompt arguments, but this rule matches only resources',
          'key',
        ),
      );
    }
    const { constraints, ...fragment } = raw.arguments;
    if (Object.keys(fragment).some((k) => k !== 'type')) {
      const check = compileSchemaFragment(fragment, `${at}/arguments`, src, schemas, problems);
      if (check) argumentChecks.push(check);
    }
    (constraints ?? []).forEach((c, i) => {
      const check = compileConstraint(c, `${at}/arguments/constraints/${i}`, src, problems);
      if (check) argumentChecks.push(check);
    });
  }

  const redact: string[] = [];
  (raw.redact ?? []).forEach((field, i) => {
    const parsed = parseFieldPath(field);
    if (!parsed.ok) problems.push(src.problem(`${at}/redact/${i}`, parsed.message));
    else if (!redact.includes(parsed.path.pointer)) redact.push(parsed.path.pointer);
  });

  let limits: Limits | undefined;
  if (raw.limits) {
    const { rate, concurrency, timeoutMs } = raw.limits;
    if (rate?.burst !== undefined && rate.burst < 1)
      problems.push(src.problem(`${at}/limits/rate/burst`, 'must be at least 1'));
    limits = {
      ...(rate ? { rate: { perMinute: rate.perMinute, burst: rate.burst ?? rate.perMinute } } : {}),
      ...(concurrency !== undefined ? { concurrency } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    };
  }
  const describe =
    raw.describe === undefined
      ? undefined
      : raw.describe === true
        ? { limits: true }
        : {
            limits: raw.describe.limits ?? true,
            ...(raw.describe.note !== undefined ? { note: raw.describe.note.trim() } : {}),
          };
  const dataPath = compileDataPath(raw, at, src, problems);
  if (problems.length > before) return undefined;
  return {
    ...dataPath,
    id: raw.id,
    effect: raw.effect,
    ...(raw.description !== undefined ? { description: raw.description } : {}),
    file: src.file,
    ...(line !== undefined ? { line } : {}),
    order,
    match,
    identity,
    ...(scopes ? { scopes } : {}),
    argumentChecks,
    redact,
    ...(limits ? { limits } : {}),
    ...(describe ? { describe } : {}),
  };
}

/** `30s`, `500ms`, `24h`: the durations of `cache.ttl` and `idempotency.ttl` (the schema checks the form). */
export function parseDuration(text: string): number | undefined {
  const m = /^([0-9]{1,9})(ms|s|m|h|d)$/.exec(text);
  if (m === null) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** Longest TTLs: a cached read 1 day, a remembered write 7 days (bounded so a typo cannot pin memory for months). */
const MAX_CACHE_TTL_MS = 86_400_000;
const MAX_IDEMPOTENCY_TTL_MS = 7 * 86_400_000;
const DEFAULT_IDEMPOTENCY_TTL_MS = 86_400_000;

/** `cache`, `invalidates`, `idempotency` (docs/policy.md "Result cache", "Idempotent writes"). */
function compileDataPath(
  raw: RawRule,
  at: string,
  src: YamlSource,
  problems: ConfigProblem[],
): Pick<CompiledRule, 'cache' | 'invalidates' | 'idempotency'> {
  const out: { -readonly [K in 'cache' | 'invalidates' | 'idempotency']?: CompiledRule[K] } = {};
  const ttl = (text: string, pointer: string, max: number): number | undefined => {
    const ms = parseDuration(text);
    if (ms === undefined || ms < 1 || ms > max) {
      problems.push(src.problem(pointer, `must be a duration like 30s, 10m or 24h, at most ${max / 3_600_000}h`));
      return undefined;
    }
    return ms;
  };
  if (raw.cache !== undefined) {
    if (raw.match.prompts !== undefined)
      problems.push(src.problem(`${at}/cache`, 'applies to tool results and resource reads, not prompts', 'key'));
    const ttlMs = ttl(raw.cache.ttl, `${at}/cache/ttl`, MAX_CACHE_TTL_MS);
    if (ttlMs !== undefined) out.cache = { ttlMs, scope: raw.cache.scope ?? 'principal' };
  }
  if (raw.invalidates !== undefined) {
    raw.invalidates.forEach((name, i) => {
      if (name.includes('*'))
        problems.push(src.problem(`${at}/invalidates/${i}`, 'names one exposed tool exactly (no `*`)'));
    });
    out.invalidates = [...new Set(raw.invalidates)];
  }
  if (raw.idempotency !== undefined) {
    const ttlMs =
      raw.idempotency.ttl === undefined
        ? DEFAULT_IDEMPOTENCY_TTL_MS
        : ttl(raw.idempotency.ttl, `${at}/idempotency/ttl`, MAX_IDEMPOTENCY_TTL_MS);
    if (ttlMs !== undefined) out.idempotency = { key: raw.idempotency.key, ttlMs };
  }
  return out;
}

/**
 * A rule that names an upstream's requests (threat model #19) governs only them: one rule, one direction. Tool
 * targets and upstream requests share neither arguments nor limits, so a rule mixing them would read as if its
 * `arguments` or `limits` fenced the requests too.
 */
function requestRuleProblems(raw: RawRule, at: string, src: YamlSource, problems: ConfigProblem[]): void {
  for (const key of ['tools', 'resources', 'prompts'] as const) {
    if (raw.match[key] !== undefined) {
      problems.push(
        src.problem(
          `${at}/match/${key}`,
          `cannot be combined with "requests": write one rule for the upstream's requests and another for its ${key}`,
          'key',
        ),
      );
    }
  }
  for (const key of ['arguments', 'redact', 'limits', 'describe', 'cache', 'invalidates', 'idempotency'] as const) {
    if (raw[key] !== undefined)
      problems.push(
        src.problem(
          `${at}/${key}`,
          `applies to tool calls, but this rule matches only upstream requests ("requests")`,
          'key',
        ),
      );
  }
}

function compileIdentity(when: RawWhen): Condition[] {
  const out: Condition[] = [];
  if (when.authenticated === true) out.push({ label: 'authenticated', test: (p) => !p.anonymous });
  if (when.subjects) {
    const globs = when.subjects.map(nameGlob);
    out.push({ label: `subjects [${when.subjects.join(', ')}]`, test: (p) => globs.some((g) => g.matches(p.subject)) });
  }
  if (when.clients) {
    const clients = new Set(when.clients);
    out.push({
      label: `clients [${when.clients.join(', ')}]`,
      test: (p) => p.clientId !== undefined && clients.has(p.clientId),
    });
  }
  if (when.groups) {
    const groups = when.groups.anyOf;
    out.push({ label: `groups anyOf [${groups.join(', ')}]`, test: (p) => groups.some((g) => p.groups.includes(g)) });
  }
  if (when.claims) {
    for (const [name, expected] of Object.entries(when.claims)) {
      const allowed = Array.isArray(expected) ? expected : [expected];
      out.push({ label: `claim ${name} in ${JSON.stringify(allowed)}`, test: (p) => claimMatches(p, name, allowed) });
    }
  }
  if (when.cert) {
    const subject = when.cert.subject !== undefined ? nameGlob(when.cert.subject) : undefined;
    const san = when.cert.san !== undefined ? nameGlob(when.cert.san) : undefined;
    if (subject)
      out.push({
        label: `cert subject ${subject.source}`,
        test: (p) => p.certSubject !== undefined && subject.matches(p.certSubject),
      });
    if (san) out.push({ label: `cert san ${san.source}`, test: (p) => (p.certSans ?? []).some((s) => san.matches(s)) });
  }
  return out;
}

function claimMatches(p: Principal, name: string, allowed: readonly ClaimValue[]): boolean {
  const claims = p.claims;
  if (claims === undefined || !Object.hasOwn(claims, name)) return false;
  const value = claims[name];
  const values = Array.isArray(value) ? value : [value];
  return values.some((v) => allowed.some((a) => a === v));
}

// ─── Arguments ───────────────────────────────────────────────────────────────────────────────────────────

/** Ajv keywords whose values are subschemas (one, a list, or a map of them). */
const SUBSCHEMA = new Set([
  'additionalProperties',
  'unevaluatedProperties',
  'items',
  'unevaluatedItems',
  'contains',
  'propertyNames',
  'not',
  'if',
  'then',
  'else',
]);
const SUBSCHEMA_LISTS = new Set(['allOf', 'anyOf', 'oneOf', 'prefixItems']);
const SUBSCHEMA_MAPS = new Set(['properties', 'patternProperties', 'dependentSchemas', '$defs', 'definitions']);

function compileSchemaFragment(
  fragment: Record<string, unknown>,
  at: string,
  src: YamlSource,
  schemas: SchemaCompiler,
  problems: ConfigProblem[],
): ArgumentCheck | undefined {
  // Regular expressions first, so a bad one is reported at its own line rather than the fragment's.
  const bad = findBadPatterns(fragment, at);
  for (const b of bad) problems.push(src.problem(b.pointer, b.message, b.atKey ? 'key' : 'value'));
  if (bad.length > 0) return undefined;
  // Tool arguments are always an object; saying so keeps strict mode's type checks quiet for `properties`.
  const schema = { type: 'object', ...fragment };
  const key = JSON.stringify(schema);
  let validate = schemas.validators.get(key);
  if (validate === undefined) {
    try {
      validate = schemas.fragments.compile(schema);
    } catch (err) {
      problems.push(
        src.problem(at, `is not a usable JSON Schema: ${ajvCompileMessage((err as Error).message)}`, 'key'),
      );
      return undefined;
    }
    schemas.validators.set(key, validate);
  }
  const validator = validate;
  return {
    label: 'schema',
    check(args) {
      if (validator(args)) return undefined;
      const e = validator.errors?.[0];
      if (e === undefined) return { field: '', constraint: 'schema' };
      const params = e.params as Record<string, unknown>;
      const extra =
        e.keyword === 'required'
          ? params.missingProperty
          : e.keyword === 'additionalProperties'
            ? params.additionalProperty
            : undefined;
      const field =
        typeof extra === 'string' ? `${e.instancePath}/${escapePointer(extra.slice(0, 128))}` : e.instancePath;
      return { field, constraint: `schema:${e.keyword}` };
    },
  };
}

function findBadPatterns(schema: unknown, at: string): { pointer: string; message: string; atKey: boolean }[] {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return [];
  const out: { pointer: string; message: string; atKey: boolean }[] = [];
  const tryRegex = (source: string, pointer: string, atKey: boolean): void => {
    try {
      new RegExp(source, 'u');
    } catch (err) {
      out.push({
        pointer,
        atKey,
        message: `invalid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`,
      });
    }
  };
  for (const [key, value] of Object.entries(schema)) {
    const here = `${at}/${escapePointer(key)}`;
    if (key === 'pattern' && typeof value === 'string') tryRegex(value, here, false);
    if (key === 'patternProperties' && typeof value === 'object' && value !== null) {
      for (const p of Object.keys(value)) tryRegex(p, `${here}/${escapePointer(p)}`, true);
    }
    if (SUBSCHEMA.has(key)) out.push(...findBadPatterns(value, here));
    if (SUBSCHEMA_LISTS.has(key) && Array.isArray(value))
      value.forEach((v, i) => out.push(...findBadPatterns(v, `${here}/${i}`)));
    if (SUBSCHEMA_MAPS.has(key) && typeof value === 'object' && value !== null) {
      for (const [k, v] of Object.entries(value)) out.push(...findBadPatterns(v, `${here}/${escapePointer(k)}`));
    }
  }
  return out;
}

function ajvCompileMessage(message: string): string {
  const m = message.replace(/^strict mode: /, '');
  if (/unknown format/.test(m))
    return `${m} (formats are not checked; use "pattern", or a constraint such as kind: url)`;
  return m;
}

function compileConstraint(
  c: RawConstraint,
  at: string,
  src: YamlSource,
  problems: ConfigProblem[],
): ArgumentCheck | undefined {
  const parsedField = parseFieldPath(c.field);
  if (!parsedField.ok) {
    problems.push(src.problem(`${at}/field`, parsedField.message));
    return undefined;
  }
  const field = parsedField.path;
  const optional = c.optional === true;
  switch (c.kind) {
    case 'path': {
      const roots: PathRoot[] = [];
      (c.roots ?? []).forEach((r, i) => {
        const parsed = parsePathRoot(resolveRoot(r, src.file));
        if (parsed.ok) roots.push(parsed.root);
        else problems.push(src.problem(`${at}/roots/${i}`, unusableRoot(parsed.reason)));
      });
      return fieldCheck(
        `path ${field.text} under ${roots.map((r) => r.text).join(', ')}`,
        field,
        optional,
        'path',
        (v) => checkPathUnderRoots(v, roots),
      );
    }
    case 'url': {
      const hosts: HostPattern[] = [];
      (c.hosts ?? []).forEach((h, i) => {
        const parsed = parseHostPattern(h);
        if (parsed.ok) hosts.push(parsed.host);
        else problems.push(src.problem(`${at}/hosts/${i}`, parsed.message));
      });
      const rule: UrlRule = {
        schemes: new Set(c.schemes ?? ['https']),
        hosts,
        ...(c.ports ? { ports: new Set(c.ports) } : {}),
      };
      return fieldCheck(
        `url ${field.text} to ${[...rule.schemes].join('|')}://${hosts.map((h) => h.text).join('|')}`,
        field,
        optional,
        'url',
        (v) => checkUrl(v, rule),
      );
    }
    case 'noLeadingDash':
      return fieldCheck(`noLeadingDash ${field.text}`, field, optional, 'noLeadingDash', checkNoLeadingDash);
  }
}

function unusableRoot(reason: string): string {
  return (
    `is not a usable root (${reason.replace(/_/g, ' ')}): write a canonical absolute path (no "//", "." or ".." ` +
    `segments, no "~", "%", ";", ":" or "\\"), or one relative to the policy file's folder starting with "./" or "../"`
  );
}

/**
 * A root written `./…` or `../…` is relative to the folder of the policy file that names it: resolved here, once,
 * to an absolute normalised path (which then passes the same checks as a root written absolute). Other roots are
 * returned unchanged.
 */
export function resolveRoot(root: string, policyFile: string): string {
  if (!root.startsWith('./') && !root.startsWith('../')) return root;
  return path.resolve(path.dirname(path.resolve(policyFile)), root);
}

/** A constraint on one field: a list value has each element checked (an empty list passes). */
function fieldCheck(
  label: string,
  field: FieldPath,
  optional: boolean,
  kind: string,
  check: (value: unknown) => { ok: true } | { ok: false; reason: string },
): ArgumentCheck {
  const elementwise = kind !== 'noLeadingDash'; // noLeadingDash walks lists itself
  return {
    label,
    field: { text: field.text, segments: field.segments, optional },
    check(args): Omit<ArgumentViolation, 'ruleId'> | undefined {
      const { found, value } = readField(args, field);
      if (!found || value === undefined)
        return optional ? undefined : { field: field.pointer, constraint: `${kind}:missing` };
      if (elementwise && Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const r = check(value[i]);
          if (!r.ok) return { field: `${field.pointer}/${i}`, constraint: `${kind}:${r.reason}` };
        }
        return undefined;
      }
      const r = check(value);
      return r.ok ? undefined : { field: field.pointer, constraint: `${kind}:${r.reason}` };
    },
  };
}

// ─── Index ───────────────────────────────────────────────────────────────────────────────────────────────

function buildIndex(rules: readonly CompiledRule[]): Record<TargetKind, KindIndex> {
  const make = (): { patterns: PatternIndex<CompiledRule>; byUpstream: Map<string, CompiledRule[]> } => ({
    patterns: new PatternIndex(),
    byUpstream: new Map(),
  });
  const index = { tool: make(), resource: make(), prompt: make(), request: make() };
  for (const rule of rules) {
    const { tools, resources, prompts, requests, upstreams } = rule.match;
    const lists: [TargetKind, readonly Glob[] | undefined][] = [
      ['tool', tools],
      ['resource', resources],
      ['prompt', prompts],
      ['request', requests],
    ];
    if (lists.every(([, l]) => l === undefined)) {
      for (const u of upstreams ?? []) {
        for (const kind of ['tool', 'resource', 'prompt'] as const) {
          const list = index[kind].byUpstream.get(u);
          if (list) list.push(rule);
          else index[kind].byUpstream.set(u, [rule]);
        }
      }
      continue;
    }
    for (const [kind, globs] of lists) for (const g of globs ?? []) index[kind].patterns.add(g, rule);
  }
  return index;
}

// ─── Schema errors → problems ────────────────────────────────────────────────────────────────────────────

const rootSchema = schemaJson as Record<string, unknown>;
let validator: ValidateFunction | undefined;
let metaValidator: ValidateFunction | null | undefined;

/** Loaded once per process (a reload compiles a new policy set, not a new meta-schema); `undefined` when absent or stale. */
/** The JSON Schema 2020-12 meta-schema validator for argument schemas, precompiled by `npm run build`. */
function precompiledMetaSchema(): ValidateFunction | undefined {
  if (metaValidator === undefined)
    metaValidator = loadPrecompiled(PRECOMPILED_VALIDATORS.metaSchema, metaSchemaFingerprint()) ?? null;
  return metaValidator ?? undefined;
}

function policySchema(): ValidateFunction {
  // verbose (SCHEMA_AJV_OPTIONS): errors carry their parent schema, which gives the allowed keys for "did you mean".
  validator ??= schemaValidator(rootSchema, PRECOMPILED_VALIDATORS.policy);
  return validator;
}

// ─── Small helpers ───────────────────────────────────────────────────────────────────────────────────────

function readDir(dir: string): string[] {
  try {
    return regularFileNames(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError([
      {
        file: dir,
        path: '',
        message: `cannot read the policy folder (${code === 'ENOENT' ? 'no such folder' : (code ?? 'unknown error')})`,
      },
    ]);
  }
}

/**
 * The names of the regular files in `dir`, following symlinks: a Kubernetes ConfigMap mounted as a folder shows
 * each key as a symlink (`orders.yaml -> ..data/orders.yaml`), and kubelet swaps `..data` atomically on update.
 * Hidden entries (`..data`, `..2026_11_25…`, editors' `.swp`) are never policy files.
 */
export function regularFileNames(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter(
      (d) => !d.name.startsWith('.') && (d.isFile() || (d.isSymbolicLink() && isRegularFile(path.join(dir, d.name)))),
    )
    .map((d) => d.name);
}

function isRegularFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false; // a dangling link
  }
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
