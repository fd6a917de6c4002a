/**
 * The result-cache and idempotency port (docs/policy.md "Result cache", "Idempotent writes"; the pipeline's cache and
 * idempotency steps). Keys are built by the caller from hashes only: never a raw subject, tool argument or token.
 * Values are serialised results. Implementations: memory (one node, bounded, LRU) and Redis (shared by replicas).
 */

/** What `claim` found under an idempotency key. */
export type Claim =
  | { readonly state: 'claimed'; readonly token: string }
  | { readonly state: 'pending'; readonly fingerprint: string }
  | { readonly state: 'done'; readonly fingerprint: string; readonly result: string };

export interface ResultStore {
  /**
   * The generations of `keys` (0 for a key never bumped), joined: a cache key built with them changes when any is
   * bumped, so an invalidation drops entries on every replica without finding them.
   */
  generations(keys: readonly string[]): Promise<string>;
  /** Drop everything built on this generation key (upstream list_changed, a write's `invalidates`). */
  bump(key: string): Promise<void>;
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /**
   * Atomic: take the key for the caller (`claimed`, with a token for `complete`/`release`) for `pendingMs`, or say
   * what holds it. Two replicas never both get `claimed` for one key.
   */
  claim(key: string, fingerprint: string, pendingMs: number): Promise<Claim>;
  /** The claimed call succeeded: remember its result for `ttlMs` (only if the claim is still the caller's). */
  complete(key: string, token: string, fingerprint: string, result: string, ttlMs: number): Promise<void>;
  /** The claimed call failed: free the key so that a retry can go (only if the claim is still the caller's). */
  release(key: string, token: string): Promise<void>;
  /** Drop every cached result this process holds (a policy reload; Redis entries stop matching by revision). */
  clearLocal(): void;
  close(): Promise<void>;
}
