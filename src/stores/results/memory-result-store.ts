/**
 * The one-node `ResultStore`: a Map in insertion order used as an LRU (a hit moves the entry to the end), bounded by
 * entries and by bytes (UTF-16 length × 2 of key and value), expired lazily. Claims and remembered writes live in the
 * same bounds but are evicted only when no cached read is left to evict.
 */
import { randomUUID } from 'node:crypto';
import type { Claim, ResultStore } from './result-store.js';

interface Entry {
  value: string;
  expires: number;
  bytes: number;
}

export interface MemoryResultStoreOptions {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly now?: () => number;
}

type Held =
  { state: 'pending'; fingerprint: string; token: string } | { state: 'done'; fingerprint: string; result: string };

export class MemoryResultStore implements ResultStore {
  private readonly entries = new Map<string, Entry>();
  private readonly gens = new Map<string, number>();
  private bytes = 0;
  private readonly now: () => number;

  constructor(private readonly options: MemoryResultStoreOptions) {
    this.now = options.now ?? Date.now;
  }

  generations(keys: readonly string[]): Promise<string> {
    return Promise.resolve(keys.map((k) => this.gens.get(k) ?? 0).join('.'));
  }

  bump(key: string): Promise<void> {
    this.gens.set(key, (this.gens.get(key) ?? 0) + 1);
    return Promise.resolve();
  }

  get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.read(key));
  }

  set(key: string, value: string, ttlMs: number): Promise<void> {
    this.write(key, value, ttlMs);
    return Promise.resolve();
  }

  claim(key: string, fingerprint: string, pendingMs: number): Promise<Claim> {
    const held = this.read(key);
    if (held !== undefined) {
      const h = JSON.parse(held) as Held;
      return Promise.resolve(
        h.state === 'done'
          ? { state: 'done', fingerprint: h.fingerprint, result: h.result }
          : { state: 'pending', fingerprint: h.fingerprint },
      );
    }
    const token = randomUUID();
    this.write(key, JSON.stringify({ state: 'pending', fingerprint, token } satisfies Held), pendingMs);
    return Promise.resolve({ state: 'claimed', token });
  }

  complete(key: string, token: string, fingerprint: string, result: string, ttlMs: number): Promise<void> {
    if (this.holds(key, token))
      this.write(key, JSON.stringify({ state: 'done', fingerprint, result } satisfies Held), ttlMs);
    return Promise.resolve();
  }

  release(key: string, token: string): Promise<void> {
    if (this.holds(key, token)) this.remove(key);
    return Promise.resolve();
  }

  clearLocal(): void {
    // Claims and remembered writes survive a policy reload: only cached reads are dropped (their keys start with c:).
    for (const key of [...this.entries.keys()]) if (key.startsWith('c:')) this.remove(key);
  }

  close(): Promise<void> {
    this.entries.clear();
    this.bytes = 0;
    return Promise.resolve();
  }

  /** For tests and /readyz-style reporting. */
  get size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }

  private holds(key: string, token: string): boolean {
    const held = this.read(key);
    if (held === undefined) return false;
    const h = JSON.parse(held) as Held;
    return h.state === 'pending' && h.token === token;
  }

  private read(key: string): string | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (e.expires <= this.now()) {
      this.remove(key);
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  private write(key: string, value: string, ttlMs: number): void {
    this.remove(key);
    const bytes = (key.length + value.length) * 2;
    if (bytes > this.options.maxBytes) return;
    this.entries.set(key, { value, expires: this.now() + ttlMs, bytes });
    this.bytes += bytes;
    // Evict the least recently used until both bounds hold: cached reads first, so that a flood of distinct reads
    // cannot push out an idempotency claim (a concurrent duplicate would then forward) while a read is left to go.
    for (const pass of ['c:', '']) {
      for (const [k] of this.entries) {
        if (this.entries.size <= this.options.maxEntries && this.bytes <= this.options.maxBytes) return;
        if (k.startsWith(pass)) this.remove(k);
      }
    }
  }

  private remove(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    this.entries.delete(key);
    this.bytes -= e.bytes;
  }
}
