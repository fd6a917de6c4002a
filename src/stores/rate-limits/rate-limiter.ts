/**
 * The rate-limit port (docs/architecture.md §3, §4: rate limits are the last step before forward, and the only policy
 * step with I/O). Two kinds of limit, both keyed by strings the caller builds (principal, tool, upstream — never a
 * session, a connection or an IP):
 *
 * - **rate**: a token bucket kept as GCRA (one number per key: the theoretical arrival time, see `gcra.ts`);
 * - **concurrency**: leases on calls in flight. A lease carries an expiry, so the leases of a replica that
 *   crashed before releasing age out instead of holding the slot forever.
 *
 * Implementations live in `src/stores/` (memory: one node; Redis: many replicas). Nothing here imports ioredis.
 */

/** `count` calls per `periodMs`, with up to `burst` at once (a full bucket holds `burst`). */
export interface RateSpec {
  readonly count: number;
  readonly periodMs: number;
  readonly burst: number;
}

export interface ConsumeResult {
  readonly ok: boolean;
  /** 0 when allowed; else how long until one call would be allowed (ms, rounded up). */
  readonly retryAfterMs: number;
  /** Calls still allowed right now after this one (0 when refused). */
  readonly remaining: number;
}

/** One admission: every bucket and every lease of a call, decided all-or-nothing. */
export interface AdmitRequest {
  readonly rates: readonly { readonly key: string; readonly rate: RateSpec }[];
  readonly leases: readonly { readonly key: string; readonly max: number }[];
  /** Unique per call: the member of each lease set. */
  readonly leaseId: string;
  /** How long a lease lives if it is never released (crash): the call's longest possible life plus grace. */
  readonly leaseTtlMs: number;
}

export type AdmitResult =
  | {
      readonly ok: true;
      /** The smallest `remaining` over the rate buckets (Infinity without any). */ readonly remaining: number;
    }
  | {
      readonly ok: false;
      readonly kind: 'rate' | 'concurrency';
      /** Index in `rates` or `leases`. */ readonly index: number;
      readonly retryAfterMs: number;
    };

export interface RateLimiter {
  /** One bucket (docs/architecture.md §3 `consume(key, limit)`). */
  consume(key: string, rate: RateSpec): Promise<ConsumeResult>;
  /**
   * Consume one token from every bucket and take a lease in every set, or — if any bucket is empty or any set
   * full — change nothing. All-or-nothing, so a call refused by one limit does not spend another's budget.
   */
  admit(request: AdmitRequest): Promise<AdmitResult>;
  /** Give the leases back (completion, error, cancel). Best effort: an unreleased lease expires by itself. */
  release(keys: readonly string[], leaseId: string): Promise<void>;
  close(): Promise<void>;
}

/** The store cannot answer (Redis down, timed out, memory store full): each limit's `onStoreError` decides. */
export class LimiterUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LimiterUnavailableError';
  }
}

/** How long a client refused by a concurrency limit is told to wait: a slot frees when some call ends. */
export const CONCURRENCY_RETRY_MS = 1000;
