/**
 * Policy fixtures (`*.test.yaml` beside the policies, like OPA's `x_test.rego` beside `x.rego`): each test is
 * a principal, a request and the expected decision. `gatehouse policy test` runs them all, shows each test's
 * actual decision, and lists the rules that no test exercised (no test had that rule as the deciding rule).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { mapSchemaErrors } from '../config/schema-problems.js';
import { YamlSource } from '../config/yaml-source.js';
import { ConfigError, type ConfigProblem } from '../errors/config-error.js';
import type { Principal } from '../identity/principal.js';
import { FIXTURE_SUFFIX, regularFileNames, type PolicySource } from './compile.js';
import { evaluate } from './decide.js';
import type { Decision, DecisionInput, TargetKind } from './decision.js';
import type { CompiledPolicy } from './model.js';
import { POLICY_WORDING } from './schema-wording.js';
import { UPSTREAM_REQUEST_METHODS, upstreamRequestOf } from './upstream-requests.js';

export interface FixturePrincipal {
  sub?: string;
  /** Default: true when `sub` is absent. */
  anonymous?: boolean;
  issuer?: string;
  client_id?: string;
  scopes?: string[];
  groups?: string[];
  claims?: Record<string, unknown>;
  cert?: { subject?: string; sans?: string[]; thumbprint?: string };
}

export interface FixtureRequest {
  /** tools/call, resources/read, prompts/get…; `tools/list` / `prompts/list` / `resources/list` with a target ask whether a listing shows it. */
  method: string;
  tool?: string;
  prompt?: string;
  uri?: string;
  /**
   * Default: the part of the tool or prompt name before the first separator (`__`). Required for resources and
   * for requests an upstream sends the client (`method: sampling/createMessage`, `elicitation/create`, `roots/list`).
   */
  upstream?: string;
  /** `elicitation/create` only: the elicitation's mode (default form, as on the wire). */
  mode?: 'form' | 'url';
  args?: Record<string, unknown>;
  quarantined?: boolean;
}

export interface FixtureExpectation {
  decision: 'allow' | 'deny';
  rule?: string;
  reason?: string;
  requiredScopes?: string[];
  violation?: { field?: string; constraint?: string };
}

export interface PolicyFixture {
  readonly file: string;
  readonly line?: number;
  readonly name: string;
  readonly principal: FixturePrincipal;
  readonly request: FixtureRequest;
  readonly expect: FixtureExpectation;
}

export interface FixtureResult {
  readonly fixture: PolicyFixture;
  readonly passed: boolean;
  readonly actual: Decision;
  /** What differs from the expectation; empty when passed. */
  readonly mismatches: readonly string[];
}

export interface PolicyTestReport {
  readonly revision: string;
  readonly results: readonly FixtureResult[];
  readonly passed: number;
  readonly failed: number;
  /** Rule ids that were not the deciding rule of any test, in policy order. */
  readonly uncoveredRules: readonly string[];
}

export interface RunOptions {
  /** The catalogue separator used to infer a target's upstream from its name. Default `__`. */
  readonly separator?: string;
  /** The clock value given to every decision. Default 0 (decisions do not depend on it today). */
  readonly now?: number;
}

/** The fixture files of a folder, in name order. */
export function listFixtureFiles(dir: string): string[] {
  return regularFileNames(dir)
    .filter((name) => name.endsWith(FIXTURE_SUFFIX))
    .sort()
    .map((name) => path.join(dir, name));
}

/** Reads every `*.test.yaml` of `dir`. Throws `ConfigError` listing every problem. */
export function loadPolicyFixtures(dir: string): PolicyFixture[] {
  return parsePolicyFixtures(listFixtureFiles(dir).map((file) => ({ file, text: fs.readFileSync(file, 'utf8') })));
}

export function parsePolicyFixtures(sources: readonly PolicySource[]): PolicyFixture[] {
  const problems: ConfigProblem[] = [];
  const out: PolicyFixture[] = [];
  for (const source of sources) {
    const src = new YamlSource(source.file, source.text, { syntaxErrors: 'plain' });
    problems.push(...src.problems);
    if (src.problems.length > 0) continue;
    const validate = fixtureSchema();
    if (!validate(src.data)) {
      problems.push(...mapSchemaErrors(validate.errors ?? [], src, POLICY_WORDING));
      continue;
    }
    const tests = (src.data as { tests: Omit<PolicyFixture, 'file' | 'line'>[] }).tests;
    const names = new Set<string>();
    tests.forEach((t, i) => {
      if (names.has(t.name))
        problems.push(src.problem(`/tests/${i}/name`, `test name "${t.name}" is used twice in this file`));
      names.add(t.name);
      const problem = fixtureRequestProblem(t.request);
      if (problem !== undefined) problems.push(src.problem(`/tests/${i}/request`, problem));
      const line = src.line(`/tests/${i}`);
      const request =
        t.request.args !== undefined
          ? { ...t.request, args: expandPolicyDir(t.request.args, path.dirname(path.resolve(source.file))) }
          : t.request;
      out.push({
        file: source.file,
        ...(line !== undefined ? { line } : {}),
        name: t.name,
        principal: t.principal ?? {},
        request,
        expect: t.expect,
      });
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

/** Runs fixtures against a compiled policy. */
export function runPolicyFixtures(
  policy: CompiledPolicy,
  fixtures: readonly PolicyFixture[],
  opts: RunOptions = {},
): PolicyTestReport {
  const deciding = new Set<string>();
  const results = fixtures.map((fixture): FixtureResult => {
    const actual = evaluate(fixtureInput(fixture, opts), policy, undefined);
    if (actual.ruleId !== undefined) deciding.add(actual.ruleId);
    const mismatches = compare(fixture.expect, actual);
    return { fixture, passed: mismatches.length === 0, actual, mismatches };
  });
  const passed = results.filter((r) => r.passed).length;
  return {
    revision: policy.revision,
    results,
    passed,
    failed: results.length - passed,
    uncoveredRules: policy.rules.filter((r) => !deciding.has(r.id)).map((r) => r.id),
  };
}

/** The decision input a fixture describes (exported for `gatehouse policy explain --fixture`). */
export function fixtureInput(
  fixture: Pick<PolicyFixture, 'principal' | 'request'>,
  opts: RunOptions = {},
): DecisionInput {
  const r = fixture.request;
  const separator = opts.separator ?? '__';
  const listing = LISTING_OF[r.method];
  const target = targetOf(r, separator);
  // A listing with a target asks "is it shown?": the call's decision without the argument step (see `visible`).
  const isVisibilityCheck = listing !== undefined && target !== undefined;
  const input: DecisionInput = {
    principal: fixturePrincipal(fixture.principal),
    method: isVisibilityCheck ? listing.call : r.method,
    now: opts.now ?? 0,
    ...(target !== undefined ? { target } : {}),
    ...(r.args !== undefined ? { args: r.args } : {}),
    ...(r.quarantined === true ? { quarantined: true } : {}),
    ...(isVisibilityCheck ? { argumentsUnchecked: true } : {}),
  };
  return input;
}

export function fixturePrincipal(p: FixturePrincipal): Principal {
  return Object.freeze({
    subject: p.sub ?? 'anonymous',
    anonymous: p.anonymous ?? p.sub === undefined,
    ...(p.issuer !== undefined ? { issuer: p.issuer } : {}),
    ...(p.client_id !== undefined ? { clientId: p.client_id } : {}),
    scopes: new Set(p.scopes ?? []),
    groups: Object.freeze([...(p.groups ?? [])]),
    claims: Object.freeze({ ...(p.claims ?? {}) }),
    ...(p.cert?.subject !== undefined ? { certSubject: p.cert.subject } : {}),
    ...(p.cert?.sans !== undefined ? { certSans: Object.freeze([...p.cert.sans]) } : {}),
    ...(p.cert?.thumbprint !== undefined ? { certThumbprint: p.cert.thumbprint } : {}),
  });
}

/** Text for the CLI: one line per test, details for failures, then the uncovered rules. */
export function formatTestReport(report: PolicyTestReport): string {
  const lines: string[] = [];
  for (const r of report.results) {
    const where = `${path.basename(r.fixture.file)}${r.fixture.line !== undefined ? `:${r.fixture.line}` : ''}`;
    lines.push(`${r.passed ? 'PASS' : 'FAIL'} ${where} ${r.fixture.name} → ${describeDecision(r.actual)}`);
    for (const m of r.mismatches) lines.push(`     ${m}`);
  }
  lines.push(`${report.passed} passed, ${report.failed} failed (policy ${report.revision})`);
  if (report.uncoveredRules.length > 0) lines.push(`rules no test decides: ${report.uncoveredRules.join(', ')}`);
  return lines.join('\n');
}

export function describeDecision(d: Decision): string {
  if (d.effect === 'allow') return `allow (rule ${d.ruleId})`;
  const parts = [`deny ${d.reason}`];
  if (d.ruleId !== undefined) parts.push(`rule ${d.ruleId}`);
  if (d.requiredScopes !== undefined) parts.push(`needs ${d.requiredScopes.join(' ')}`);
  if (d.violation !== undefined) parts.push(`${d.violation.field || '/'} ${d.violation.constraint}`);
  return parts.join(', ');
}

/**
 * Fixtures are YAML and cannot compute paths, while a policy root written `../examples/sandbox` becomes an
 * absolute path that depends on where the checkout lives. So in fixture `args`, every string value may use
 * `${POLICY_DIR}` (the absolute path of the fixture's folder, which is the policy folder) and
 * `${POLICY_DIR:../some/dir}` (that relative path resolved against it and normalised, exactly as a relative
 * root is). Only the fixture runner expands them; policies and live requests never do.
 */
export function expandPolicyDir<T>(value: T, policyDir: string): T {
  if (typeof value === 'string') {
    return value.replace(POLICY_DIR_PLACEHOLDER, (_m, rel: string | undefined) =>
      rel === undefined ? policyDir : path.resolve(policyDir, rel),
    ) as T;
  }
  if (Array.isArray(value)) return value.map((v: unknown) => expandPolicyDir(v, policyDir)) as T;
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandPolicyDir(v, policyDir)])) as T;
  }
  return value;
}

const POLICY_DIR_PLACEHOLDER = /\$\{POLICY_DIR(?::([^}]+))?\}/g;

// ─── Helpers ─────────────────────────────────────────────────────────────────────────────────────────────

const LISTING_OF: Readonly<Record<string, { kind: TargetKind; call: string }>> = {
  'tools/list': { kind: 'tool', call: 'tools/call' },
  'prompts/list': { kind: 'prompt', call: 'prompts/get' },
  'resources/list': { kind: 'resource', call: 'resources/read' },
};

function targetOf(r: FixtureRequest, separator: string): DecisionInput['target'] {
  const request = upstreamRequestOf(r.method, r.mode);
  if (request !== undefined) return { kind: 'request', name: request, upstream: r.upstream ?? '' };
  const upstreamOf = (name: string): string =>
    r.upstream ?? (name.includes(separator) ? name.slice(0, name.indexOf(separator)) : '');
  if (r.tool !== undefined) return { kind: 'tool', name: r.tool, upstream: upstreamOf(r.tool) };
  if (r.prompt !== undefined) return { kind: 'prompt', name: r.prompt, upstream: upstreamOf(r.prompt) };
  if (r.uri !== undefined) return { kind: 'resource', name: r.uri, upstream: r.upstream ?? '' };
  return undefined;
}

/** What is wrong with a fixture's request (also `gatehouse policy explain`'s target), or undefined. */
export function fixtureRequestProblem(r: FixtureRequest): string | undefined {
  const named = [r.tool, r.prompt, r.uri].filter((v) => v !== undefined).length;
  if (named > 1) return 'name at most one of tool, prompt, uri';
  const listing = LISTING_OF[r.method];
  if (UPSTREAM_REQUEST_METHODS.has(r.method)) {
    if (named > 0) return `${r.method} is a request from an upstream: name its "upstream", not a tool, prompt or uri`;
    if (r.upstream === undefined || r.upstream === '')
      return `${r.method} needs "upstream" (the upstream that sends it)`;
  }
  if (r.mode !== undefined && r.method !== 'elicitation/create') return '"mode" is only for elicitation/create';
  if (r.method === 'tools/call' && r.tool === undefined) return 'tools/call needs "tool"';
  if (r.method === 'prompts/get' && r.prompt === undefined) return 'prompts/get needs "prompt"';
  if (
    r.method.startsWith('resources/') &&
    listing === undefined &&
    r.method !== 'resources/templates/list' &&
    r.uri === undefined
  )
    return `${r.method} needs "uri"`;
  if (listing !== undefined && named === 1) {
    const kind = r.tool !== undefined ? 'tool' : r.prompt !== undefined ? 'prompt' : 'resource';
    if (kind !== listing.kind) return `${r.method} lists ${listing.kind}s; name a ${listing.kind}`;
  }
  return undefined;
}

function compare(e: FixtureExpectation, d: Decision): string[] {
  const out: string[] = [];
  if (e.decision !== d.effect) out.push(`expected ${e.decision}, got ${d.effect}`);
  if (e.rule !== undefined && e.rule !== d.ruleId) out.push(`expected rule ${e.rule}, got ${d.ruleId ?? 'none'}`);
  if (e.reason !== undefined) {
    const reason = d.effect === 'deny' ? d.reason : undefined;
    if (e.reason !== reason) out.push(`expected reason ${e.reason}, got ${reason ?? 'none'}`);
  }
  if (e.requiredScopes !== undefined) {
    const got = d.effect === 'deny' ? (d.requiredScopes ?? []) : [];
    if ([...got].sort().join(' ') !== [...e.requiredScopes].sort().join(' '))
      out.push(`expected required scopes [${e.requiredScopes.join(' ')}], got [${got.join(' ')}]`);
  }
  if (e.violation !== undefined) {
    const v = d.effect === 'deny' ? d.violation : undefined;
    if (e.violation.field !== undefined && e.violation.field !== v?.field)
      out.push(`expected violation at ${e.violation.field}, got ${v?.field ?? 'none'}`);
    if (e.violation.constraint !== undefined && e.violation.constraint !== v?.constraint)
      out.push(`expected violation ${e.violation.constraint}, got ${v?.constraint ?? 'none'}`);
  }
  return out;
}

let validator: ValidateFunction | undefined;

function fixtureSchema(): ValidateFunction {
  validator ??= new Ajv2020({ strict: true, allErrors: true, verbose: true }).compile(FIXTURE_SCHEMA);
  return validator;
}

const stringList = { type: 'array', items: { type: 'string' } };

/** The shape of a `*.test.yaml` file. */
export const FIXTURE_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  additionalProperties: false,
  required: ['tests'],
  properties: {
    description: { type: 'string' },
    tests: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'request', 'expect'],
        properties: {
          name: { type: 'string', minLength: 1 },
          principal: {
            type: 'object',
            additionalProperties: false,
            properties: {
              sub: { type: 'string', minLength: 1 },
              anonymous: { type: 'boolean' },
              issuer: { type: 'string' },
              client_id: { type: 'string' },
              scopes: stringList,
              groups: stringList,
              claims: { type: 'object' },
              cert: {
                type: 'object',
                additionalProperties: false,
                properties: { subject: { type: 'string' }, sans: stringList, thumbprint: { type: 'string' } },
              },
            },
          },
          request: {
            type: 'object',
            additionalProperties: false,
            required: ['method'],
            properties: {
              method: { type: 'string', minLength: 1 },
              tool: { type: 'string', minLength: 1 },
              prompt: { type: 'string', minLength: 1 },
              uri: { type: 'string', minLength: 1 },
              upstream: { type: 'string' },
              args: { type: 'object' },
              quarantined: { type: 'boolean' },
              mode: { enum: ['form', 'url'] },
            },
          },
          expect: {
            type: 'object',
            additionalProperties: false,
            required: ['decision'],
            properties: {
              decision: { enum: ['allow', 'deny'] },
              rule: { type: 'string' },
              reason: {
                enum: ['no_matching_rule', 'denied_by_rule', 'insufficient_scope', 'invalid_arguments', 'quarantined'],
              },
              requiredScopes: stringList,
              violation: {
                type: 'object',
                additionalProperties: false,
                properties: { field: { type: 'string' }, constraint: { type: 'string' } },
              },
            },
          },
        },
      },
    },
  },
} as const;
