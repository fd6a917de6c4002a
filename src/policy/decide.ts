import type { Principal } from '../identity/principal.js';
import type {
  AllowDecision,
  ArgumentViolation,
  CacheSpec,
  Decision,
  DecisionInput,
  Limits,
  TargetKind,
} from './decision.js';
import type { CompiledPolicy, CompiledRule, CompiledScopes } from './model.js';

/**
 * Methods that name no target and that every authenticated session may use. Their results are filtered item
 * by item with `visible`, so the listing shows exactly what a call would be allowed to reach.
 */
export const UNTARGETED_METHODS: ReadonlySet<string> = new Set([
  'ping',
  'tools/list',
  'resources/list',
  'resources/templates/list',
  'prompts/list',
  'logging/setLevel',
  // MCP 2026-07-28: the stream itself names no target; each resource URI it asks for is decided on its own.
  'subscriptions/listen',
]);

/** The rule id named in decisions on untargeted methods (ids written in policies cannot contain ':'). */
export const UNTARGETED_RULE_ID = 'builtin:untargeted';

/** Receives every step of a decision; only `explain` passes one, so the hot path pays one `if` per step. */
export interface DecisionTrace {
  candidate(rule: CompiledRule, specificity: Specificity): void;
  identity(rule: CompiledRule, failed: string | undefined): void;
  scopes(rule: CompiledRule, missing: readonly string[]): void;
  argumentCheck(rule: CompiledRule, label: string, violation: Omit<ArgumentViolation, 'ruleId'> | undefined): void;
  note(text: string): void;
}

/** How a rule matched the target: its exact name (0), a glob (1), or only its upstream (2). Lower is more specific. */
export type Specificity = 0 | 1 | 2;

/**
 * Decides one request (docs/architecture.md §4). Pure and synchronous: no I/O, no clock (`input.now` is the time), no
 * state; the same input and policy give the same decision. Rate limits are enforced after this, from the
 * `limits` an allow carries.
 */
export function decide(input: DecisionInput, policy: CompiledPolicy): Decision {
  return evaluate(input, policy, undefined);
}

/**
 * Whether a listing shows this target to this principal: the decision a call with valid arguments would get
 * (docs/architecture.md §4: "the same function decides both"). Scope and identity failures, deny rules and quarantine
 * hide the item; only the argument step is skipped.
 */
export function visible(input: DecisionInput, policy: CompiledPolicy): boolean {
  return evaluate(input, policy, undefined, true).effect === 'allow';
}

/**
 * `decide` with an optional trace (used by `explain`; the logic is one and the same). `argumentsUnchecked`
 * overrides the input's flag without copying the input (`visible` runs once per listed tool).
 */
export function evaluate(
  input: DecisionInput,
  policy: CompiledPolicy,
  trace: DecisionTrace | undefined,
  argumentsUnchecked: boolean = input.argumentsUnchecked === true,
): Decision {
  // The decision order, as docs/architecture.md §4 writes it (agentgateway's order with its defaults inverted: no
  // rules, or no matching allow rule, means deny):
  //   0. No target (list, ping, setLevel): allowed for a known untargeted method, else denied no_matching_rule.
  //   1. Collect the rules whose `match` covers the target (exact names, globs, upstream-only rules).
  //   2. A DENY rule whose whole `when` (identity and scopes) holds → deny `denied_by_rule`. Deny beats allow.
  //   2b. A quarantined tool (pinning: its definition changed since approval) → deny `quarantined`, before any
  //      identity, scope or argument step, so no answer (403 step-up, -32602) can reveal that it exists.
  //   3. ALLOW rules whose identity conditions hold (everything in `when` but scopes). None → deny
  //      `no_matching_rule`: default deny; the front door answers exactly as for an unknown target.
  //   4. Of those, the rules whose scopes the token carries. None → deny `insufficient_scope`, with the
  //      smallest set of missing scopes among them, so the client can step up.
  //   5. The arguments must pass the checks of EVERY allow rule from step 4 (constraints only narrow: a broad
  //      rule cannot bypass a narrow one). A failure → deny `invalid_arguments`, the violation for audit only.
  //      Skipped when `argumentsUnchecked` (listing: "would a valid call be allowed?").
  //   7. Allow, naming the most specific rule from step 4 (exact name over glob over upstream-only, then file
  //      order), with the strictest of their limits and the union of their redactions.
  // A request an upstream sends the client (kind `request`, upstream-requests.ts) takes the same steps; it is never
  // quarantined and its rules carry no argument checks, limits or redactions (compile.ts refuses them).
  const revision = policy.revision;
  const target = input.target;
  if (target === undefined) {
    if (UNTARGETED_METHODS.has(input.method))
      return { effect: 'allow', ruleId: UNTARGETED_RULE_ID, policyRevision: revision };
    trace?.note(`method ${input.method} names no target and is not a listing method`);
    return { effect: 'deny', reason: 'no_matching_rule', policyRevision: revision };
  }

  // 1. Candidates, most specific first.
  const candidates = collectCandidates(policy, target.kind, target.name, target.upstream, trace);
  const principal = input.principal;

  // 2. Deny rules.
  for (const c of candidates) {
    const rule = c.rule;
    if (rule.effect !== 'deny') continue;
    const failed = failedIdentity(rule, principal);
    trace?.identity(rule, failed);
    if (failed !== undefined) continue;
    const missing = missingScopes(rule.scopes, principal);
    trace?.scopes(rule, missing);
    if (missing.length === 0)
      return { effect: 'deny', reason: 'denied_by_rule', ruleId: rule.id, policyRevision: revision };
  }

  // 2b. Pinning: a quarantined tool is hidden from everyone, whatever rule would allow it.
  if (input.quarantined === true) return { effect: 'deny', reason: 'quarantined', policyRevision: revision };

  // 3. + 4. Allow rules: identity, then scopes.
  let identityMatched = 0;
  let best: { rule: CompiledRule; missing: readonly string[] } | undefined;
  const granted: CompiledRule[] = [];
  for (const c of candidates) {
    const rule = c.rule;
    if (rule.effect !== 'allow') continue;
    const failed = failedIdentity(rule, principal);
    trace?.identity(rule, failed);
    if (failed !== undefined) continue;
    identityMatched++;
    const missing = missingScopes(rule.scopes, principal);
    trace?.scopes(rule, missing);
    if (missing.length === 0) granted.push(rule);
    else if (best === undefined || missing.length < best.missing.length) best = { rule, missing };
  }
  if (identityMatched === 0) return { effect: 'deny', reason: 'no_matching_rule', policyRevision: revision };
  if (granted.length === 0) {
    return {
      effect: 'deny',
      reason: 'insufficient_scope',
      ruleId: best!.rule.id,
      requiredScopes: best!.missing,
      policyRevision: revision,
    };
  }

  // 5. Arguments: every granting rule's checks.
  if (!argumentsUnchecked) {
    const args = input.args ?? EMPTY_ARGS;
    for (const rule of granted) {
      for (const check of rule.argumentChecks) {
        const v = check.check(args);
        trace?.argumentCheck(rule, check.label, v);
        if (v !== undefined) {
          const violation: ArgumentViolation = { ruleId: rule.id, field: v.field, constraint: v.constraint };
          return { effect: 'deny', reason: 'invalid_arguments', ruleId: rule.id, violation, policyRevision: revision };
        }
      }
    }
  }

  const chosen = granted[0]!;

  // 7. Allow.
  const limits = mergeLimits(granted);
  const redact = mergeRedact(granted);
  const allow: { -readonly [K in keyof AllowDecision]: AllowDecision[K] } = {
    effect: 'allow',
    ruleId: chosen.id,
    policyRevision: revision,
  };
  if (limits !== undefined) allow.limits = limits;
  if (redact.length > 0) allow.redact = redact;
  const describe = mergeDescribe(granted);
  if (describe !== undefined) allow.describe = describe;
  // The data-path keys (docs/policy.md "Result cache", "Idempotent writes"): rare, so the common allow pays one test.
  if (
    chosen.cache !== undefined ||
    chosen.invalidates !== undefined ||
    chosen.idempotency !== undefined ||
    granted.length > 1
  )
    addDataPath(allow, chosen, granted);
  return allow;
}

const EMPTY_ARGS: Readonly<Record<string, unknown>> = Object.freeze({});
const NONE: readonly string[] = Object.freeze([]);

export interface Candidate {
  rule: CompiledRule;
  specificity: Specificity;
}

/** The rules whose `match` covers a target, most specific first (step 1; `visibility.ts` reads the same set). */
export function collectCandidates(
  policy: CompiledPolicy,
  kind: TargetKind,
  name: string,
  upstream: string,
  trace: DecisionTrace | undefined,
): Candidate[] {
  const index = policy.index[kind];
  const out: Candidate[] = [];
  const add = (rule: CompiledRule, specificity: Specificity): void => {
    const ups = rule.match.upstreams;
    if (ups !== undefined && !ups.has(upstream)) return;
    for (const c of out) {
      if (c.rule === rule) {
        if (specificity < c.specificity) c.specificity = specificity;
        return;
      }
    }
    out.push({ rule, specificity });
  };
  index.patterns.lookup(name, (rule, isExact) => add(rule, isExact ? 0 : 1));
  const byUpstream = upstream === '' ? undefined : index.byUpstream.get(upstream);
  if (byUpstream !== undefined) for (const rule of byUpstream) add(rule, 2);
  // Insertion sort: candidate lists are short.
  for (let i = 1; i < out.length; i++) {
    const c = out[i]!;
    let j = i - 1;
    while (j >= 0 && before(c, out[j]!)) {
      out[j + 1] = out[j]!;
      j--;
    }
    out[j + 1] = c;
  }
  if (trace !== undefined) for (const c of out) trace.candidate(c.rule, c.specificity);
  return out;
}

function before(a: Candidate, b: Candidate): boolean {
  return a.specificity < b.specificity || (a.specificity === b.specificity && a.rule.order < b.rule.order);
}

/** The label of the first identity condition that fails, or undefined when all hold. */
function failedIdentity(rule: CompiledRule, principal: Principal): string | undefined {
  for (const c of rule.identity) if (!c.test(principal)) return c.label;
  return undefined;
}

/** The scopes the token lacks for this rule (for anyOf: its first entry), empty when satisfied. */
export function missingScopes(scopes: CompiledScopes | undefined, principal: Principal): readonly string[] {
  if (scopes === undefined) return NONE;
  const held = principal.scopes;
  let missing: string[] | undefined;
  for (const s of scopes.allOf) {
    if (!held.has(s)) (missing ??= []).push(s);
  }
  if (scopes.anyOf.length > 0 && !scopes.anyOf.some((s) => held.has(s))) {
    const first = scopes.anyOf[0]!;
    if (missing === undefined || !missing.includes(first)) (missing ??= []).push(first);
  }
  return missing ?? NONE;
}

function mergeLimits(rules: readonly CompiledRule[]): Limits | undefined {
  let merged: Limits | undefined;
  for (const rule of rules) {
    const l = rule.limits;
    if (l === undefined) continue;
    if (merged === undefined) {
      merged = l;
      continue;
    }
    const rate =
      merged.rate && l.rate
        ? {
            perMinute: Math.min(merged.rate.perMinute, l.rate.perMinute),
            burst: Math.min(merged.rate.burst, l.rate.burst),
          }
        : (merged.rate ?? l.rate);
    const concurrency = minDefined(merged.concurrency, l.concurrency);
    const timeoutMs = minDefined(merged.timeoutMs, l.timeoutMs);
    merged = Object.freeze({
      ...(rate ? { rate } : {}),
      ...(concurrency !== undefined ? { concurrency } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    });
  }
  return merged;
}

/** `describe` over the applying allow rules: the limits stated if any asks, every note once, in rule order. */
function mergeDescribe(rules: readonly CompiledRule[]): AllowDecision['describe'] {
  let limits = false;
  let notes: string[] | undefined;
  for (const rule of rules) {
    const d = rule.describe;
    if (d === undefined) continue;
    notes ??= [];
    if (d.limits) limits = true;
    if (d.note !== undefined && !notes.includes(d.note)) notes.push(d.note);
  }
  return notes === undefined ? undefined : { limits, notes };
}

/**
 * Cache: the shortest TTL and the narrowest scope of the granting rules that declare one (a rule without `cache`
 * does not veto it: caching is the rule author's statement about the tool's results). Invalidations: the union.
 * Idempotency: the chosen rule's, else the first granting rule's — the key names one argument, so it is not merged.
 */
function addDataPath(
  allow: { cache?: CacheSpec; invalidates?: readonly string[]; idempotency?: CompiledRule['idempotency'] },
  chosen: CompiledRule,
  granted: readonly CompiledRule[],
): void {
  let cache: CacheSpec | undefined;
  let invalidates: string[] | undefined;
  for (const rule of granted) {
    const c = rule.cache;
    if (c !== undefined)
      cache =
        cache === undefined
          ? c
          : Object.freeze({
              ttlMs: Math.min(cache.ttlMs, c.ttlMs),
              scope: cache.scope === 'principal' || c.scope === 'principal' ? 'principal' : 'public',
            });
    for (const t of rule.invalidates ?? NONE) if (!(invalidates ??= []).includes(t)) invalidates.push(t);
  }
  const idempotency = chosen.idempotency ?? granted.find((r) => r.idempotency !== undefined)?.idempotency;
  if (cache !== undefined) allow.cache = cache;
  if (invalidates !== undefined) allow.invalidates = invalidates;
  if (idempotency !== undefined) allow.idempotency = idempotency;
}

function minDefined(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

function mergeRedact(rules: readonly CompiledRule[]): readonly string[] {
  if (rules.length === 1) return rules[0]!.redact;
  let out: string[] | undefined;
  for (const rule of rules) {
    for (const f of rule.redact) {
      if (out === undefined) out = [f];
      else if (!out.includes(f)) out.push(f);
    }
  }
  return out ?? NONE;
}
