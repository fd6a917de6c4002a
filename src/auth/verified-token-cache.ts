/**
 * Verified-token cache (issue 8: "a verified token can be cached by its hash until it expires").
 *
 * Signature verification is the single largest cost of an authenticated call (an ECDSA/RSA verify per request),
 * yet an agent sends the same access token on every call of a session. What a verification concluded about the
 * token *itself* — signature, `alg` allowlist, `iss`, `aud`, `typ`, required claims — cannot change while the
 * key set stays the same, so it is remembered here, keyed by SHA-256 of the exact token text (the token itself is
 * never a key, a value or a log line: a dump of this cache yields no usable credential).
 *
 * What is NOT remembered, and is checked again on every request by the caller: time (`exp`, `nbf`, against the
 * injected clock), RFC 8705 certificate binding against the certificate of *this* request, revocation (builtin AS),
 * and the required scopes. Refusals are never cached: only a token that verified can enter, so a flood of garbage
 * or forged tokens cannot evict anything useful (an attacker cannot mint validly signed tokens).
 *
 * Bounds: at most `maxEntries` (LRU), and an entry lives at most `maxAgeMs` and never past the token's `exp`
 * (no clock skew added: a token in its skew window goes back through full verification, which applies the skew).
 */
import { hash } from 'node:crypto';

/** Default bounds: 10,000 distinct live tokens (a few MB) and 5 minutes, well under a typical access-token lifetime. */
export const VERIFIED_TOKEN_CACHE_DEFAULTS = Object.freeze({ maxEntries: 10_000, maxAgeMs: 5 * 60_000 });

export interface VerifiedTokenCacheOptions {
  maxEntries: number;
  maxAgeMs: number;
}

interface Entry<V> {
  value: V;
  /** Epoch ms after which the entry is gone: min(verifiedAt + maxAgeMs, exp). */
  until: number;
  /** The key-set generation it was verified under (see `JwtVerifier`): another generation makes it a miss. */
  generation: number;
}

/** The cache key of a token: base64url SHA-256 of its exact text (one-shot `crypto.hash`: no Hash object per call). */
export function tokenCacheKey(token: string): string {
  return hash('sha256', token, 'base64url');
}

export class VerifiedTokenCache<V> {
  readonly #maxEntries: number;
  readonly #maxAgeMs: number;
  /** Map iteration order is insertion order: the first key is the least recently used. */
  readonly #entries = new Map<string, Entry<V>>();

  /** Throws `TypeError` on bad bounds (docs/style.md habit 5). `maxEntries: 0` disables the cache. */
  constructor(options: VerifiedTokenCacheOptions = VERIFIED_TOKEN_CACHE_DEFAULTS) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 0)
      throw new TypeError('VerifiedTokenCache: "maxEntries" must be a non-negative integer');
    if (!Number.isFinite(options.maxAgeMs) || options.maxAgeMs < 0)
      throw new TypeError('VerifiedTokenCache: "maxAgeMs" must be a non-negative number');
    this.#maxEntries = options.maxEntries;
    this.#maxAgeMs = options.maxAgeMs;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value stored under `key` if it is still alive at `now` and of `generation`; an outdated entry is dropped. */
  get(key: string, now: number, generation: number): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    if (entry.until <= now || entry.generation !== generation) return undefined;
    this.#entries.set(key, entry);
    return entry.value;
  }

  /** Remembers a verified token's conclusions until min(now + maxAgeMs, expiresAt); nothing when already past. */
  set(key: string, value: V, now: number, expiresAt: number, generation: number): void {
    if (this.#maxEntries === 0) return;
    const until = Math.min(now + this.#maxAgeMs, expiresAt);
    if (!(until > now)) return;
    this.#entries.delete(key);
    this.#entries.set(key, { value, until, generation });
    while (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
  }

  clear(): void {
    this.#entries.clear();
  }
}
