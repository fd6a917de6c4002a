import type { Principal } from '../identity/principal.js';
import type { ArgumentViolation, CacheSpec, Describe, IdempotencySpec, Limits, TargetKind } from './decision.js';
import type { Glob } from './glob.js';
import type { PatternIndex } from './pattern-index.js';

/**
 * The compiled form of a policy set (docs/architecture.md §8): what `compile.ts` produces and `decide.ts` reads. Built
 * once per load, deeply frozen, never changed: a reload builds a new one and swaps it in whole.
 */
export interface CompiledPolicy {
  /** SHA-256 over the sorted (file name, content) pairs, hex, first 12 characters. */
  readonly revision: string;
  /** File names in the order they were read (name order). */
  readonly files: readonly string[];
  /** Every rule, in file order then rule order. */
  readonly rules: readonly CompiledRule[];
  readonly index: Readonly<Record<TargetKind, KindIndex>>;
}

/** The rules that can apply to one kind of target, arranged so that a lookup touches only candidates. */
export interface KindIndex {
  /** Rules listing this kind (`match.tools`, `resources`, `prompts`, `requests`), by exact name and by glob. */
  readonly patterns: PatternIndex<CompiledRule>;
  /**
   * Rules with `match.upstreams` only (no list for any kind): they apply to every tool, resource and prompt of
   * their upstreams. Never to requests: a rule grants or refuses an upstream's requests only by naming them.
   */
  readonly byUpstream: ReadonlyMap<string, readonly CompiledRule[]>;
}

export interface CompiledRule {
  readonly id: string;
  readonly effect: 'allow' | 'deny';
  readonly description?: string;
  readonly file: string;
  readonly line?: number;
  /** Position in the whole set; breaks ties between equally specific rules. */
  readonly order: number;
  readonly match: CompiledMatch;
  /** The `when` conditions other than scopes: if one fails, the rule does not exist for this principal. */
  readonly identity: readonly Condition[];
  readonly scopes?: CompiledScopes;
  /** Allow rules only: the schema fragment and constraints, each one check. */
  readonly argumentChecks: readonly ArgumentCheck[];
  /** JSON pointers. */
  readonly redact: readonly string[];
  readonly limits?: Limits;
  /** Allow rules only: state the limits (and a note) in the descriptions of the tools listed under this rule. */
  readonly describe?: Describe;
  readonly cache?: CacheSpec;
  /** Exact exposed tool names. */
  readonly invalidates?: readonly string[];
  readonly idempotency?: IdempotencySpec;
}

export interface CompiledMatch {
  readonly tools?: readonly Glob[];
  readonly resources?: readonly Glob[];
  readonly prompts?: readonly Glob[];
  /** Requests from the upstream to the client (upstream-requests.ts), by exact name. */
  readonly requests?: readonly Glob[];
  readonly upstreams?: ReadonlySet<string>;
}

export interface CompiledScopes {
  readonly allOf: readonly string[];
  readonly anyOf: readonly string[];
}

export interface Condition {
  /** For `explain`: e.g. `subjects [alice, svc-*]`. */
  readonly label: string;
  test(principal: Principal): boolean;
}

export interface ArgumentCheck {
  /** For `explain`: e.g. `schema` or `path /path under /srv/sandbox`. */
  readonly label: string;
  /** Constraints only: the argument they check (for `gatehouse tools list` warnings). */
  readonly field?: { readonly text: string; readonly segments: readonly string[]; readonly optional: boolean };
  /** Undefined when the arguments pass; otherwise where and why they fail (without the value). */
  check(args: Readonly<Record<string, unknown>>): Omit<ArgumentViolation, 'ruleId'> | undefined;
}
