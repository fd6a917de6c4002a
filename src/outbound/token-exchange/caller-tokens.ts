/**
 * The part token exchange and ID-JAG share: each caller's bearer token for one upstream, obtained once, kept in the
 * exchange cache (exchange-cache.ts) and swept while idle, and handed to the call as `Authorization: Bearer`. Only a
 * request that carries a verified inbound token gets one; how the token is obtained is the provider's.
 */
import type { CredentialRequest, OutboundCredential, OutboundCredentialKind } from '../credential-provider.js';
import { credentialFailed } from '../errors.js';
import { ExchangeCache, exchangeCacheKey, type CachedCredential } from './exchange-cache.js';
import { whileNotCancelled } from './token-endpoint.js';

/** Obtains a caller's token from the inbound one; the entry never outlives `inboundExpiresAt`. */
export type ObtainToken = (subjectToken: string, inboundExpiresAt: number | undefined) => Promise<CachedCredential>;

export class CallerTokens {
  readonly #cache: ExchangeCache;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly upstream: string,
    private readonly kind: OutboundCredentialKind,
    maxEntries: number,
    now: () => number,
  ) {
    this.#cache = new ExchangeCache(maxEntries, now);
    // Expired entries also leave without being asked for: no obtained token outlives its time in memory by long.
    if (maxEntries > 0) {
      this.#sweeper = setInterval(() => this.#cache.sweep(), 60_000);
      this.#sweeper.unref();
    }
  }

  /** Entries held, for tests and diagnostics. */
  get size(): number {
    return this.#cache.size;
  }

  async credentialFor(req: CredentialRequest, obtain: ObtainToken, missing: string): Promise<OutboundCredential> {
    const token = req.inboundToken;
    if (token === undefined || req.principal.anonymous) throw credentialFailed(this.upstream, missing);
    const key = exchangeCacheKey(req.principal, this.upstream);
    const pending = this.#cache.getOrFetch(key, () => obtain(token.reveal(), req.principal.expiresAt));
    const entry = await whileNotCancelled(pending, req);
    return {
      kind: this.kind,
      headers: { authorization: `Bearer ${entry.token}` },
      ...(entry.subject !== undefined ? { subject: entry.subject } : {}),
    };
  }

  close(): void {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#cache.clear();
  }
}
