import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/identity/principal.js';
import { compilePolicy } from '../../src/policy/compile.js';
import { decide, UNTARGETED_RULE_ID, visible } from '../../src/policy/decide.js';
import type { Decision, DecisionInput, DenyReason, TargetKind } from '../../src/policy/decision.js';
import { CompiledPolicyEngine } from '../../src/policy/engine.js';
import { explain, formatExplanation } from '../../src/policy/explain.js';
import type { CompiledPolicy } from '../../src/policy/model.js';

const NOW = Date.UTC(2026, 0, 1);

function policy(...files: string[]): CompiledPolicy {
  return compilePolicy(files.map((text, i) => ({ file: `p${i}.yaml`, text: `version: 1\n${text}` })));
}

function principal(p: Partial<Omit<Principal, 'scopes'>> & { scopes?: string[] } = {}): Principal {
  const { scopes, ...rest } = p;
  return { subject: 'alice', groups: [], anonymous: false, ...rest, scopes: new Set(scopes ?? []) };
}

function input(
  who: Principal,
  name: string,
  opts: {
    kind?: TargetKind;
    upstream?: string;
    args?: Record<string, unknown>;
    quarantined?: boolean;
    now?: number;
  } = {},
): DecisionInput {
  const kind = opts.kind ?? 'tool';
  const method = kind === 'tool' ? 'tools/call' : kind === 'prompt' ? 'prompts/get' : 'resources/read';
  return {
    principal: who,
    method,
    target: { kind, name, upstream: opts.upstream ?? (name.includes('__') ? name.slice(0, name.indexOf('__')) : '') },
    now: opts.now ?? NOW,
    ...(opts.args ? { args: opts.args } : {}),
    ...(opts.quarantined ? { quarantined: true } : {}),
  };
}

function denyReason(d: Decision): DenyReason | 'allow' {
  return d.effect === 'allow' ? 'allow' : d.reason;
}

const ORDERS = `rules:
  - id: orders.read
    effect: allow
    match: { tools: [orders__get_order, orders__search_orders] }
    when: { authenticated: true, scopes: { anyOf: ["orders:read", "orders:write"] } }
  - id: orders.write
    effect: allow
    match: { tools: [orders__update_order_status] }
    when: { authenticated: true, scopes: { allOf: ["orders:write"] } }
    arguments:
      required: [order_id]
      properties:
        order_id: { type: string, pattern: "^ord-[0-9]{4,10}$" }
      additionalProperties: false
`;

describe('decide: default deny', () => {
  it('denies every target when the policy has no rules (no rules = deny)', () => {
    const p = policy('rules: []');
    const who = principal({ scopes: ['admin'] });
    for (const kind of ['tool', 'resource', 'prompt'] as const) {
      const d = decide(input(who, 'x__y', { kind }), p);
      expect(d).toEqual({ effect: 'deny', reason: 'no_matching_rule', policyRevision: p.revision });
    }
  });

  it('denies a target no rule names, and one whose identity conditions fail, alike', () => {
    const p = policy(`rules:
  - id: ops
    effect: allow
    match: { tools: [ops__restart] }
    when: { subjects: ["svc-*"] }
`);
    expect(denyReason(decide(input(principal(), 'ops__unknown'), p))).toBe('no_matching_rule');
    expect(denyReason(decide(input(principal({ subject: 'alice' }), 'ops__restart'), p))).toBe('no_matching_rule');
    expect(decide(input(principal({ subject: 'svc-deploy' }), 'ops__restart'), p)).toMatchObject({
      effect: 'allow',
      ruleId: 'ops',
    });
  });

  it('allows listing methods without a target, and denies unknown untargeted methods', () => {
    const p = policy('rules: []');
    expect(decide({ principal: principal(), method: 'tools/list', now: NOW }, p)).toEqual({
      effect: 'allow',
      ruleId: UNTARGETED_RULE_ID,
      policyRevision: p.revision,
    });
    expect(decide({ principal: principal(), method: 'ping', now: NOW }, p).effect).toBe('allow');
    expect(denyReason(decide({ principal: principal(), method: 'tools/call', now: NOW }, p))).toBe('no_matching_rule');
    expect(denyReason(decide({ principal: principal(), method: 'sampling/createMessage', now: NOW }, p))).toBe(
      'no_matching_rule',
    );
  });
});

describe('decide: every deny reason', () => {
  const p = policy(
    ORDERS,
    `rules:
  - id: no-delete
    effect: deny
    match: { tools: ["*__delete*"] }
  - id: all-orders-for-admins
    effect: allow
    match: { upstreams: [orders] }
    when: { groups: { anyOf: [admins] } }
`,
  );
  const reader = principal({ scopes: ['orders:read'] });
  const writer = principal({ scopes: ['orders:write'] });

  it('no_matching_rule', () => {
    const d = decide(input(reader, 'orders__cancel_everything'), p);
    expect(d).toEqual({ effect: 'deny', reason: 'no_matching_rule', policyRevision: p.revision });
  });

  it('denied_by_rule, naming the rule', () => {
    const admin = principal({ groups: ['admins'], scopes: ['orders:write'] });
    expect(decide(input(admin, 'orders__delete_order'), p)).toEqual({
      effect: 'deny',
      reason: 'denied_by_rule',
      ruleId: 'no-delete',
      policyRevision: p.revision,
    });
  });

  it('insufficient_scope, with the scopes to step up to', () => {
    const d = decide(input(reader, 'orders__update_order_status', { args: { order_id: 'ord-1001' } }), p);
    expect(d).toEqual({
      effect: 'deny',
      reason: 'insufficient_scope',
      ruleId: 'orders.write',
      requiredScopes: ['orders:write'],
      policyRevision: p.revision,
    });
  });

  it('invalid_arguments, with the violation for the audit record', () => {
    const d = decide(input(writer, 'orders__update_order_status', { args: { order_id: '../etc' } }), p);
    expect(d).toEqual({
      effect: 'deny',
      reason: 'invalid_arguments',
      ruleId: 'orders.write',
      violation: { ruleId: 'orders.write', field: '/order_id', constraint: 'schema:pattern' },
      policyRevision: p.revision,
    });
  });

  it('quarantined before scopes and arguments: nothing reveals that the tool exists', () => {
    const ok = input(writer, 'orders__update_order_status', { args: { order_id: 'ord-1001' }, quarantined: true });
    expect(decide(ok, p)).toEqual({ effect: 'deny', reason: 'quarantined', policyRevision: p.revision });
    const bad = input(writer, 'orders__update_order_status', { args: { order_id: 'x' }, quarantined: true });
    expect(denyReason(decide(bad, p))).toBe('quarantined');
    const noScope = input(reader, 'orders__update_order_status', { args: { order_id: 'ord-1001' }, quarantined: true });
    expect(denyReason(decide(noScope, p))).toBe('quarantined');
  });

  it('allow, naming the rule and the revision', () => {
    expect(decide(input(reader, 'orders__get_order'), p)).toEqual({
      effect: 'allow',
      ruleId: 'orders.read',
      policyRevision: p.revision,
    });
  });

  it('does not read the clock: the injected time changes nothing', () => {
    for (const now of [0, NOW, Number.MAX_SAFE_INTEGER]) {
      expect(decide(input(reader, 'orders__get_order', { now }), p).effect).toBe('allow');
      expect(denyReason(decide(input(reader, 'orders__update_order_status', { now }), p))).toBe('insufficient_scope');
    }
  });
});

describe('decide: order and precedence', () => {
  it('deny beats allow, whatever the specificity or file order', () => {
    const p = policy(`rules:
  - id: allow-exact
    effect: allow
    match: { tools: [everything__get-env] }
  - id: deny-glob
    effect: deny
    match: { tools: ["*__get-env"] }
`);
    expect(decide(input(principal(), 'everything__get-env'), p)).toMatchObject({
      effect: 'deny',
      reason: 'denied_by_rule',
      ruleId: 'deny-glob',
    });
  });

  it('a deny rule applies only when its when holds, scopes included', () => {
    const p = policy(`rules:
  - id: allow-all
    effect: allow
    match: { tools: ["x__*"] }
  - id: deny-guests
    effect: deny
    match: { tools: ["x__*"] }
    when: { groups: { anyOf: [guests] } }
  - id: deny-readonly-tokens
    effect: deny
    match: { tools: [x__write] }
    when: { scopes: { allOf: [readonly] } }
`);
    expect(decide(input(principal(), 'x__a'), p).effect).toBe('allow');
    expect(decide(input(principal({ groups: ['guests'] }), 'x__a'), p)).toMatchObject({
      reason: 'denied_by_rule',
      ruleId: 'deny-guests',
    });
    expect(decide(input(principal(), 'x__write'), p).effect).toBe('allow');
    expect(decide(input(principal({ scopes: ['readonly'] }), 'x__write'), p)).toMatchObject({
      reason: 'denied_by_rule',
      ruleId: 'deny-readonly-tokens',
    });
  });

  it('names the most specific allow rule: exact over glob over upstream-only, then file order', () => {
    const p = policy(
      `rules:
  - id: by-upstream
    effect: allow
    match: { upstreams: [orders] }
  - id: glob-early
    effect: allow
    match: { tools: ["orders__*"] }
`,
      `rules:
  - id: glob-late
    effect: allow
    match: { tools: ["orders__get*"] }
  - id: exact
    effect: allow
    match: { tools: [orders__get_order] }
`,
    );
    const who = principal();
    expect(decide(input(who, 'orders__get_order'), p)).toMatchObject({ ruleId: 'exact' });
    expect(decide(input(who, 'orders__get_items'), p)).toMatchObject({ ruleId: 'glob-early' });
    expect(decide(input(who, 'orders__search'), p)).toMatchObject({ ruleId: 'glob-early' });
    expect(decide(input(who, 'orders__x', { kind: 'prompt' }), p)).toMatchObject({ ruleId: 'by-upstream' });
    expect(denyReason(decide(input(who, 'billing__get_order'), p))).toBe('no_matching_rule');
  });

  it('restricts a tool list to the listed upstreams when both are given', () => {
    const p = policy(`rules:
  - id: r
    effect: allow
    match: { tools: ["*__echo"], upstreams: [everything] }
`);
    expect(decide(input(principal(), 'everything__echo'), p).effect).toBe('allow');
    expect(decide(input(principal(), 'evil__echo'), p).effect).toBe('deny');
    expect(decide(input(principal(), 'evil__echo', { upstream: 'everything' }), p).effect).toBe('allow');
  });

  it('asks for the smallest missing scope set among the rules whose identity matches', () => {
    const p = policy(`rules:
  - id: big
    effect: allow
    match: { tools: [t__x] }
    when: { scopes: { allOf: [a, b, c] } }
  - id: small
    effect: allow
    match: { tools: ["t__*"] }
    when: { scopes: { allOf: [a, d] } }
  - id: smallest-but-not-for-alice
    effect: allow
    match: { tools: [t__x] }
    when: { subjects: [bob], scopes: { allOf: [z] } }
`);
    expect(decide(input(principal({ scopes: ['a'] }), 't__x'), p)).toMatchObject({
      reason: 'insufficient_scope',
      ruleId: 'small',
      requiredScopes: ['d'],
    });
    expect(decide(input(principal({ subject: 'bob', scopes: ['a'] }), 't__x'), p)).toMatchObject({
      reason: 'insufficient_scope',
      requiredScopes: ['z'],
    });
    expect(decide(input(principal({ scopes: ['a', 'b', 'c'] }), 't__x'), p)).toMatchObject({
      effect: 'allow',
      ruleId: 'big',
    });
  });

  it('asks for the first anyOf scope when none is held', () => {
    const p = policy(`rules:
  - id: r
    effect: allow
    match: { tools: [t__x] }
    when: { scopes: { allOf: [base], anyOf: [read, write] } }
`);
    expect(decide(input(principal(), 't__x'), p)).toMatchObject({ requiredScopes: ['base', 'read'] });
    expect(decide(input(principal({ scopes: ['base'] }), 't__x'), p)).toMatchObject({ requiredScopes: ['read'] });
    expect(decide(input(principal({ scopes: ['base', 'write'] }), 't__x'), p).effect).toBe('allow');
  });
});

describe('decide: identity conditions', () => {
  const p = policy(`rules:
  - { id: authn, effect: allow, match: { tools: [t__authn] }, when: { authenticated: true } }
  - { id: subj, effect: allow, match: { tools: [t__subj] }, when: { subjects: [alice, "svc-*"] } }
  - { id: client, effect: allow, match: { tools: [t__client] }, when: { clients: [cli-1] } }
  - { id: group, effect: allow, match: { tools: [t__group] }, when: { groups: { anyOf: [ops, sre] } } }
  - { id: claim, effect: allow, match: { tools: [t__claim] }, when: { claims: { tenant: acme, level: [2, 3], staff: true } } }
  - { id: cert, effect: allow, match: { tools: [t__cert] }, when: { cert: { subject: "CN=agent-*,O=Acme", san: "*.agents.acme.test" } } }
`);
  const ok = (who: Principal, tool: string): boolean => decide(input(who, tool), p).effect === 'allow';

  it('authenticated excludes the anonymous principal', () => {
    expect(ok(principal(), 't__authn')).toBe(true);
    expect(ok(principal({ anonymous: true, subject: 'anonymous' }), 't__authn')).toBe(false);
  });

  it('subjects, clients and groups', () => {
    expect(ok(principal({ subject: 'alice' }), 't__subj')).toBe(true);
    expect(ok(principal({ subject: 'svc-build' }), 't__subj')).toBe(true);
    expect(ok(principal({ subject: 'mallory' }), 't__subj')).toBe(false);
    expect(ok(principal({ clientId: 'cli-1' }), 't__client')).toBe(true);
    expect(ok(principal({ clientId: 'cli-2' }), 't__client')).toBe(false);
    expect(ok(principal(), 't__client')).toBe(false);
    expect(ok(principal({ groups: ['dev', 'sre'] }), 't__group')).toBe(true);
    expect(ok(principal({ groups: ['dev'] }), 't__group')).toBe(false);
  });

  it('claims: every named claim equals the value or one of the values (or contains it, for list claims)', () => {
    expect(ok(principal({ claims: { tenant: 'acme', level: 3, staff: true } }), 't__claim')).toBe(true);
    expect(ok(principal({ claims: { tenant: ['other', 'acme'], level: 2, staff: true } }), 't__claim')).toBe(true);
    expect(ok(principal({ claims: { tenant: 'acme', level: '3', staff: true } }), 't__claim')).toBe(false);
    expect(ok(principal({ claims: { tenant: 'acme', level: 3 } }), 't__claim')).toBe(false);
    expect(ok(principal(), 't__claim')).toBe(false);
    expect(
      ok(
        principal({ claims: Object.create({ tenant: 'acme', level: 3, staff: true }) as Record<string, unknown> }),
        't__claim',
      ),
    ).toBe(false);
  });

  it('cert: subject and a SAN, both required when both are given', () => {
    const cert = { certSubject: 'CN=agent-7,O=Acme', certSans: ['x.example', 'a7.agents.acme.test'] };
    expect(ok(principal(cert), 't__cert')).toBe(true);
    expect(ok(principal({ ...cert, certSans: ['a7.agents.acme.test.evil'] }), 't__cert')).toBe(false);
    expect(ok(principal({ ...cert, certSubject: 'CN=agent-7,O=Evil' }), 't__cert')).toBe(false);
    expect(ok(principal(), 't__cert')).toBe(false);
  });
});

describe('decide: arguments', () => {
  it('requires the checks of EVERY granting allow rule: a broad rule cannot bypass a narrow one', () => {
    const p = policy(`rules:
  - id: broad
    effect: allow
    match: { tools: ["files__*"] }
    when: { scopes: { allOf: [files] } }
  - id: narrow
    effect: allow
    match: { tools: [files__read] }
    when: { scopes: { allOf: [files] } }
    arguments:
      constraints:
        - { field: path, kind: path, roots: [/srv/sandbox] }
  - id: narrower
    effect: allow
    match: { tools: [files__read] }
    arguments:
      properties: { path: { type: string, maxLength: 20 } }
`);
    const who = principal({ scopes: ['files'] });
    expect(decide(input(who, 'files__read', { args: { path: '/srv/sandbox/a' } }), p)).toMatchObject({
      effect: 'allow',
      ruleId: 'narrow',
    });
    expect(decide(input(who, 'files__read', { args: { path: '/etc/passwd' } }), p)).toMatchObject({
      reason: 'invalid_arguments',
      violation: { ruleId: 'narrow', field: '/path', constraint: 'path:outside_roots' },
    });
    expect(decide(input(who, 'files__read', { args: { path: '/srv/sandbox/a-very-long-name' } }), p)).toMatchObject({
      reason: 'invalid_arguments',
      violation: { ruleId: 'narrower', field: '/path', constraint: 'schema:maxLength' },
    });
    expect(decide(input(who, 'files__read'), p)).toMatchObject({
      reason: 'invalid_arguments',
      violation: { ruleId: 'narrow', constraint: 'path:missing' },
    });
    // A rule the caller does not qualify for does not add its constraints.
    const noScope = principal();
    expect(decide(input(noScope, 'files__read', { args: { path: '/etc/a' } }), p)).toMatchObject({
      effect: 'allow',
      ruleId: 'narrower',
    });
  });

  it('treats missing arguments as an empty object, and an optional constraint as passing when absent', () => {
    const p = policy(`rules:
  - id: r
    effect: allow
    match: { tools: [t__x] }
    arguments:
      constraints:
        - { field: flag, kind: noLeadingDash, optional: true }
`);
    expect(decide(input(principal(), 't__x'), p).effect).toBe('allow');
    expect(decide(input(principal(), 't__x', { args: { flag: '--exec' } }), p)).toMatchObject({
      violation: { field: '/flag', constraint: 'noLeadingDash:leading_dash' },
    });
  });

  it('merges the strictest limits and the union of redactions of the granting rules', () => {
    const p = policy(`rules:
  - id: a
    effect: allow
    match: { tools: [t__x] }
    redact: [note]
    limits: { rate: { perMinute: 60, burst: 30 }, timeoutMs: 5000 }
  - id: b
    effect: allow
    match: { tools: ["t__*"] }
    redact: [/secret, note]
    limits: { rate: { perMinute: 100, burst: 5 }, concurrency: 2 }
  - id: c
    effect: allow
    match: { tools: ["t__*"] }
    when: { subjects: [nobody] }
    limits: { rate: { perMinute: 1 } }
`);
    expect(decide(input(principal(), 't__x'), p)).toEqual({
      effect: 'allow',
      ruleId: 'a',
      policyRevision: p.revision,
      limits: { rate: { perMinute: 60, burst: 5 }, concurrency: 2, timeoutMs: 5000 },
      redact: ['/note', '/secret'],
    });
    expect(decide(input(principal(), 't__y'), p)).toMatchObject({
      limits: { rate: { perMinute: 100, burst: 5 }, concurrency: 2 },
      redact: ['/secret', '/note'],
    });
  });

  it('does not modify the input', () => {
    const p = policy(ORDERS);
    const args = Object.freeze({ order_id: 'ord-1001' });
    const i = Object.freeze(input(principal({ scopes: ['orders:write'] }), 'orders__update_order_status', { args }));
    expect(decide(i, p).effect).toBe('allow');
    expect(decide(i, p)).toEqual(decide(i, p));
  });
});

describe('decide: resources and prompts', () => {
  const p = policy(`rules:
  - id: docs
    effect: allow
    match: { resources: ["file:///srv/docs/**"] }
  - id: top-level-md
    effect: allow
    match: { resources: ["file:///srv/notes/*.md"] }
  - id: prompts
    effect: allow
    match: { prompts: ["everything__*"] }
`);
  it('matches resource URIs with segment-aware globs', () => {
    const r = (uri: string): string =>
      denyReason(decide(input(principal(), uri, { kind: 'resource', upstream: 'files' }), p));
    expect(r('file:///srv/docs/a/b.txt')).toBe('allow');
    expect(r('file:///srv/docs_evil/a')).toBe('no_matching_rule');
    expect(r('file:///srv/notes/a.md')).toBe('allow');
    expect(r('file:///srv/notes/sub/a.md')).toBe('no_matching_rule');
  });

  it('keeps kinds apart: a prompt rule does not allow a tool of the same name', () => {
    expect(decide(input(principal(), 'everything__simple', { kind: 'prompt' }), p).effect).toBe('allow');
    expect(decide(input(principal(), 'everything__simple', { kind: 'tool' }), p).effect).toBe('deny');
  });
});

describe('list visibility is the call decision (docs/architecture.md §4)', () => {
  const p = policy(
    ORDERS,
    `rules:
  - id: deny-delete
    effect: deny
    match: { tools: ["*__delete_order"] }
  - id: delete-for-admins
    effect: allow
    match: { tools: [orders__delete_order] }
    when: { groups: { anyOf: [admins] } }
  - id: reports
    effect: allow
    match: { tools: ["reports__*"] }
    when: { clients: [dashboard], scopes: { allOf: ["reports:read"] } }
`,
  );
  const tools = [
    'orders__get_order',
    'orders__search_orders',
    'orders__update_order_status',
    'orders__delete_order',
    'orders__unknown',
    'reports__daily',
  ];
  const principals = [
    principal({ anonymous: true, subject: 'anonymous' }),
    principal({ scopes: ['orders:read'] }),
    principal({ scopes: ['orders:write'] }),
    principal({ scopes: ['orders:write'], groups: ['admins'] }),
    principal({ clientId: 'dashboard' }),
    principal({ clientId: 'dashboard', scopes: ['reports:read'] }),
    principal({ clientId: 'other', scopes: ['reports:read'] }),
  ];
  const validArgs: Record<string, Record<string, unknown>> = { orders__update_order_status: { order_id: 'ord-1001' } };

  it('a tool is listed iff a call with valid arguments is allowed', () => {
    for (const who of principals) {
      for (const tool of tools) {
        const call = decide(input(who, tool, { args: validArgs[tool] ?? {} }), p);
        expect(visible(input(who, tool), p), `${who.subject}/${[...who.scopes].join(',')} ${tool}`).toBe(
          call.effect === 'allow',
        );
      }
    }
  });

  it('listing skips only the argument step; quarantine hides the tool too', () => {
    const writer = principal({ scopes: ['orders:write'] });
    expect(denyReason(decide(input(writer, 'orders__update_order_status', { args: { order_id: 'bad' } }), p))).toBe(
      'invalid_arguments',
    );
    expect(visible(input(writer, 'orders__update_order_status', { args: { order_id: 'bad' } }), p)).toBe(true);
    expect(visible(input(writer, 'orders__update_order_status', { quarantined: true }), p)).toBe(false);
  });

  it('the engine exposes the same decide and visible, and swaps policies whole', () => {
    const engine = new CompiledPolicyEngine(p);
    const reader = principal({ scopes: ['orders:read'] });
    expect(engine.revision).toBe(p.revision);
    expect(engine.decide(input(reader, 'orders__get_order')).effect).toBe('allow');
    expect(engine.visible(input(reader, 'orders__get_order'))).toBe(true);
    const empty = policy('rules: []');
    expect(engine.replace(empty)).toBe(p.revision);
    expect(engine.revision).toBe(empty.revision);
    expect(engine.decide(input(reader, 'orders__get_order'))).toMatchObject({
      reason: 'no_matching_rule',
      policyRevision: empty.revision,
    });
  });
});

describe('the index finds exactly the rules a full scan would', () => {
  it('agrees with brute force over many exact and glob patterns', () => {
    const patterns = ['a__*', '*__x', 'a__b*', '*b*', 'ab__c', '*', 'a*c', 'x__*__y', '*__', 'a__bc', 'b__*c', '*c*d*'];
    const text = `rules:\n${patterns.map((pat, i) => `  - { id: r${i}, effect: allow, match: { tools: ["${pat}"] } }`).join('\n')}\n`;
    const p = policy(text);
    const names = [
      'a__b',
      'a__bc',
      'ab__c',
      'b__x',
      'x__q__y',
      'a__',
      'q__',
      'abc',
      'cd',
      'zcxd',
      '',
      'b__cc',
      'a__bcd',
    ];
    for (const name of names) {
      const x = explain(input(principal(), name, { upstream: '' }), p);
      const viaIndex = x.rules
        .filter((r) => r.target.matched)
        .map((r) => r.id)
        .sort();
      const brute = p.rules
        .filter((r) => r.match.tools!.some((g) => g.matches(name)))
        .map((r) => r.id)
        .sort();
      expect(viaIndex, name).toEqual(brute);
    }
  });
});

describe('explain', () => {
  it('traces each rule: candidates with the condition that failed, others with why they did not match', () => {
    const p = policy(ORDERS);
    const x = explain(
      input(principal({ scopes: ['orders:read'] }), 'orders__update_order_status', { args: { order_id: 'ord-1001' } }),
      p,
    );
    expect(x.decision).toMatchObject({ reason: 'insufficient_scope' });
    const write = x.rules.find((r) => r.id === 'orders.write')!;
    expect(write).toMatchObject({
      target: { matched: true, how: 'exact name' },
      identity: { ok: true },
      missingScopes: ['orders:write'],
    });
    const read = x.rules.find((r) => r.id === 'orders.read')!;
    expect(read.target.matched).toBe(false);
    const text = formatExplanation(x);
    expect(text).toContain('DENY insufficient_scope (rule orders.write) requires scopes: orders:write');
    expect(text).toContain('scopes: missing orders:write');
    expect(text).toContain('"orders__update_order_status" matches none of tools');

    const anon = explain(input(principal({ anonymous: true }), 'orders__get_order'), p);
    expect(formatExplanation(anon)).toContain('identity: fails on authenticated');
    const args = explain(
      input(principal({ scopes: ['orders:write'] }), 'orders__update_order_status', { args: { order_id: 'no' } }),
      p,
    );
    expect(formatExplanation(args)).toContain('arguments: schema: FAIL at /order_id (schema:pattern)');
  });

  it('returns the decision decide returns', () => {
    const p = policy(ORDERS);
    for (const who of [principal(), principal({ scopes: ['orders:read'] }), principal({ scopes: ['orders:write'] })]) {
      for (const tool of ['orders__get_order', 'orders__update_order_status', 'nope__x']) {
        const i = input(who, tool, { args: { order_id: 'ord-1234' } });
        expect(explain(i, p).decision).toEqual(decide(i, p));
      }
    }
  });
});
