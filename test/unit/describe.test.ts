/** Policy `describe`: the compiled option, its merge in `decide`, and the words (mcp/describe.ts). */
import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/identity/principal.js';
import { describedTool, describeTerms, duration, limitsSentence } from '../../src/mcp/describe.js';
import { compilePolicy } from '../../src/policy/compile.js';
import { decide } from '../../src/policy/decide.js';
import type { AllowDecision } from '../../src/policy/decision.js';
import { CompiledPolicyEngine } from '../../src/policy/engine.js';

const allow = (d: Partial<AllowDecision>): AllowDecision => ({
  effect: 'allow',
  ruleId: 'r',
  policyRevision: 'x',
  ...d,
});

describe('the words', () => {
  it('states rate, burst, concurrency and timeout in plain words', () => {
    expect(limitsSentence({ rate: { perMinute: 30, burst: 30 }, timeoutMs: 10_000 })).toBe(
      'Limited to 30 calls per minute per user; times out after 10 s.',
    );
    expect(limitsSentence({ rate: { perMinute: 1, burst: 5 }, concurrency: 2 })).toBe(
      'Limited to 1 call per minute per user (bursts of up to 5); at most 2 at a time per user.',
    );
    expect(limitsSentence({ timeoutMs: 500 })).toBe('Times out after 500 ms.');
    expect(limitsSentence({})).toBeUndefined();
    expect(limitsSentence({ rate: { perMinute: 30, burst: 30 } }, { cacheTtlMs: 30_000 })).toBe(
      'Limited to 30 calls per minute per user; results may be up to 30 s old.',
    );
    expect(limitsSentence({}, { cacheTtlMs: 0 })).toBeUndefined();
  });

  it('durations read naturally', () => {
    expect([500, 1000, 1500, 59_000, 60_000, 90_000, 120_000, 3_600_000, 5_400_000].map(duration)).toEqual([
      '500 ms',
      '1 s',
      '1.5 s',
      '59 s',
      '1 min',
      '90 s',
      '2 min',
      '1 h',
      '1 h 30 min',
    ]);
  });

  it('limits then notes; nothing when there is nothing to say', () => {
    const limits = { rate: { perMinute: 30, burst: 30 } };
    expect(describeTerms(allow({ limits, describe: { limits: true, notes: ['Each call costs one credit'] } }))).toBe(
      'Limited to 30 calls per minute per user. Each call costs one credit.',
    );
    expect(describeTerms(allow({ limits, describe: { limits: false, notes: ['Costs one credit.'] } }))).toBe(
      'Costs one credit.',
    );
    expect(describeTerms(allow({ describe: { limits: true, notes: [] } }))).toBeUndefined();
    expect(describeTerms(allow({ limits }))).toBeUndefined();
  });

  it('appends to a copy of the definition', () => {
    const def = { name: 'x', description: 'Reads.  ', inputSchema: { type: 'object' } };
    expect(describedTool(def, 'Limited.')).toEqual({ ...def, description: 'Reads. — Limited.' });
    expect(def.description).toBe('Reads.  ');
    expect(describedTool({ name: 'y' }, 'Limited.')).toEqual({ name: 'y', description: 'Limited.' });
  });
});

const who = (subject: string): Principal => ({ subject, scopes: new Set<string>(), groups: [], anonymous: false });

function compile(rules: string) {
  return compilePolicy([{ file: 'p.yaml', text: `version: 1\nrules:\n${rules}` }]);
}

describe('the policy option', () => {
  it('merges over the applying allow rules: limits if any asks, every note once, in rule order', () => {
    const policy = compile(`
  - id: a
    effect: allow
    match: { tools: [t] }
    limits: { rate: { perMinute: 10 } }
    describe: { limits: false, note: "One credit." }
  - id: b
    effect: allow
    match: { tools: ["*"] }
    describe: true
  - id: c
    effect: allow
    match: { tools: ["*"] }
    describe: { note: "One credit." }
`);
    const d = decide(
      { principal: who('alice'), method: 'tools/call', target: { kind: 'tool', name: 't', upstream: 'u' }, now: 0 },
      policy,
    );
    expect(d).toMatchObject({ effect: 'allow', describe: { limits: true, notes: ['One credit.'] } });
    expect(new CompiledPolicyEngine(policy).describes).toBe(true);
    expect(new CompiledPolicyEngine(compile('  - { id: z, effect: allow, match: { tools: [t] } }\n')).describes).toBe(
      false,
    );
  });

  it('is refused on deny rules, on rules for upstream requests, and with a multi-line note', () => {
    expect(() => compile('  - { id: d, effect: deny, match: { tools: [t] }, describe: true }\n')).toThrow(/describe/);
    expect(() => compile('  - { id: r, effect: allow, match: { requests: [roots/list] }, describe: true }\n')).toThrow(
      /describe/,
    );
    expect(() => compile('  - { id: n, effect: allow, match: { tools: [t] }, describe: { note: "a\\nb" } }\n')).toThrow(
      /note/,
    );
  });
});
