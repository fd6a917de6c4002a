/**
 * Who is calling, as the auth step established it (docs/architecture.md §3). Shared by every later step; the token
 * itself is not here — it never leaves edge/ and auth/.
 */
export interface Principal {
  readonly subject: string;
  readonly clientId?: string;
  readonly issuer?: string;
  readonly scopes: ReadonlySet<string>;
  readonly groups: readonly string[];
  /** RFC 8705 `x5t#S256` of the client certificate the request came with (base64url SHA-256 of the DER). */
  readonly certThumbprint?: string;
  /** The certificate's subject DN and subjectAltNames, for policy conditions. */
  readonly certSubject?: string;
  readonly certSans?: readonly string[];
  /** Claims of the token, for policy conditions on any claim. Never the token itself. */
  readonly claims?: Readonly<Record<string, unknown>>;
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
