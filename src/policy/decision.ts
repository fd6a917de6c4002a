import type { Principal } from '../identity/principal.js';
import type { UpstreamRequest } from './upstream-requests.js';

/**
 * The policy seam (docs/architecture.md §1 ④, §4). One pure, synchronous function decides listing and calling alike;
 * `decide.ts` is the compiled engine. Nothing here imports fastify, the SDK or ioredis.
 */
export type TargetKind = 'tool' | 'resource' | 'prompt' | 'request';

export interface DecisionInput {
  principal: Principal;
  method: string;
  /**
   * The exposed name (tools, prompts) or the URI (resources), and the upstream that serves it ('' if none). For a
   * request an upstream sends the client (kind `request`, see upstream-requests.ts): its policy name, e.g.
   * `elicitation/create:url`, and the upstream that sent it; the principal is the originating session's.
   */
  target?: { kind: TargetKind; name: string; upstream: string };
  args?: Readonly<Record<string, unknown>>;
  /** Epoch milliseconds; injected so that a decision never reads the clock. */
  now: number;
  /** Set by tool pinning: the tool's definition changed since it was approved (threat model #14). */
  quarantined?: boolean;
  /**
   * Skip the argument step: "would a call with valid arguments be allowed?". Used to filter `tools/list`
   * (see `visible`), so that listing and calling are decided by the same function (docs/architecture.md §4).
   */
  argumentsUnchecked?: boolean;
}

export type DenyReason =
  'no_matching_rule' | 'denied_by_rule' | 'insufficient_scope' | 'invalid_arguments' | 'quarantined';

/** Limits an allow rule asks for; enforced by the rate-limit step after the decision. */
export interface Limits {
  readonly rate?: { readonly perMinute: number; readonly burst: number };
  readonly concurrency?: number;
  readonly timeoutMs?: number;
}

/**
 * What a listed tool's description says about its terms (policy `describe`; mcp/describe.ts writes the words):
 * whether to state the decision's limits, and notes of the rules' own.
 */
export interface Describe {
  readonly limits: boolean;
  readonly note?: string;
}

/**
 * A rule's result cache (`cache:`; the pipeline's cache step, docs/policy.md "Result cache"). `principal`: one entry
 * per caller and deciding rule; `public`: one entry for every caller the policy lets through (see the docs' risks).
 */
export interface CacheSpec {
  readonly ttlMs: number;
  readonly scope: 'principal' | 'public';
}

/** A rule's idempotent-write dedupe (`idempotency:`; the pipeline's idempotency step): the argument carrying the key. */
export interface IdempotencySpec {
  /** The top-level argument name whose string value is the client's idempotency key. */
  readonly key: string;
  readonly ttlMs: number;
}

/** Which argument check refused a call. For the audit record only: the wire says "Invalid params". */
export interface ArgumentViolation {
  readonly ruleId: string;
  /** JSON pointer of the offending argument ('' for the whole arguments object). */
  readonly field: string;
  /** `schema:<keyword>` for the rule's JSON Schema fragment, or the constraint kind and why, e.g. `path:dot_dot`. */
  readonly constraint: string;
}

export interface AllowDecision {
  readonly effect: 'allow';
  readonly ruleId: string;
  readonly policyRevision: string;
  /** The strictest of the limits of every allow rule that applied. */
  readonly limits?: Limits;
  /** Argument fields (JSON pointers) to hide in audit records: the union over the applying allow rules. */
  readonly redact?: readonly string[];
  /**
   * Set when an applying allow rule has `describe`: limits stated if any of them asks, and their notes in rule order
   * (each once). Read by `tools/list` only, where it decorates the listed copy of the tool's description.
   */
  readonly describe?: { readonly limits: boolean; readonly notes: readonly string[] };
  /** Cache the result: the shortest TTL and the narrowest scope over the applying allow rules that declare one. */
  readonly cache?: CacheSpec;
  /** Exposed tool names whose cached results (same upstream) a successful call drops: the union over the rules. */
  readonly invalidates?: readonly string[];
  /** Dedupe retries by key: the chosen (most specific) rule's, else the first applying rule's that declares one. */
  readonly idempotency?: IdempotencySpec;
}

export interface DenyDecision {
  readonly effect: 'deny';
  readonly reason: DenyReason;
  /** The deny rule that matched, the allow rule whose scopes or arguments failed, or none (no_matching_rule). */
  readonly ruleId?: string;
  /** insufficient_scope: the smallest set of scopes that, added to the token's, would allow the request. */
  readonly requiredScopes?: readonly string[];
  readonly violation?: ArgumentViolation;
  readonly detail?: string;
  readonly policyRevision: string;
}

export type Decision = AllowDecision | DenyDecision;

export interface PolicyEngine {
  readonly revision: string;
  decide(input: DecisionInput): Decision;
  /**
   * A key such that two principals with equal keys get the same decision, argument step skipped, for every
   * target (what listings show) under the current policy; it changes with the policy. Lets the front door
   * cache filtered lists (mcp/list-cache.ts). Absent: lists are filtered on every request.
   */
  listingKey?(principal: Principal): string;
  /**
   * Whether some rule has `describe` (then `tools/list` asks `decide` about each listed tool to word its limits).
   * Absent or false: descriptions are listed as the upstreams wrote them.
   */
  readonly describes?: boolean;
  /**
   * For each target, whether `decide` with the argument step skipped would allow it, quarantine aside (the
   * caller hides quarantined tools). Same answers as one decision per target; absent: one decision per target.
   */
  visibleTargets?(principal: Principal, targets: readonly NonNullable<DecisionInput['target']>[]): readonly boolean[];
  /**
   * The requests (sampling, elicitation, roots) some principal might be allowed from this upstream: the client
   * capabilities the gateway declares to it. Read at each connect; absent: all of them (each is still decided).
   */
  possibleUpstreamRequests?(upstream: string): ReadonlySet<UpstreamRequest>;
}
