import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/identity/principal.js';
import { compilePolicy } from '../../src/policy/compile.js';
import { visible } from '../../src/policy/decide.js';
import type { DecisionInput, TargetKind } from '../../src/policy/decision.js';
import { CompiledPolicyEngine } from '../../src/policy/engine.js';
import type { CompiledPolicy } from '../../src/policy/model.js';
import { PermitAllPolicy } from '../../src/policy/permit-all.js';
import { listingKey, visibleTargets, type ListTarget } from '../../src/policy/visibility.js';

const NOW = Date.UTC(2026, 0, 1);

function policy(text: string): CompiledPolicy {
  return compilePolicy([{ file: 'p.yaml', text: `version: 1\n${text}` }]);
}

function principal(p: Partial<Omit<Principal, 'scopes'>> & { scopes?: string[] } = {}): Principal {
  const { scopes, ...rest } = p;
  return { subject: 'alice', groups: [], anonymous: false, ...rest, scopes: new Set(scopes ?? []) };
}

const RULES = `rules:
  - id: notes.read
    effect: allow
    match: { tools: ["notes__read*"] }
    when: { authenticated: true, scopes: { anyOf: ["notes:read", "notes:write"] } }
  - id: notes.write
    effect: allow
    match: { tools: [notes__write] }
    when: { scopes: { allOf: ["notes:write"] } }
  - id: ops.all
    effect: allow
    match: { upstreams: [ops] }
    when: { groups: { anyOf: [ops] } }
  - id: ops.no-reboot
    effect: deny
    match: { tools: [ops__reboot] }
    when: { subjects: ["intern-*"] }
  - id: billing.eu
    effect: allow
    match: { tools: ["billing__*"] }
    when: { claims: { region: eu }, clients: [portal] }
  - id: cert.only
    effect: allow
    match: { prompts: ["ops__*"] }
    when: { cert: { san: "*.ops.example" } }
`;

const TARGETS: { kind: TargetKind; name: string; upstream: string }[] = [
  { kind: 'tool', name: 'notes__read', upstream: 'notes' },
  { kind: 'tool', name: 'notes__read_all', upstream: 'notes' },
  { kind: 'tool', name: 'notes__write', upstream: 'notes' },
  { kind: 'tool', name: 'ops__reboot', upstream: 'ops' },
  { kind: 'tool', name: 'ops__status', upstream: 'ops' },
  { kind: 'tool', name: 'billing__invoice', upstream: 'billing' },
  { kind: 'prompt', name: 'ops__triage', upstream: 'ops' },
  { kind: 'resource', name: 'ops://log', upstream: 'ops' },
];

function visibility(who: Principal, p: CompiledPolicy): boolean[] {
  return TARGETS.map((target) => {
    const input: DecisionInput = { principal: who, method: 'tools/call', target, now: NOW };
    return visible(input, p);
  });
}

describe('listingKey: the rules that hold for a principal', () => {
  const p = policy(RULES);

  it('differs between principals whose scopes or groups make them see different lists', () => {
    const reader = principal({ scopes: ['notes:read'] });
    const writer = principal({ scopes: ['notes:write'] });
    const ops = principal({ groups: ['ops'] });
    expect(visibility(reader, p)).not.toEqual(visibility(writer, p));
    expect(listingKey(reader, p)).not.toBe(listingKey(writer, p));
    expect(listingKey(reader, p)).not.toBe(listingKey(ops, p));
    // Identity alone (a deny rule on the subject) changes the key as well.
    const intern = principal({ subject: 'intern-bob', groups: ['ops'] });
    expect(visibility(intern, p)).not.toEqual(visibility(ops, p));
    expect(listingKey(intern, p)).not.toBe(listingKey(ops, p));
  });

  it('is shared by principals that differ only in what no rule reads', () => {
    const a = principal({ subject: 'alice', scopes: ['notes:read', 'other:x'], clientId: 'cli', tokenId: 't1' });
    const b = principal({ subject: 'bob', scopes: ['notes:read'], issuer: 'https://elsewhere', expiresAt: 5 });
    expect(listingKey(a, p)).toBe(listingKey(b, p));
    expect(visibility(a, p)).toEqual(visibility(b, p));
  });

  it('reads claims, client ids and certificates, not just scopes and groups', () => {
    const eu = principal({ clientId: 'portal', claims: { region: 'eu' } });
    const us = principal({ clientId: 'portal', claims: { region: 'us' } });
    const other = principal({ clientId: 'cli', claims: { region: 'eu' } });
    const cert = principal({ certSans: ['a.ops.example'] });
    expect(new Set([eu, us, other, cert, principal()].map((x) => listingKey(x, p))).size).toBe(3); // {billing.eu}, {cert.only}, {}
    expect(listingKey(us, p)).toBe(listingKey(other, p)); // neither holds billing.eu: both see what a principal for whom no rule holds sees
    expect(listingKey(eu, p)).not.toBe(listingKey(cert, p));
  });

  it('equal keys always mean equal visibility of every target (random principals)', () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pick = <T>(xs: readonly T[]): T[] => xs.filter(() => rand(2) === 0);
    const byKey = new Map<string, boolean[]>();
    for (let i = 0; i < 400; i++) {
      const who = principal({
        subject: ['alice', 'intern-x', 'bob'][rand(3)]!,
        scopes: pick(['notes:read', 'notes:write', 'x']),
        groups: pick(['ops', 'dev']),
        anonymous: rand(4) === 0,
        ...(rand(2) === 0 ? { clientId: ['portal', 'cli'][rand(2)]! } : {}),
        ...(rand(2) === 0 ? { claims: { region: ['eu', 'us'][rand(2)]! } } : {}),
        ...(rand(3) === 0 ? { certSans: ['n.ops.example'] } : {}),
      });
      const key = listingKey(who, p);
      const seen = visibility(who, p);
      const prior = byKey.get(key);
      if (prior !== undefined) expect(seen).toEqual(prior);
      else byKey.set(key, seen);
    }
    expect(byKey.size).toBeGreaterThan(8);
  });

  it('names the policy: a new revision gives a new key for the same principal', () => {
    const who = principal({ scopes: ['notes:read'] });
    const engine = new CompiledPolicyEngine(p);
    const before = engine.listingKey(who);
    engine.replace(policy(RULES.replace('notes:write"] } }\n  - id: ops.all', 'notes:admin"] } }\n  - id: ops.all')));
    expect(engine.listingKey(who)).not.toBe(before);
    expect(engine.listingKey(who).startsWith(`${engine.revision}:`)).toBe(true);
  });

  it('is one key for everyone without a policy (permit-all reads no principal)', () => {
    const permit = new PermitAllPolicy();
    expect(permit.listingKey()).toBe(new PermitAllPolicy().listingKey());
  });
});

describe('visibleTargets: a whole list at once', () => {
  const p = policy(`${RULES}  - id: notes.deny-scoped
    effect: deny
    match: { tools: [notes__read_all] }
    when: { scopes: { allOf: ["notes:restricted"] } }
  - id: notes.upstream
    effect: allow
    match: { upstreams: [notes] }
    when: { clients: [cli] }
  - id: ops.status-only
    effect: allow
    match: { tools: ["*__status"], upstreams: [ops] }
    when: { authenticated: true }
`);
  const targets: ListTarget[] = [
    ...TARGETS,
    { kind: 'tool', name: 'notes__other', upstream: 'notes' },
    { kind: 'tool', name: 'billing__status', upstream: 'billing' },
    { kind: 'tool', name: 'unknown__x', upstream: 'unknown' },
    ...Array.from({ length: 50 }, (_, i): ListTarget => ({ kind: 'tool', name: `ops__t${i}`, upstream: 'ops' })),
  ];

  it('gives exactly the answers of one `visible` per target (random principals)', () => {
    let seed = 11;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pick = <T>(xs: readonly T[]): T[] => xs.filter(() => rand(2) === 0);
    let shownSomething = 0;
    for (let i = 0; i < 300; i++) {
      const who = principal({
        subject: ['alice', 'intern-x'][rand(2)]!,
        scopes: pick(['notes:read', 'notes:write', 'notes:restricted']),
        groups: pick(['ops', 'dev']),
        anonymous: rand(4) === 0,
        ...(rand(2) === 0 ? { clientId: ['portal', 'cli'][rand(2)]! } : {}),
        ...(rand(2) === 0 ? { claims: { region: 'eu' } } : {}),
      });
      const one = targets.map((target) => visible({ principal: who, method: 'tools/call', target, now: NOW }, p));
      expect(visibleTargets(who, p, targets)).toEqual(one);
      if (one.some(Boolean)) shownSomething++;
    }
    expect(shownSomething).toBeGreaterThan(100);
  });

  it('plans again when the policy changes for the same list', () => {
    const engine = new CompiledPolicyEngine(p);
    const who = principal({ scopes: ['notes:read'] });
    expect(engine.visibleTargets(who, targets)[0]).toBe(true); // notes__read
    engine.replace(policy(RULES.replace('notes__read*', 'notes__none*')));
    expect(engine.visibleTargets(who, targets)[0]).toBe(false);
  });
});
