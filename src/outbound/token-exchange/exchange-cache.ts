/**
 * Exchanged tokens, remembered per caller and upstream (docs/authentication.md "Outbound identity"). A key names the
 * inbound token's issuer, subject, client and scopes and the upstream: two subjects never share an entry, and a token
 * minted for one upstream is never found under another. An entry lives until shortly before the exchanged token
 * expires and never beyond the inbound token's own `exp`. Bounded: the least recently used entry goes first.
 * Concurrent misses for one key share one exchange.
 */
import type { Principal } from '../../identity/principal.js';

export interface CachedCredential {
  readonly token: string;
  /** The exchanged token's `sub`, for the audit record; absent for an opaque token. */
  readonly subject?: string;
  /** Epoch milliseconds after which the entry is not used. */
  readonly usableUntil: number;
}

/** The cache key of a caller at an upstream (issuer, subject, client, scopes, upstream). */
export function exchangeCacheKey(principal: Principal, upstream: string): string {
  return JSON.stringify([
    principal.issuer ?? '',
    principal.subject,
    principal.clientId ?? '',
    [...principal.scopes].sort(),
    upstream,
  ]);
}

export class ExchangeCache {
  readonly #entries = new Map<string, CachedCredential>();
  readonly #pending = new Map<string, Promise<CachedCredential>>();

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  /** A usable entry (and marks it recently used), or undefined: an expired one is dropped on the way. */
  get(key: string): CachedCredential | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    if (entry.usableUntil <= this.now()) return undefined;
    this.#entries.set(key, entry);
    return entry;
  }

  set(key: string, entry: CachedCredential): void {
    this.#entries.delete(key);
    if (this.maxEntries === 0 || entry.usableUntil <= this.now()) return;
    this.#entries.set(key, entry);
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  /**
   * The entry for `key`, or the result of `fetch` — one fetch for concurrent callers of the same key, stored when it
   * succeeds. A failed fetch is not remembered.
   */
  getOrFetch(key: string, fetch: () => Promise<CachedCredential>): Promise<CachedCredential> {
    const hit = this.get(key);
    if (hit !== undefined) return Promise.resolve(hit);
    let pending = this.#pending.get(key);
    if (pending === undefined) {
      pending = fetch().then(
        (entry) => {
          this.#pending.delete(key);
          this.set(key, entry);
          return entry;
        },
        (err: unknown) => {
          this.#pending.delete(key);
          throw err;
        },
      );
      this.#pending.set(key, pending);
    }
    return pending;
  }

  /** Drops every entry whose time is up (also done lazily by `get`). */
  sweep(): void {
    const now = this.now();
    for (const [k, e] of this.#entries) if (e.usableUntil <= now) this.#entries.delete(k);
  }

  clear(): void {
    this.#entries.clear();
  }
}
