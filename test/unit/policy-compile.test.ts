import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, type ConfigProblem } from '../../src/errors/config-error.js';
import {
  compilePolicy,
  listPolicyFiles,
  loadPolicyDir,
  policyRevision,
  tryLoadPolicyDir,
} from '../../src/policy/compile.js';
import { CompiledPolicyEngine, reloadPolicy } from '../../src/policy/engine.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-policy-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Compiles texts that must fail; returns the problems and the printed message. */
function fail(...texts: string[]): { problems: readonly ConfigProblem[]; message: string } {
  try {
    compilePolicy(texts.map((text, i) => ({ file: `policies/f${i}.yaml`, text })));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.problems.length).toBeGreaterThan(0);
    return { problems: e.problems, message: e.message };
  }
  throw new Error('expected a ConfigError');
}

function problemAt(problems: readonly ConfigProblem[], pointer: string): ConfigProblem {
  const found = problems.find((p) => p.path === pointer);
  if (!found)
    throw new Error(`no problem at ${pointer}; got:\n${problems.map((p) => `${p.path}: ${p.message}`).join('\n')}`);
  return found;
}

const GOOD_RULE = `  - id: ok
    effect: allow
    match: { tools: [a__b] }
`;

describe('schemas/policy.schema.json', () => {
  it('compiles under Ajv2020 strict mode and describes every property', () => {
    const schema = JSON.parse(fs.readFileSync(path.join(root, 'schemas/policy.schema.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    new Ajv2020({ strict: true }).compile(schema);
    const defs = schema.$defs as Record<string, Record<string, unknown>>;
    const described = (v: Record<string, unknown>): boolean =>
      'description' in v ||
      (typeof v.$ref === 'string' && 'description' in (defs[v.$ref.replace('#/$defs/', '')] ?? {}));
    const missing: string[] = [];
    const walk = (node: unknown, at: string): void => {
      if (typeof node !== 'object' || node === null) return;
      const props = (node as { properties?: Record<string, unknown> }).properties;
      // if/then blocks only restate properties (`false`, `true`) described where they are defined.
      if (props && !/\/(if|then)$/.test(at)) {
        for (const [k, v] of Object.entries(props))
          if (typeof v === 'object' && v !== null && !described(v as Record<string, unknown>))
            missing.push(`${at}/properties/${k}`);
      }
      for (const [k, v] of Object.entries(node)) walk(v, `${at}/${k}`);
    };
    walk(schema, '#');
    expect(missing).toEqual([]);
  });
});

describe('compilePolicy: problems with file, line and path', () => {
  it('reports an unknown key at its line, with a suggestion', () => {
    const { problems, message } = fail(`version: 1
rules:
  - id: r1
    effect: allow
    match:
      tool: [a__b]
`);
    const p = problemAt(problems, '/rules/0/match/tool');
    expect(p.line).toBe(6);
    expect(p.message).toBe('unknown key "tool" (did you mean "tools"?)');
    expect(message).toContain('policies/f0.yaml:6: /rules/0/match/tool: unknown key "tool" (did you mean "tools"?)');
  });

  it('collects every problem of every file at once', () => {
    const { problems } = fail(
      `version: 2
rules:
  - id: Bad_Id
    effect: maybe
    match: {}
`,
      `version: 1
rules:
  - id: r
    effect: allow
    match: { tools: ["has space"] }
    when: { scopes: { allOf: ["bad scope"] } }
    extra: 1
`,
    );
    expect(problemAt(problems, '/version').message).toBe('must be 1 (got 2)');
    expect(problemAt(problems, '/rules/0/id')).toMatchObject({
      line: 3,
      message: expect.stringContaining('must be a rule id'),
    });
    expect(problemAt(problems, '/rules/0/effect')).toMatchObject({
      line: 4,
      message: 'must be one of "allow", "deny" (got "maybe")',
    });
    expect(problemAt(problems, '/rules/0/match')).toMatchObject({
      line: 5,
      message: 'must name at least one of tools, resources, prompts, requests, upstreams',
    });
    expect(problemAt(problems, '/rules/0/match/tools/0')).toMatchObject({ file: 'policies/f1.yaml', line: 5 });
    expect(problemAt(problems, '/rules/0/when/scopes/allOf/0').message).toContain('must be a scope');
    expect(problemAt(problems, '/rules/0/extra')).toMatchObject({
      line: 7,
      message: expect.stringContaining('unknown key "extra"'),
    });
  });

  it('reports missing keys and wrong types', () => {
    const { problems } = fail(`version: 1
rules:
  - id: r
    match: { tools: a__b }
`);
    expect(problemAt(problems, '/rules/0').message).toBe('missing required key "effect"');
    expect(problemAt(problems, '/rules/0/match/tools').message).toBe('must be a list, not a string');
    expect(fail('- just a list').problems[0]!.message).toContain('must be a YAML mapping');
  });

  it('refuses arguments, redact and limits on deny rules', () => {
    const { problems } = fail(`version: 1
rules:
  - id: r
    effect: deny
    match: { tools: [a__b] }
    redact: [x]
    limits: { concurrency: 1 }
`);
    expect(problemAt(problems, '/rules/0/redact')).toMatchObject({
      line: 6,
      message: 'key "redact" is only for allow rules (this rule has effect: deny)',
    });
    expect(problemAt(problems, '/rules/0/limits').line).toBe(7);
  });

  it('refuses constraint keys of another kind and a constraint without its required key', () => {
    const { problems } = fail(`version: 1
rules:
  - id: r
    effect: allow
    match: { tools: [a__b] }
    arguments:
      constraints:
        - { field: p, kind: path, hosts: [a.example] }
        - { field: u, kind: url }
        - { field: x, kind: shell }
`);
    expect(problemAt(problems, '/rules/0/arguments/constraints/0/hosts').message).toBe(
      'key "hosts" is only for constraints of kind url',
    );
    expect(problemAt(problems, '/rules/0/arguments/constraints/0').message).toBe('missing required key "roots"');
    expect(problemAt(problems, '/rules/0/arguments/constraints/1')).toMatchObject({
      line: 9,
      message: 'missing required key "hosts"',
    });
    expect(problemAt(problems, '/rules/0/arguments/constraints/2/kind').message).toContain(
      'must be one of "path", "url", "noLeadingDash"',
    );
  });

  it('reports duplicate rule ids across files, naming the first', () => {
    const { problems, message } = fail(
      `version: 1\nrules:\n${GOOD_RULE}`,
      `version: 1\nrules:\n  - id: other\n    effect: deny\n    match: { tools: [x] }\n${GOOD_RULE}`,
    );
    const p = problemAt(problems, '/rules/1/id');
    expect(p).toMatchObject({ file: 'policies/f1.yaml', line: 6 });
    expect(message).toContain('policies/f1.yaml:6: /rules/1/id: rule id "ok" is already used at f0.yaml:3');
  });

  it('reports YAML syntax errors and duplicate keys at their line', () => {
    const dup = fail(`version: 1
rules:
  - id: r
    id: s
    effect: allow
    match: { tools: [a] }
`);
    expect(dup.problems[0]).toMatchObject({ line: 4, message: 'duplicate key in a mapping' });
    const syntax = fail('version: 1\nrules:\n  - id: [unclosed\n');
    expect(syntax.problems[0]!.message).toMatch(/^invalid YAML/);
    expect(syntax.problems[0]!.line).toBeGreaterThanOrEqual(3);
  });

  it('reports an invalid regular expression in an argument schema at its own line', () => {
    const { problems, message } = fail(`version: 1
rules:
  - id: r
    effect: allow
    match: { tools: [a__b] }
    arguments:
      properties:
        name:
          type: string
          pattern: "^(unclosed"
      patternProperties:
        "[z-a]": { type: string }
`);
    expect(problemAt(problems, '/rules/0/arguments/properties/name/pattern')).toMatchObject({
      line: 10,
      message: expect.stringContaining('invalid regular expression'),
    });
    expect(problemAt(problems, '/rules/0/arguments/patternProperties/[z-a]').line).toBe(12);
    expect(message).toContain('f0.yaml:10: /rules/0/arguments/properties/name/pattern: invalid regular expression');
  });

  it('compiles argument schemas in strict mode: unknown keywords and formats are errors', () => {
    const unknown = fail(`version: 1
rules:
  - id: r
    effect: allow
    match: { tools: [a__b] }
    arguments:
      properties:
        n: { type: integer, minimun: 1 }
`);
    expect(problemAt(unknown.problems, '/rules/0/arguments')).toMatchObject({
      line: 6,
      message: expect.stringContaining('unknown keyword: "minimun"'),
    });
    const format = fail(`version: 1
rules:
  - id: r
    effect: allow
    match: { tools: [a__b] }
    arguments:
      properties:
        u: { type: string, format: uri }
`);
    expect(problemAt(format.problems, '/rules/0/arguments').message).toContain(
      'use "pattern", or a constraint such as kind: url',
    );
  });

  it('checks field paths, roots and hosts of constraints', () => {
    const { problems } = fail(`version: 1
rules:
  - id: r
    effect: allow
    match: { tools: [a__b] }
    arguments:
      constraints:
        - { field: "a..b", kind: noLeadingDash }
        - { field: p, kind: path, roots: [/srv/../etc] }
        - { field: u, kind: url, hosts: [API.example.com, "*.com", "a.*.example.org"] }
    redact: ["bad path!"]
`);
    expect(problemAt(problems, '/rules/0/arguments/constraints/0/field').line).toBe(8);
    expect(problemAt(problems, '/rules/0/arguments/constraints/1/roots/0').message).toContain('not a usable root');
    expect(problemAt(problems, '/rules/0/arguments/constraints/2/hosts/0').message).toContain('"api.example.com"');
    expect(problemAt(problems, '/rules/0/arguments/constraints/2/hosts/1').message).toContain('at least two labels');
    expect(problemAt(problems, '/rules/0/arguments/constraints/2/hosts/2').message).toContain('leading "*."');
    expect(problemAt(problems, '/rules/0/redact/0').line).toBe(11);
  });

  it('refuses arguments on a rule that matches only resources', () => {
    const { problems } = fail(`version: 1
rules:
  - id: r
    effect: allow
    match: { resources: ["file:///x/**"] }
    arguments: { properties: { a: { type: string } } }
`);
    expect(problemAt(problems, '/rules/0/arguments').message).toContain('only resources');
  });
});

describe('compilePolicy: the compiled set', () => {
  it('is frozen, ordered by file name, with a revision over names and contents', () => {
    const a = {
      file: 'x/b.yaml',
      text: `version: 1\nrules:\n  - { id: from-b, effect: allow, match: { tools: [t] } }\n`,
    };
    const b = {
      file: 'x/a.yaml',
      text: `version: 1\nrules:\n  - { id: from-a, effect: allow, match: { tools: [t] } }\n`,
    };
    const p = compilePolicy([a, b]);
    expect(p.files).toEqual(['a.yaml', 'b.yaml']);
    expect(p.rules.map((r) => r.id)).toEqual(['from-a', 'from-b']);
    expect(p.revision).toMatch(/^[0-9a-f]{12}$/);
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.rules)).toBe(true);
    expect(Object.isFrozen(p.rules[0])).toBe(true);
    expect(compilePolicy([b, a]).revision).toBe(p.revision);
    expect(policyRevision([{ ...a, text: `${a.text} ` }, b])).not.toBe(p.revision);
    expect(policyRevision([{ ...a, file: 'x/c.yaml' }, b])).not.toBe(p.revision);
  });

  it('compiles the empty set (default deny)', () => {
    expect(compilePolicy([]).rules).toEqual([]);
  });
});

describe('loadPolicyDir', () => {
  it('reads *.yaml but not *.test.yaml, other files or subfolders', () => {
    fs.writeFileSync(path.join(dir, 'b.yaml'), `version: 1\nrules:\n${GOOD_RULE}`);
    fs.writeFileSync(path.join(dir, 'a.test.yaml'), 'not: a policy');
    fs.writeFileSync(path.join(dir, 'tools.lock'), 'anything');
    fs.writeFileSync(path.join(dir, 'notes.md'), '# hi');
    fs.mkdirSync(path.join(dir, 'sub.yaml'));
    expect(listPolicyFiles(dir)).toEqual([path.join(dir, 'b.yaml')]);
    expect(loadPolicyDir(dir).rules.map((r) => r.id)).toEqual(['ok']);
  });

  it('reports a missing folder, and tryLoadPolicyDir returns problems instead of throwing', () => {
    expect(() => loadPolicyDir(path.join(dir, 'nope'))).toThrow(/no such folder/);
    fs.writeFileSync(path.join(dir, 'bad.yaml'), 'version: 1\nrules: nope\n');
    const r = tryLoadPolicyDir(dir);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toContain('bad.yaml:2: /rules: must be a list');
  });

  it('reloads: a good folder is swapped in whole, a bad one leaves the running policy in place', () => {
    const file = path.join(dir, 'p.yaml');
    fs.writeFileSync(file, `version: 1\nrules:\n${GOOD_RULE}`);
    const engine = new CompiledPolicyEngine(loadPolicyDir(dir));
    const first = engine.revision;
    expect(reloadPolicy(dir, engine)).toEqual({ ok: true, previous: first, revision: first, changed: false });
    fs.writeFileSync(file, `version: 1\nrules:\n${GOOD_RULE.replace('a__b', 'a__c')}`);
    const second = reloadPolicy(dir, engine);
    expect(second).toMatchObject({ ok: true, previous: first, changed: true });
    expect(engine.revision).not.toBe(first);
    const running = engine.revision;
    fs.writeFileSync(file, 'version: 1\nrules:\n  - id: x\n');
    const bad = reloadPolicy(dir, engine);
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error.message).toContain('p.yaml:3: /rules/0: missing required key "effect"');
    expect(engine.revision).toBe(running);
  });

  it('loads the bundled example policy set', () => {
    const p = loadPolicyDir(path.join(root, 'policies'));
    expect(p.files).toEqual(['client-requests.yaml', 'everything.yaml', 'files.yaml', 'orders.yaml']);
    expect(p.rules.length).toBeGreaterThan(5);
  });
});
