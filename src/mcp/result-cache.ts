/**
 * The result cache and idempotency ledger of the data path (docs/policy.md "Result cache", "Idempotent writes"):
 * the store (memory or Redis, chosen by the composition root), this replica's in-flight misses (single flight per
 * key), and the invalidations the composition root wires to it (list_changed, pin state, policy reload).
 *
 * Every key is a SHA-256 over its parts: no subject, argument or URI reaches the store in clear.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { JsonObject } from '../lib/json-rpc.js';
import type { ResultStore } from '../stores/results/result-store.js';

export class ResultCache {
  /** Misses being forwarded by this replica, by cache key: identical misses wait for the first. */
  readonly inflight = new Map<string, Promise<Flight>>();

  constructor(
    readonly store: ResultStore,
    readonly logger: Logger,
  ) {}

  /** The generation key of everything cached from one upstream (bumped on its list_changed or a pin change). */
  static upstreamGen(upstream: string): string {
    return `u:${digest(upstream)}`;
  }

  /** The generation key of one exposed tool's (or resource's) cached results at one upstream. */
  static targetGen(upstream: string, name: string): string {
    return `t:${digest(JSON.stringify([upstream, name]))}`;
  }

  /** The catalogue changed (list_changed, a re-list, a pin state change): drop what these upstreams served. */
  invalidateUpstreams(upstreams: Iterable<string>): void {
    for (const u of upstreams)
      this.store.bump(ResultCache.upstreamGen(u)).catch((err: unknown) => this.failed('invalidate', err));
  }

  /** A policy reload: the revision is in every key, so old entries stop matching; free this replica's memory too. */
  policyReloaded(): void {
    this.store.clearLocal();
  }

  failed(what: string, err: unknown): void {
    this.logger.warn({ err: err instanceof Error ? err.message : String(err) }, `result cache ${what} failed`);
  }
}

/** What a leader's forward ended with, for the identical misses waiting on it. */
export interface Flight {
  readonly result: JsonObject;
  /** The principal key it was cached under, when the upstream made a public-scoped result private. */
  readonly privateTo?: string;
}

export function digest(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('base64url');
}
