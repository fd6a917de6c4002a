/**
 * The port of per-user upstream grants (per-user OAuth, src/outbound/user-oauth/; docs/architecture.md §7). Values
 * are opaque sealed text (the provider seals and opens them, AEAD with key ids: the store never holds a token in the
 * clear) and keys are hashes the provider computes: `subjectKey` (the user, so an operator can revoke by subject) and
 * `bindingKey` (the full principal binding: issuer, subject, client, certificate), so a store dump names nobody.
 * Memory and Redis implementations beside it pass one contract suite (test/unit/grant-store-contract.ts).
 */
export interface GrantStore {
  /** The sealed grant of one principal at one upstream. */
  get(upstream: string, subjectKey: string, bindingKey: string): Promise<string | undefined>;
  /** Stores (or replaces) it; the subject's grants at this upstream live at least `ttlSeconds` from now. */
  put(upstream: string, subjectKey: string, bindingKey: string, sealed: string, ttlSeconds: number): Promise<void>;
  /** Removes one grant; whether there was one. */
  delete(upstream: string, subjectKey: string, bindingKey: string): Promise<boolean>;
  /** Removes every grant of a subject at an upstream (an operator's revocation) and returns them, for RFC 7009. */
  takeSubject(upstream: string, subjectKey: string): Promise<string[]>;
  /** The sealed client registration of an upstream (dynamic registration happens once per upstream). */
  getClient(upstream: string): Promise<string | undefined>;
  /** Keeps the first registration written (replicas racing to register agree on one); returns the one kept. */
  putClientOnce(upstream: string, sealed: string): Promise<string>;
  /** Forgets a registration the authorization server no longer knows. */
  deleteClient(upstream: string): Promise<void>;
  /** True the first time `id` is used within `ttlSeconds`, on every replica: one-time nonces of the consent flow. */
  useOnce(id: string, ttlSeconds: number): Promise<boolean>;
  close(): Promise<void>;
}
