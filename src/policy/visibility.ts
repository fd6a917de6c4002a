import type { Principal } from '../identity/principal.js';
import { collectCandidates, missingScopes } from './decide.js';
import type { DecisionInput } from './decision.js';
import type { CompiledPolicy, CompiledRule } from './model.js';

/** A target as a listing shows it (exposed name or URI, and its upstream). */
export type ListTarget = NonNullable<DecisionInput['target']>;

/**
 * The part of a principal that listings depend on, as a key (docs/architecture.md §4: a listing shows exactly what a
 * call would be allowed to reach). The key names the policy revision and the set of rules that *hold* for the
 * principal: every identity condition of the rule's `when` passes and the token carries its scopes.
 *
 * Why that set is exactly enough: with the argument step skipped (`visible`), `evaluate` reads the principal
 * only through `failedIdentity` and `missingScopes` of each candidate rule, and it allows a target iff no
 * candidate deny rule holds, the target is not quarantined, and some candidate allow rule holds (an allow rule
 * whose identity passes but whose scopes are missing ends in insufficient_scope, which a listing hides just like
 * no_matching_rule). For a target, `now` and `method` are not read. So two principals with the same key get the
 * same visibility for every target of every catalogue under this policy, and principals who could see different
 * lists never share a key — whatever the conditions read (subject, client, issuer, groups, claims, certificate,
 * scopes, authenticated), because the key is built from the conditions' results, not from a chosen list of
 * attributes that a new condition could outgrow.
 */
export function listingKey(principal: Principal, policy: CompiledPolicy): string {
  return holding(principal, policy).key;
}

/**
 * `visible` for many targets at once, from the same facts: the rules that hold for the principal (above) and each
 * target's candidate rules (`collectCandidates`, as `evaluate` step 1 finds them). Targets with the same
 * candidates form one group, decided once: for 20 upstreams × 100 tools under a handful of rules, a few groups
 * instead of 2,000 decisions. The grouping is kept per (targets array, policy), so pass the same array for the
 * same catalogue. Quarantine is not applied here (the caller hides quarantined tools: `evaluate` step 2b).
 */
export function visibleTargets(
  principal: Principal,
  policy: CompiledPolicy,
  targets: readonly ListTarget[],
): boolean[] {
  const plan = planFor(policy, targets);
  const holds = holding(principal, policy).holds;
  const groupShown = plan.groups.map((g) => groupAllows(g, holds));
  const out = new Array<boolean>(targets.length);
  for (let i = 0; i < targets.length; i++) out[i] = groupShown[plan.groupOf[i]!]!;
  return out;
}

/** Steps 2–4 of `evaluate` for one candidate set: a holding deny rule hides; else a holding allow rule shows. */
function groupAllows(candidates: Int32Array, holds: Uint8Array): boolean {
  let allowed = false;
  for (const c of candidates) {
    if (c < 0) {
      if (holds[-c - 1] === 1) return false;
    } else if (holds[c - 1] === 1) allowed = true;
  }
  return allowed;
}

interface Plan {
  readonly policy: CompiledPolicy;
  /** The group of each target. */
  readonly groupOf: Uint32Array;
  /** Each group's candidate rules by position in `policy.rules`: allow rules as index + 1, deny rules as -(index + 1). */
  readonly groups: readonly Int32Array[];
}

const plans = new WeakMap<readonly ListTarget[], Plan>();

function planFor(policy: CompiledPolicy, targets: readonly ListTarget[]): Plan {
  const known = plans.get(targets);
  if (known !== undefined && known.policy === policy) return known;
  const position = new Map<CompiledRule, number>();
  policy.rules.forEach((r, i) => position.set(r, i));
  const groupOf = new Uint32Array(targets.length);
  const groups: Int32Array[] = [];
  const byCandidates = new Map<string, number>();
  targets.forEach((t, i) => {
    const signed = collectCandidates(policy, t.kind, t.name, t.upstream, undefined).map((c) => {
      const at = position.get(c.rule)! + 1;
      return c.rule.effect === 'deny' ? -at : at;
    });
    signed.sort((a, b) => a - b);
    const k = signed.join(',');
    let g = byCandidates.get(k);
    if (g === undefined) {
      g = groups.length;
      groups.push(Int32Array.from(signed));
      byCandidates.set(k, g);
    }
    groupOf[i] = g;
  });
  const plan: Plan = { policy, groupOf, groups };
  plans.set(targets, plan);
  return plan;
}

/** The rules that hold for the principal under this policy, as flags and as the listing key; once per policy. */
function holding(
  principal: Principal,
  policy: CompiledPolicy,
): { policy: CompiledPolicy; key: string; holds: Uint8Array } {
  const memo = memos.get(principal);
  if (memo !== undefined && memo.policy === policy) return memo;
  const rules = policy.rules;
  const holds = new Uint8Array(rules.length);
  for (let i = 0; i < rules.length; i++) holds[i] = holdsFor(rules[i]!, principal) ? 1 : 0;
  const computed = { policy, key: `${policy.revision}:${hexBits(holds)}`, holds };
  // Principals are immutable (identity/principal.ts) and a session keeps its own: computed once per policy.
  memos.set(principal, computed);
  return computed;
}

function holdsFor(rule: CompiledRule, principal: Principal): boolean {
  for (const c of rule.identity) if (!c.test(principal)) return false;
  return missingScopes(rule.scopes, principal).length === 0;
}

/** One bit per rule in policy order, four to a hex digit. */
function hexBits(flags: Uint8Array): string {
  let out = '';
  for (let base = 0; base < flags.length; base += 4) {
    let nibble = 0;
    for (let bit = 0; bit < 4 && base + bit < flags.length; bit++) if (flags[base + bit] === 1) nibble |= 1 << bit;
    out += HEX[nibble];
  }
  return out;
}

const HEX = '0123456789abcdef';

const memos = new WeakMap<Principal, { policy: CompiledPolicy; key: string; holds: Uint8Array }>();
