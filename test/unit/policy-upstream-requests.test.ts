/**
 * Requests an upstream sends the client (sampling, elicitation, roots) as a policy decision (threat model #19):
 * the `match.requests` rules compile, one `decide` decides them (default deny, deny beats allow, identity and
 * scopes as for tools), fixtures and `explain` express them, and the gateway declares to an upstream only the
 * capabilities the policy could let it use.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors/config-error.js';
import type { Principal } from '../../src/identity/principal.js';
import { clientSupports, declarableCapabilities } from '../../src/mcp/relay-capabilities.js';
import { compilePolicy } from '../../src/policy/compile.js';
import { decide } from '../../src/policy/decide.js';
import type { Decision, DecisionInput } from '../../src/policy/decision.js';
import { CompiledPolicyEngine } from '../../src/policy/engine.js';
import { explain, formatExplanation } from '../../src/policy/explain.js';
import type { CompiledPolicy } from '../../src/policy/model.js';
import { fixtureInput, parsePolicyFixtures, runPolicyFixtures } from '../../src/policy/test-runner.js';
import {
  possibleUpstreamRequests,
  upstreamRequestOf,
  type UpstreamRequest,
} from '../../src/policy/upstream-requests.js';
import { commonCapabilities } from '../../src/upstream/upstream-set.js';

const NOW = Date.UTC(2026, 0, 1);

function policy(...files: string[]): CompiledPolicy {
  return compilePolicy(files.map((text, i) => ({ file: `p${i}.yaml`, text: `version: 1\n${text}` })));
}

function problems(text: string): string[] {
  try {
    policy(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error('expected a ConfigError');
}

function principal(scopes: string[] = [], subject = 'alice'): Principal {
  return { subject, groups: [], anonymous: false, scopes: new Set(scopes) };
}

function ask(who: Principal, name: UpstreamRequest, upstream: string): DecisionInput {
  return { principal: who, method: name.split(':')[0]!, target: { kind: 'request', name, upstream }, now: NOW };
}

function outcome(d: Decision): string {
  return d.effect === 'allow' ? `allow ${d.ruleId}` : `deny ${d.reason}${d.ruleId !== undefined ? ` ${d.ruleId}` : ''}`;
}

const EVERYTHING_ASKS = `rules:
  - id: ev.asks
    effect: allow
    match: { upstreams: [everything], requests: [sampling/createMessage, elicitation/create:form, roots/list] }
    when: { authenticated: true, scopes: { allOf: ["everything:use"] } }
`;

describe('upstreamRequestOf: the policy name of a wire request', () => {
  it('names elicitation by mode; absent is form; an unknown mode or method is nothing the gateway relays', () => {
    expect(upstreamRequestOf('sampling/createMessage', undefined)).toBe('sampling/createMessage');
    expect(upstreamRequestOf('roots/list', undefined)).toBe('roots/list');
    expect(upstreamRequestOf('elicitation/create', undefined)).toBe('elicitation/create:form');
    expect(upstreamRequestOf('elicitation/create', 'form')).toBe('elicitation/create:form');
    expect(upstreamRequestOf('elicitation/create', 'url')).toBe('elicitation/create:url');
    expect(upstreamRequestOf('elicitation/create', 'URL')).toBeUndefined();
    expect(upstreamRequestOf('elicitation/create', 7)).toBeUndefined();
    expect(upstreamRequestOf('tasks/get', undefined)).toBeUndefined();
    expect(upstreamRequestOf('tools/call', undefined)).toBeUndefined();
  });
});

describe('compile: match.requests', () => {
  it('accepts a rule naming requests, alone or with upstreams', () => {
    const p = policy(
      EVERYTHING_ASKS,
      `rules:\n  - id: no-url\n    effect: deny\n    match: { requests: [elicitation/create:url] }\n`,
    );
    expect(p.rules.map((r) => r.id)).toEqual(['ev.asks', 'no-url']);
  });

  it('refuses a request name the gateway does not know, a bare elicitation/create among them', () => {
    const out = problems(`rules:\n  - id: r\n    effect: allow\n    match: { requests: [elicitation/create] }\n`);
    expect(out.join('\n')).toMatch(
      /\/rules\/0\/match\/requests\/0: must be one of "sampling\/createMessage", "elicitation\/create:form", "elicitation\/create:url", "roots\/list"/,
    );
  });

  it('refuses a rule that mixes requests with tools, resources or prompts', () => {
    const out = problems(
      `rules:\n  - id: r\n    effect: allow\n    match: { tools: [a__b], prompts: [a__c], requests: [roots/list] }\n`,
    );
    expect(out).toContain(
      '/rules/0/match/tools: cannot be combined with "requests": write one rule for the upstream\'s requests and another for its tools',
    );
    expect(out).toContain(
      '/rules/0/match/prompts: cannot be combined with "requests": write one rule for the upstream\'s requests and another for its prompts',
    );
  });

  it('refuses arguments, redact and limits on a requests rule (nothing would apply them)', () => {
    const out = problems(`rules:
  - id: r
    effect: allow
    match: { requests: [sampling/createMessage] }
    arguments: { properties: { prompt: { type: string } } }
    redact: [prompt]
    limits: { rate: { perMinute: 5 } }
`);
    for (const key of ['arguments', 'redact', 'limits']) {
      expect(out).toContain(
        `/rules/0/${key}: applies to tool calls, but this rule matches only upstream requests ("requests")`,
      );
    }
  });
});

describe('decide: requests from upstreams', () => {
  it('denies every request by default: no rules, or only tool rules, or only upstream-wide rules', () => {
    const upstreamWide = `rules:\n  - id: all-of-ev\n    effect: allow\n    match: { upstreams: [everything] }\n`;
    for (const p of [
      policy('rules: []'),
      policy(upstreamWide),
      policy(`rules:\n  - id: t\n    effect: allow\n    match: { tools: ["*"] }\n`),
    ]) {
      for (const name of [
        'sampling/createMessage',
        'elicitation/create:form',
        'elicitation/create:url',
        'roots/list',
      ] as const) {
        expect(outcome(decide(ask(principal(['everything:use']), name, 'everything'), p))).toBe(
          'deny no_matching_rule',
        );
      }
    }
  });

  it('allows what a rule names, from the upstreams it names, naming the rule and the revision', () => {
    const p = policy(EVERYTHING_ASKS);
    const alice = principal(['everything:use']);
    expect(decide(ask(alice, 'sampling/createMessage', 'everything'), p)).toEqual({
      effect: 'allow',
      ruleId: 'ev.asks',
      policyRevision: p.revision,
    });
    expect(outcome(decide(ask(alice, 'elicitation/create:form', 'everything'), p))).toBe('allow ev.asks');
    expect(outcome(decide(ask(alice, 'roots/list', 'everything'), p))).toBe('allow ev.asks');
    // Another upstream, or URL mode, is not named: default deny.
    expect(outcome(decide(ask(alice, 'sampling/createMessage', 'files'), p))).toBe('deny no_matching_rule');
    expect(outcome(decide(ask(alice, 'elicitation/create:url', 'everything'), p))).toBe('deny no_matching_rule');
  });

  it('applies identity conditions and scopes as for tools', () => {
    const p = policy(
      EVERYTHING_ASKS,
      `rules:
  - id: ops.roots
    effect: allow
    match: { requests: [roots/list] }
    when: { subjects: ["svc-*"] }
`,
    );
    expect(outcome(decide(ask(principal([]), 'sampling/createMessage', 'everything'), p))).toBe(
      'deny insufficient_scope ev.asks',
    );
    expect(decide(ask(principal([]), 'sampling/createMessage', 'everything'), p)).toMatchObject({
      requiredScopes: ['everything:use'],
    });
    expect(
      outcome(
        decide(ask({ ...principal(['everything:use']), anonymous: true }, 'sampling/createMessage', 'everything'), p),
      ),
    ).toBe('deny no_matching_rule');
    // A rule without `upstreams` covers every upstream.
    expect(outcome(decide(ask(principal([], 'svc-ci'), 'roots/list', 'orders'), p))).toBe('allow ops.roots');
    expect(outcome(decide(ask(principal([], 'bob'), 'roots/list', 'orders'), p))).toBe('deny no_matching_rule');
  });

  it('deny beats allow; a deny rule naming only upstreams does not cover requests', () => {
    const p = policy(
      `rules:
  - id: ev.everything
    effect: allow
    match: { requests: [sampling/createMessage, elicitation/create:form, elicitation/create:url] }
  - id: no-url
    effect: deny
    match: { requests: [elicitation/create:url] }
  - id: no-evil
    effect: deny
    match: { upstreams: [evil] }
`,
    );
    const alice = principal();
    expect(outcome(decide(ask(alice, 'elicitation/create:url', 'everything'), p))).toBe('deny denied_by_rule no-url');
    expect(outcome(decide(ask(alice, 'elicitation/create:form', 'everything'), p))).toBe('allow ev.everything');
    expect(outcome(decide(ask(alice, 'sampling/createMessage', 'evil'), p))).toBe('allow ev.everything');
  });

  it('a requests rule never reaches a tool, prompt or resource of the same name', () => {
    const p = policy(`rules:\n  - id: all\n    effect: allow\n    match: { requests: [roots/list] }\n`);
    expect(
      outcome(
        decide(
          {
            principal: principal(),
            method: 'tools/call',
            target: { kind: 'tool', name: 'roots/list', upstream: '' },
            now: NOW,
          },
          p,
        ),
      ),
    ).toBe('deny no_matching_rule');
  });
});

describe('possibleUpstreamRequests: what may be declared to an upstream', () => {
  it('lists what some allow rule names for the upstream, minus what an unconditional deny rule takes back', () => {
    const p = policy(
      EVERYTHING_ASKS,
      `rules:
  - id: any-url
    effect: allow
    match: { requests: [elicitation/create:url] }
    when: { subjects: [alice] }
  - id: no-url-for-files
    effect: deny
    match: { upstreams: [files], requests: [elicitation/create:url] }
  - id: no-roots-for-bob
    effect: deny
    match: { requests: [roots/list] }
    when: { subjects: [bob] }
`,
    );
    expect([...possibleUpstreamRequests(p, 'everything')].sort()).toEqual([
      'elicitation/create:form',
      'elicitation/create:url',
      'roots/list',
      'sampling/createMessage',
    ]);
    expect([...possibleUpstreamRequests(p, 'orders')]).toEqual(['elicitation/create:url']);
    expect([...possibleUpstreamRequests(p, 'files')]).toEqual([]);
    expect([...new CompiledPolicyEngine(policy('rules: []')).possibleUpstreamRequests('everything')]).toEqual([]);
  });

  it('declares the capabilities behind them, elicitation by mode', () => {
    expect(declarableCapabilities(new Set())).toEqual({});
    expect(declarableCapabilities(new Set(['sampling/createMessage', 'roots/list'] as const))).toEqual({
      sampling: {},
      roots: {},
    });
    expect(declarableCapabilities(new Set(['elicitation/create:form'] as const))).toEqual({
      elicitation: { form: {} },
    });
    expect(declarableCapabilities(new Set(['elicitation/create:url'] as const))).toEqual({ elicitation: { url: {} } });
  });

  it("declares to a per-session upstream its client's own capabilities, narrowed to the declarable ones", () => {
    const client = {
      sampling: { context: {} },
      elicitation: { form: {}, url: {} },
      roots: { listChanged: true },
      experimental: { x: {} },
    };
    expect(commonCapabilities(client, declarableCapabilities(new Set()))).toEqual({});
    expect(
      commonCapabilities(
        client,
        declarableCapabilities(new Set(['sampling/createMessage', 'elicitation/create:form'] as const)),
      ),
    ).toEqual({ sampling: { context: {} }, elicitation: { form: {} } });
    expect(
      commonCapabilities(client, declarableCapabilities(new Set(['elicitation/create:url', 'roots/list'] as const))),
    ).toEqual({ elicitation: { url: {} }, roots: { listChanged: true } });
    // `elicitation: {}` is form only: never URL mode, whatever may be declared.
    expect(
      commonCapabilities(
        { elicitation: {} },
        declarableCapabilities(new Set(['elicitation/create:form', 'elicitation/create:url'] as const)),
      ),
    ).toEqual({ elicitation: { form: {} } });
    expect(
      commonCapabilities({ elicitation: {} }, declarableCapabilities(new Set(['elicitation/create:url'] as const))),
    ).toEqual({});
  });

  it('checks the client declaration per request: elicitation {} is form only', () => {
    expect(clientSupports({ elicitation: {} }, 'elicitation/create:form')).toBe(true);
    expect(clientSupports({ elicitation: {} }, 'elicitation/create:url')).toBe(false);
    expect(clientSupports({ elicitation: { url: {} } }, 'elicitation/create:form')).toBe(false);
    expect(clientSupports({ elicitation: { url: {} } }, 'elicitation/create:url')).toBe(true);
    expect(clientSupports({ sampling: {} }, 'roots/list')).toBe(false);
    expect(clientSupports({ roots: { listChanged: true } }, 'roots/list')).toBe(true);
  });
});

describe('fixtures and explain express the decision', () => {
  it('runs request fixtures: method, upstream and, for elicitation, the mode', () => {
    const p = policy(EVERYTHING_ASKS);
    const fixtures = parsePolicyFixtures([
      {
        file: 'p.test.yaml',
        text: `tests:
  - name: sampling
    principal: { sub: alice, scopes: ["everything:use"] }
    request: { method: sampling/createMessage, upstream: everything }
    expect: { decision: allow, rule: ev.asks }
  - name: url
    principal: { sub: alice, scopes: ["everything:use"] }
    request: { method: elicitation/create, mode: url, upstream: everything }
    expect: { decision: deny, reason: no_matching_rule }
`,
      },
    ]);
    const report = runPolicyFixtures(p, fixtures);
    expect(report.results.map((r) => r.mismatches)).toEqual([[], []]);
    expect(report.uncoveredRules).toEqual([]);
    expect(fixtureInput(fixtures[1]!).target).toEqual({
      kind: 'request',
      name: 'elicitation/create:url',
      upstream: 'everything',
    });
  });

  it('refuses a request fixture without its upstream, with a target, or a mode off elicitation', () => {
    const bad = (request: string): string => {
      try {
        parsePolicyFixtures([
          {
            file: 'p.test.yaml',
            text: `tests:\n  - name: t\n    request: ${request}\n    expect: { decision: deny }\n`,
          },
        ]);
      } catch (err) {
        return (err as ConfigError).problems.map((p) => p.message).join('\n');
      }
      throw new Error('expected a ConfigError');
    };
    expect(bad('{ method: roots/list }')).toBe('roots/list needs "upstream" (the upstream that sends it)');
    expect(bad('{ method: roots/list, upstream: a, tool: a__b }')).toMatch(
      /^roots\/list is a request from an upstream/,
    );
    expect(bad('{ method: sampling/createMessage, upstream: a, mode: url }')).toBe(
      '"mode" is only for elicitation/create',
    );
  });

  it('explains a request decision rule by rule', () => {
    const p = policy(
      EVERYTHING_ASKS,
      `rules:\n  - id: ev.tools\n    effect: allow\n    match: { upstreams: [everything] }\n`,
    );
    const text = formatExplanation(explain(ask(principal(['everything:use']), 'roots/list', 'files'), p));
    expect(text).toMatch(/^DENY no_matching_rule \(policy [0-9a-f]{12}\)/);
    expect(text).toContain('ALLOW ev.asks (p0.yaml:3): not a candidate: upstream "files" is not in [everything]');
    expect(text).toContain('ALLOW ev.tools (p1.yaml:3): not a candidate: upstream "files" is not in [everything]');
    const onEverything = formatExplanation(
      explain(ask(principal(['everything:use']), 'elicitation/create:url', 'everything'), p),
    );
    expect(onEverything).toContain(
      'ALLOW ev.asks (p0.yaml:3): not a candidate: "elicitation/create:url" matches none of requests [sampling/createMessage, elicitation/create:form, roots/list]',
    );
    expect(onEverything).toContain(
      'ALLOW ev.tools (p1.yaml:3): not a candidate: a rule naming only upstreams never covers their requests',
    );
  });
});
