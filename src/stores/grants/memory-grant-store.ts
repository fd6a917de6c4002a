/** The one-replica `GrantStore`: maps in this process, bounded (the oldest grant goes first), lost on restart. */
import type { GrantStore } from './grant-store.js';

export class MemoryGrantStore implements GrantStore {
  /** `upstream\0subjectKey` → bindingKey → sealed; insertion order is age (a put moves it to the end). */
  readonly #grants = new Map<string, Map<string, string>>();
  readonly #clients = new Map<string, string>();
  readonly #once = new Map<string, number>();
  #count = 0;

  constructor(
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  async get(upstream: string, subjectKey: string, bindingKey: string): Promise<string | undefined> {
    return this.#grants.get(`${upstream}\0${subjectKey}`)?.get(bindingKey);
  }

  async put(upstream: string, subjectKey: string, bindingKey: string, sealed: string): Promise<void> {
    const key = `${upstream}\0${subjectKey}`;
    const bucket = this.#grants.get(key) ?? new Map<string, string>();
    this.#grants.delete(key);
    if (!bucket.has(bindingKey)) this.#count++;
    bucket.set(bindingKey, sealed);
    this.#grants.set(key, bucket);
    while (this.#count > this.maxEntries) {
      const [oldest, b] = this.#grants.entries().next().value as [string, Map<string, string>];
      this.#count -= b.size;
      this.#grants.delete(oldest);
    }
  }

  async delete(upstream: string, subjectKey: string, bindingKey: string): Promise<boolean> {
    const bucket = this.#grants.get(`${upstream}\0${subjectKey}`);
    if (bucket === undefined || !bucket.delete(bindingKey)) return false;
    this.#count--;
    if (bucket.size === 0) this.#grants.delete(`${upstream}\0${subjectKey}`);
    return true;
  }

  async takeSubject(upstream: string, subjectKey: string): Promise<string[]> {
    const key = `${upstream}\0${subjectKey}`;
    const bucket = this.#grants.get(key);
    if (bucket === undefined) return [];
    this.#grants.delete(key);
    this.#count -= bucket.size;
    return [...bucket.values()];
  }

  async getClient(upstream: string): Promise<string | undefined> {
    return this.#clients.get(upstream);
  }

  async putClientOnce(upstream: string, sealed: string): Promise<string> {
    const kept = this.#clients.get(upstream);
    if (kept !== undefined) return kept;
    this.#clients.set(upstream, sealed);
    return sealed;
  }

  async deleteClient(upstream: string): Promise<void> {
    this.#clients.delete(upstream);
  }

  async useOnce(id: string, ttlSeconds: number): Promise<boolean> {
    const now = this.now();
    if (this.#once.size > 10_000) for (const [k, until] of this.#once) if (until <= now) this.#once.delete(k);
    const until = this.#once.get(id);
    if (until !== undefined && until > now) return false;
    this.#once.set(id, now + ttlSeconds * 1000);
    return true;
  }

  async close(): Promise<void> {
    this.#grants.clear();
  }
}
