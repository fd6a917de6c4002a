/**
 * The single-node `AsStore`: one bounded map of JSON strings with expiry times. Records go in and come out
 * as JSON text, so callers get copies exactly as from Redis. Every operation is synchronous inside, which
 * makes the take-once and family operations atomic without locks.
 */
import type {
  AsStore,
  CodeRecord,
  ConsentRecord,
  PendingConsent,
  PendingLogin,
  RefreshRecord,
  StoredClient,
  TakeResult,
} from './as-store.js';
import { StoreFullError } from './as-store.js';

export interface MemoryAsStoreOptions {
  /** Epoch milliseconds (tests freeze it). */
  now?: () => number;
  /** Entries (all kinds together) before writes are refused. Default 100 000. */
  maxEntries?: number;
}

interface Entry {
  value: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

export class MemoryAsStore implements AsStore {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;
  readonly #maxEntries: number;

  constructor(opts: MemoryAsStoreOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#maxEntries = opts.maxEntries ?? 100_000;
    if (!Number.isSafeInteger(this.#maxEntries) || this.#maxEntries < 1)
      throw new TypeError('"maxEntries" option must be a positive integer');
  }

  // ─── primitives ────────────────────────────────────────────────────────────────────────────────────────

  #get(key: string): string | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  #set(key: string, value: string, ttlSeconds: number): void {
    assertTtl(ttlSeconds);
    if (!this.#entries.has(key) && this.#entries.size >= this.#maxEntries) {
      this.#sweep();
      if (this.#entries.size >= this.#maxEntries) throw new StoreFullError();
    }
    this.#entries.set(key, { value, expiresAt: this.#now() + ttlSeconds * 1000 });
  }

  #sweep(): void {
    const now = this.#now();
    for (const [key, e] of this.#entries) if (e.expiresAt <= now) this.#entries.delete(key);
  }

  #getJson<T>(key: string): T | undefined {
    const v = this.#get(key);
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }

  #take<T>(key: string): T | undefined {
    const v = this.#get(key);
    if (v === undefined) return undefined;
    this.#entries.delete(key);
    return JSON.parse(v) as T;
  }

  #takeOnce<T>(key: string, usedKey: string, tombstoneTtlSeconds: number): TakeResult<T> {
    assertTtl(tombstoneTtlSeconds);
    const v = this.#get(key);
    if (v !== undefined) {
      this.#entries.delete(key);
      this.#set(usedKey, v, tombstoneTtlSeconds);
      return { state: 'fresh', record: JSON.parse(v) as T };
    }
    const used = this.#get(usedKey);
    return used === undefined ? { state: 'missing' } : { state: 'used', record: JSON.parse(used) as T };
  }

  // ─── AsStore ───────────────────────────────────────────────────────────────────────────────────────────

  async saveClient(client: StoredClient, ttlSeconds: number): Promise<void> {
    this.#set(`client:${client.clientId}`, JSON.stringify(client), ttlSeconds);
  }

  async findClient(clientId: string): Promise<StoredClient | undefined> {
    return this.#getJson(`client:${clientId}`);
  }

  async savePendingLogin(id: string, login: PendingLogin, ttlSeconds: number): Promise<void> {
    this.#set(`login:${id}`, JSON.stringify(login), ttlSeconds);
  }

  async takePendingLogin(id: string): Promise<PendingLogin | undefined> {
    return this.#take(`login:${id}`);
  }

  async savePendingConsent(id: string, consent: PendingConsent, ttlSeconds: number): Promise<void> {
    this.#set(`consent-req:${id}`, JSON.stringify(consent), ttlSeconds);
  }

  async findPendingConsent(id: string): Promise<PendingConsent | undefined> {
    return this.#getJson(`consent-req:${id}`);
  }

  async takePendingConsent(id: string): Promise<PendingConsent | undefined> {
    return this.#take(`consent-req:${id}`);
  }

  async saveCode(codeHash: string, code: CodeRecord, ttlSeconds: number): Promise<void> {
    this.#set(`code:${codeHash}`, JSON.stringify(code), ttlSeconds);
  }

  async takeCode(codeHash: string, tombstoneTtlSeconds: number): Promise<TakeResult<CodeRecord>> {
    return this.#takeOnce(`code:${codeHash}`, `code-used:${codeHash}`, tombstoneTtlSeconds);
  }

  async saveRefreshToken(tokenHash: string, token: RefreshRecord, ttlSeconds: number): Promise<void> {
    this.#set(`rt:${tokenHash}`, JSON.stringify(token), ttlSeconds);
  }

  async takeRefreshToken(tokenHash: string, tombstoneTtlSeconds: number): Promise<TakeResult<RefreshRecord>> {
    return this.#takeOnce(`rt:${tokenHash}`, `rt-used:${tokenHash}`, tombstoneTtlSeconds);
  }

  async findRefreshToken(tokenHash: string): Promise<RefreshRecord | undefined> {
    return this.#getJson(`rt:${tokenHash}`) ?? this.#getJson(`rt-used:${tokenHash}`);
  }

  async addFamilyAccessToken(familyId: string, jti: string, expiresAt: number, ttlSeconds: number): Promise<boolean> {
    assertTtl(ttlSeconds);
    if (this.#get(`family-revoked:${familyId}`) !== undefined) return false;
    const key = `family-jtis:${familyId}`;
    const list = this.#getJson<[string, number][]>(key) ?? [];
    list.push([jti, expiresAt]);
    this.#set(key, JSON.stringify(list), ttlSeconds);
    return true;
  }

  async isFamilyRevoked(familyId: string): Promise<boolean> {
    return this.#get(`family-revoked:${familyId}`) !== undefined;
  }

  async revokeFamily(familyId: string, ttlSeconds: number, nowSeconds: number): Promise<void> {
    this.#set(`family-revoked:${familyId}`, '1', ttlSeconds);
    for (const [jti, exp] of this.#getJson<[string, number][]>(`family-jtis:${familyId}`) ?? []) {
      if (exp > nowSeconds) this.#set(`revoked:${jti}`, '1', exp - nowSeconds);
    }
  }

  async saveConsent(subject: string, clientId: string, consent: ConsentRecord, ttlSeconds: number): Promise<void> {
    this.#set(`consent:${JSON.stringify([subject, clientId])}`, JSON.stringify(consent), ttlSeconds);
  }

  async findConsent(subject: string, clientId: string): Promise<ConsentRecord | undefined> {
    return this.#getJson(`consent:${JSON.stringify([subject, clientId])}`);
  }

  async markJtiUsed(clientId: string, jti: string, ttlSeconds: number): Promise<boolean> {
    const key = `jti:${JSON.stringify([clientId, jti])}`;
    if (this.#get(key) !== undefined) return false;
    this.#set(key, '1', ttlSeconds);
    return true;
  }

  async revokeAccessToken(jti: string, ttlSeconds: number): Promise<void> {
    this.#set(`revoked:${jti}`, '1', ttlSeconds);
  }

  async isAccessTokenRevoked(jti: string): Promise<boolean> {
    return this.#get(`revoked:${jti}`) !== undefined;
  }

  async close(): Promise<void> {
    this.#entries.clear();
  }
}

function assertTtl(ttlSeconds: number): void {
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1)
    throw new TypeError(`ttl must be a positive integer number of seconds, got ${ttlSeconds}`);
}
