import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors/config-error.js';
import { compilePolicy, loadPolicyDir } from '../../src/policy/compile.js';
import {
  expandPolicyDir,
  formatTestReport,
  listFixtureFiles,
  loadPolicyFixtures,
  parsePolicyFixtures,
  runPolicyFixtures,
} from '../../src/policy/test-runner.js';

const policies = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../policies');

describe('the bundled policy set and its fixtures', () => {
  const policy = loadPolicyDir(policies);
  const fixtures = loadPolicyFixtures(policies);
  const report = runPolicyFixtures(policy, fixtures);

  it('has a fixture file beside every policy file', () => {
    const fixtureFiles = listFixtureFiles(policies).map((f) => path.basename(f));
    for (const f of policy.files) expect(fixtureFiles).toContain(f.replace(/\.yaml$/, '.test.yaml'));
  });

  it('passes every fixture', () => {
    const failures = report.results.filter((r) => !r.passed);
    expect(failures.map((r) => `${r.fixture.name}: ${r.mismatches.join('; ')}`)).toEqual([]);
    expect(report.passed).toBe(fixtures.length);
    expect(fixtures.length).toBeGreaterThan(40);
  });

  it('decides with every rule at least once (no uncovered rules)', () => {
    expect(report.uncoveredRules).toEqual([]);
  });

  it('covers every deny reason', () => {
    const reasons = new Set(report.results.map((r) => (r.actual.effect === 'deny' ? r.actual.reason : 'allow')));
    expect([...reasons].sort()).toEqual([
      'allow',
      'denied_by_rule',
      'insufficient_scope',
      'invalid_arguments',
      'no_matching_rule',
      'quarantined',
    ]);
  });
});

describe('relative roots and ${POLICY_DIR}', () => {
  it('resolves a ./ or ../ root against the policy file folder, and fixtures expand ${POLICY_DIR}', () => {
    const dir = path.join(path.sep, 'opt', 'gh', 'policies');
    const policy = compilePolicy([
      {
        file: path.join(dir, 'p.yaml'),
        text: `version: 1
rules:
  - id: read
    effect: allow
    match: { tools: [f__read] }
    arguments: { constraints: [{ field: path, kind: path, roots: [../sandbox, ./local/, /abs] }] }
`,
      },
    ]);
    expect(policy.rules[0]!.argumentChecks[0]!.label).toBe(
      'path path under /opt/gh/sandbox, /opt/gh/policies/local, /abs',
    );
    expect(expandPolicyDir({ a: '${POLICY_DIR}/x', b: ['${POLICY_DIR:../sandbox}/y', 3], c: 'plain' }, dir)).toEqual({
      a: '/opt/gh/policies/x',
      b: ['/opt/gh/sandbox/y', 3],
      c: 'plain',
    });
    const fixtures = parsePolicyFixtures([
      {
        file: path.join(dir, 'p.test.yaml'),
        text: `tests:
  - { name: in, request: { method: tools/call, tool: f__read, args: { path: "\${POLICY_DIR:../sandbox}/a" } }, expect: { decision: allow } }
  - { name: out, request: { method: tools/call, tool: f__read, args: { path: "\${POLICY_DIR}/../sandbox/a" } }, expect: { decision: deny, violation: { constraint: "path:dot_dot" } } }
  - { name: beside, request: { method: tools/call, tool: f__read, args: { path: "\${POLICY_DIR:../sandbox_evil}/a" } }, expect: { decision: deny, violation: { constraint: "path:outside_roots" } } }
`,
      },
    ]);
    expect(fixtures[0]!.request.args).toEqual({ path: '/opt/gh/sandbox/a' });
    expect(() =>
      compilePolicy([
        {
          file: path.join(dir, 'q.yaml'),
          text: 'version: 1\nrules:\n  - { id: a, effect: allow, match: { tools: [t] }, arguments: { constraints: [{ field: p, kind: path, roots: [sandbox] }] } }\n',
        },
      ]),
    ).toThrow(
      'roots/0: must be an absolute path (starting with "/") or one relative to the policy file\'s folder (starting with "./" or "../")',
    );
    expect(() =>
      compilePolicy([
        {
          file: path.join(dir, 'r.yaml'),
          text: 'version: 1\nrules:\n  - { id: a, effect: allow, match: { tools: [t] }, arguments: { constraints: [{ field: p, kind: path, roots: ["./%2e%2e"] }] } }\n',
        },
      ]),
    ).toThrow(/roots\/0: is not a usable root \(encoded character\)/);
    expect(runPolicyFixtures(policy, fixtures).results.map((r) => r.mismatches)).toEqual([[], [], []]);
  });
});

describe('the fixture runner', () => {
  const policy = compilePolicy([
    {
      file: 'p.yaml',
      text: `version: 1
rules:
  - { id: read, effect: allow, match: { tools: [x__read] }, when: { scopes: { allOf: [r] } } }
  - { id: never-tested, effect: allow, match: { tools: [x__other] } }
  - { id: no-admin, effect: deny, match: { tools: [x__admin] } }
`,
    },
  ]);

  it('reports pass and fail with the actual decision, and the rules no test decided', () => {
    const fixtures = parsePolicyFixtures([
      {
        file: 'p.test.yaml',
        text: `tests:
  - name: reads
    principal: { sub: a, scopes: [r] }
    request: { method: tools/call, tool: x__read }
    expect: { decision: allow, rule: read }
  - name: wrongly expects allow
    principal: { sub: a }
    request: { method: tools/call, tool: x__read }
    expect: { decision: allow, rule: read }
  - name: wrong scopes expected
    principal: { sub: a }
    request: { method: tools/call, tool: x__read }
    expect: { decision: deny, reason: insufficient_scope, requiredScopes: [w] }
`,
      },
    ]);
    const report = runPolicyFixtures(policy, fixtures);
    expect(report.passed).toBe(1);
    expect(report.failed).toBe(2);
    // insufficient_scope names the rule that wanted the scope, so only the effect differs.
    expect(report.results[1]!.mismatches).toEqual(['expected allow, got deny']);
    expect(report.results[1]!.actual).toMatchObject({
      effect: 'deny',
      reason: 'insufficient_scope',
      requiredScopes: ['r'],
    });
    expect(report.results[2]!.mismatches).toEqual(['expected required scopes [w], got [r]']);
    expect(report.uncoveredRules).toEqual(['never-tested', 'no-admin']);
    const text = formatTestReport(report);
    expect(text).toContain('PASS p.test.yaml:2 reads → allow (rule read)');
    expect(text).toContain('FAIL p.test.yaml:6 wrongly expects allow → deny insufficient_scope, rule read, needs r');
    expect(text).toContain('1 passed, 2 failed');
    expect(text).toContain('rules no test decides: never-tested, no-admin');
  });

  it('checks listing visibility with tools/list and a tool', () => {
    const fixtures = parsePolicyFixtures([
      {
        file: 'v.test.yaml',
        text: `tests:
  - name: listed
    principal: { sub: a, scopes: [r] }
    request: { method: tools/list, tool: x__read }
    expect: { decision: allow }
  - name: hidden
    principal: { sub: a }
    request: { method: tools/list, tool: x__admin }
    expect: { decision: deny, reason: denied_by_rule }
  - name: anonymous by default
    request: { method: tools/call, tool: x__other }
    expect: { decision: allow, rule: never-tested }
`,
      },
    ]);
    const report = runPolicyFixtures(policy, fixtures);
    expect(report.results.map((r) => r.mismatches)).toEqual([[], [], []]);
  });

  it('rejects malformed fixture files with file:line problems', () => {
    let error: unknown;
    try {
      parsePolicyFixtures([
        {
          file: 'bad.test.yaml',
          text: `tests:
  - name: one
    request: { method: tools/call }
    expect: { decision: maybe }
  - name: one
    principal: { subject: a }
    request: { method: tools/call, tool: x }
    expect: { decision: allow }
`,
        },
      ]);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toContain(
      'bad.test.yaml:4: /tests/0/expect/decision: must be one of "allow", "deny" (got "maybe")',
    );
    expect(message).toContain('bad.test.yaml:6: /tests/1/principal/subject: unknown key "subject"');
  });

  it('reports request problems and duplicate names', () => {
    expect(() =>
      parsePolicyFixtures([
        {
          file: 'x.test.yaml',
          text: `tests:
  - { name: a, request: { method: tools/call }, expect: { decision: deny } }
  - { name: a, request: { method: tools/call, tool: t }, expect: { decision: deny } }
`,
        },
      ]),
    ).toThrow(
      /x\.test\.yaml:2: \/tests\/0\/request: tools\/call needs "tool"[\s\S]*x\.test\.yaml:3: \/tests\/1\/name: test name "a" is used twice/,
    );
  });
});
