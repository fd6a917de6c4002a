/**
 * Descriptions that tell the agent about its terms (policy `describe`, docs/policy.md "Descriptions that state the
 * limits"): the words appended to a listed tool's description, from the allow decision's `limits` and the rules'
 * notes. An agent that reads "Limited to 30 calls per minute per user" plans its calls instead of discovering the
 * limit by being refused.
 *
 * Only the listed copy changes: the catalogue's definition (what `tools/call` resolves) and the upstream's listing
 * (what pinning hashes) stay as the upstream wrote them. `tools/list` builds the decorated list once per listing
 * key (list-cache.ts); the key names the rules that hold for the principal, and the decision — limits and notes —
 * depends on nothing else, so every principal sharing an entry would have got the same words.
 */
import type { JsonObject } from '../lib/json-rpc.js';
import type { AllowDecision, Limits } from '../policy/decision.js';

/** Between the upstream's description and ours (an em dash, so the agent reads it as an aside of the gateway's). */
const SEPARATOR = ' — ';

/**
 * The sentence(s) for one decision, or undefined when there is nothing to say (no `describe`, or `limits` asked for
 * a decision without any and no note). E.g. "Limited to 30 calls per minute per user; at most 2 at a time per
 * user; times out after 10 s. Each call costs one credit."
 */
export function describeTerms(decision: AllowDecision, extra: TermsExtra = {}): string | undefined {
  const d = decision.describe;
  if (d === undefined) return undefined;
  const parts: string[] = [];
  const limits = d.limits ? limitsSentence(decision.limits ?? {}, extra) : undefined;
  if (limits !== undefined) parts.push(limits);
  for (const note of d.notes) parts.push(/[.!?]$/.test(note) ? note : `${note}.`);
  return parts.length === 0 ? undefined : parts.join(' ');
}

/**
 * Terms that do not live in `Limits`: a result cache's TTL (policy `cache`, built separately) words as "results may
 * be up to 30 s old". Pass it from the decision once the cache rule exists; absent, nothing is said.
 */
export interface TermsExtra {
  readonly cacheTtlMs?: number;
}

/** The policy's limits in plain words; they count per principal and tool (mcp/limits.ts), hence "per user". */
export function limitsSentence(limits: Limits, extra: TermsExtra = {}): string | undefined {
  const clauses: string[] = [];
  if (limits.rate !== undefined) {
    const { perMinute, burst } = limits.rate;
    let rate = `limited to ${calls(perMinute)} per minute per user`;
    if (burst > perMinute) rate += ` (bursts of up to ${burst})`;
    clauses.push(rate);
  }
  if (limits.concurrency !== undefined) clauses.push(`at most ${limits.concurrency} at a time per user`);
  if (limits.timeoutMs !== undefined) clauses.push(`times out after ${duration(limits.timeoutMs)}`);
  if (extra.cacheTtlMs !== undefined && extra.cacheTtlMs > 0)
    clauses.push(`results may be up to ${duration(extra.cacheTtlMs)} old`);
  if (clauses.length === 0) return undefined;
  const text = clauses.join('; ');
  return `${text[0]!.toUpperCase()}${text.slice(1)}.`;
}

/** A copy of a tool definition with the terms appended to its description (the definition is not changed). */
export function describedTool(definition: JsonObject, terms: string): JsonObject {
  const own = typeof definition.description === 'string' ? definition.description.trimEnd() : '';
  return { ...definition, description: own === '' ? terms : `${own}${SEPARATOR}${terms}` };
}

function calls(n: number): string {
  return n === 1 ? '1 call' : `${n} calls`;
}

/** 500 ms, 10 s, 1.5 s, 2 min, 1 h 30 min. */
export function duration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000 || ms % 60_000 !== 0) {
    const s = ms / 1000;
    return `${Number.isInteger(s) ? s : s.toFixed(1).replace(/\.0$/, '')} s`;
  }
  const min = ms / 60_000;
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  const rest = min % 60;
  return rest === 0 ? `${h} h` : `${h} h ${rest} min`;
}
