import type { ArgumentViolation, Decision, DecisionInput, TargetKind } from './decision.js';
import { evaluate, type DecisionTrace, type Specificity } from './decide.js';
import type { CompiledPolicy, CompiledRule } from './model.js';

/** What happened to one rule while deciding one request. */
export interface RuleExplanation {
  readonly id: string;
  readonly effect: 'allow' | 'deny';
  readonly where: string;
  /** How the rule's `match` met the target, or why not. */
  readonly target: { matched: true; how: 'exact name' | 'glob' | 'upstream' } | { matched: false; why: string };
  /** Undefined when the decision was made before this rule was looked at. */
  readonly identity?: { ok: true } | { ok: false; failed: string };
  readonly missingScopes?: readonly string[];
  readonly argumentChecks?: readonly { label: string; ok: boolean; violation?: Omit<ArgumentViolation, 'ruleId'> }[];
}

export interface Explanation {
  readonly revision: string;
  readonly decision: Decision;
  readonly rules: readonly RuleExplanation[];
  readonly notes: readonly string[];
}

/**
 * A trace of one decision for people (`gatehouse policy explain`): every rule of the set, whether it matched
 * the target, and for candidates which condition held or failed. Runs the very code `decide` runs, with a
 * trace attached, so the explanation cannot drift from the decision.
 */
export function explain(input: DecisionInput, policy: CompiledPolicy): Explanation {
  const byRule = new Map<CompiledRule, MutableRule>();
  const notes: string[] = [];
  const entry = (rule: CompiledRule): MutableRule => {
    let e = byRule.get(rule);
    if (e === undefined) {
      e = {};
      byRule.set(rule, e);
    }
    return e;
  };
  const trace: DecisionTrace = {
    candidate: (rule, s) => {
      entry(rule).how = HOW[s];
    },
    identity: (rule, failed) => {
      entry(rule).identity = failed === undefined ? { ok: true } : { ok: false, failed };
    },
    scopes: (rule, missing) => {
      entry(rule).missingScopes = missing;
    },
    argumentCheck: (rule, label, violation) => {
      (entry(rule).argumentChecks ??= []).push({
        label,
        ok: violation === undefined,
        ...(violation ? { violation } : {}),
      });
    },
    note: (text) => notes.push(text),
  };
  const decision = evaluate(input, policy, trace);
  if (input.argumentsUnchecked === true) notes.push('argument checks skipped (argumentsUnchecked: listing visibility)');
  if (policy.rules.length === 0) notes.push('the policy set has no rules: every targeted request is denied');

  const rules = policy.rules.map((rule): RuleExplanation => {
    const e = byRule.get(rule);
    const base = {
      id: rule.id,
      effect: rule.effect,
      where: `${rule.file}${rule.line !== undefined ? `:${rule.line}` : ''}`,
    };
    if (input.target === undefined || e?.how === undefined) {
      return {
        ...base,
        target: {
          matched: false,
          why: input.target === undefined ? 'the request names no target' : whyNotMatched(rule, input.target),
        },
      };
    }
    return {
      ...base,
      target: { matched: true, how: e.how },
      ...(e.identity ? { identity: e.identity } : {}),
      ...(e.missingScopes ? { missingScopes: e.missingScopes } : {}),
      ...(e.argumentChecks ? { argumentChecks: e.argumentChecks } : {}),
    };
  });
  return { revision: policy.revision, decision, rules, notes };
}

/** The explanation as text, one rule per paragraph; candidates first. */
export function formatExplanation(x: Explanation, opts: { showUnmatched?: boolean } = {}): string {
  const d = x.decision;
  const lines: string[] = [];
  lines.push(
    d.effect === 'allow'
      ? `ALLOW by rule ${d.ruleId} (policy ${x.revision})${d.limits ? ` limits ${JSON.stringify(d.limits)}` : ''}${d.redact ? ` redact ${d.redact.join(', ')}` : ''}`
      : `DENY ${d.reason}${d.ruleId ? ` (rule ${d.ruleId})` : ''}${d.requiredScopes ? ` requires scopes: ${d.requiredScopes.join(' ')}` : ''}${d.violation ? ` violation: ${d.violation.field || '/'} ${d.violation.constraint}` : ''} (policy ${x.revision})`,
  );
  for (const n of x.notes) lines.push(`  note: ${n}`);
  const matched = x.rules.filter((r) => r.target.matched);
  const unmatched = x.rules.filter((r) => !r.target.matched);
  for (const r of matched) {
    lines.push(`  ${r.effect.toUpperCase()} ${r.id} (${r.where}): matches by ${(r.target as { how: string }).how}`);
    if (r.identity === undefined) {
      lines.push('    not evaluated: the decision was made before this rule');
      continue;
    }
    lines.push(r.identity.ok ? '    identity: all conditions hold' : `    identity: fails on ${r.identity.failed}`);
    if (r.missingScopes !== undefined)
      lines.push(
        r.missingScopes.length === 0 ? '    scopes: satisfied' : `    scopes: missing ${r.missingScopes.join(' ')}`,
      );
    for (const c of r.argumentChecks ?? []) {
      lines.push(
        c.ok
          ? `    arguments: ${c.label}: pass`
          : `    arguments: ${c.label}: FAIL at ${c.violation?.field || '/'} (${c.violation?.constraint ?? ''})`,
      );
    }
  }
  if (opts.showUnmatched !== false) {
    for (const r of unmatched)
      lines.push(
        `  ${r.effect.toUpperCase()} ${r.id} (${r.where}): not a candidate: ${(r.target as { why: string }).why}`,
      );
  } else if (unmatched.length > 0) {
    lines.push(`  ${unmatched.length} other rule(s) do not match the target`);
  }
  return lines.join('\n');
}

interface MutableRule {
  how?: 'exact name' | 'glob' | 'upstream';
  identity?: { ok: true } | { ok: false; failed: string };
  missingScopes?: readonly string[];
  argumentChecks?: { label: string; ok: boolean; violation?: Omit<ArgumentViolation, 'ruleId'> }[];
}

const HOW: Readonly<Record<Specificity, 'exact name' | 'glob' | 'upstream'>> = {
  0: 'exact name',
  1: 'glob',
  2: 'upstream',
};

const LIST_KEY: Readonly<Record<TargetKind, 'tools' | 'resources' | 'prompts' | 'requests'>> = {
  tool: 'tools',
  resource: 'resources',
  prompt: 'prompts',
  request: 'requests',
};

function whyNotMatched(rule: CompiledRule, target: { kind: TargetKind; name: string; upstream: string }): string {
  const m = rule.match;
  if (m.upstreams !== undefined && !m.upstreams.has(target.upstream)) {
    return `upstream "${target.upstream}" is not in [${[...m.upstreams].join(', ')}]`;
  }
  const key = LIST_KEY[target.kind];
  const list = m[key];
  if (list === undefined) {
    const hasAnyList =
      m.tools !== undefined || m.resources !== undefined || m.prompts !== undefined || m.requests !== undefined;
    if (target.kind === 'request' && !hasAnyList) return 'a rule naming only upstreams never covers their requests';
    return hasAnyList ? `the rule matches no ${key}` : 'no upstream list matched';
  }
  return `"${target.name}" matches none of ${key} [${list.map((g) => g.source).join(', ')}]`;
}
