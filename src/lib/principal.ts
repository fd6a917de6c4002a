/**
 * Who is calling, as the auth step established it (DESIGN.md §3). Shared by every later step; the token
 * itself is not here — it never leaves edge/ and auth/.
 */
export interface Principal {
  readonly subject: string;
  readonly clientId?: string;
  readonly issuer?: string;
  readonly scopes: ReadonlySet<string>;
  readonly groups: readonly string[];
  readonly certThumbprint?: string;
  /** Epoch milliseconds. */
  readonly expiresAt?: number;
  readonly tokenId?: string;
  /** True only for the unauthenticated loopback development mode. */
  readonly anonymous: boolean;
}

/** Two requests belong to the same principal when subject, client and certificate agree (threat model #6). */
export function principalKey(p: Principal): string {
  let key = keys.get(p);
  if (key === undefined) {
    key = JSON.stringify([p.issuer ?? '', p.subject, p.clientId ?? '', p.certThumbprint ?? '']);
    keys.set(p, key);
  }
  return key;
}

/** Principals are immutable, so the key is computed once per principal object. */
const keys = new WeakMap<Principal, string>();
