/**
 * The port behind which the built-in authorization server keeps its shared state (docs/architecture.md §7): client
 * registrations, logins in flight, authorization codes, refresh-token families, consents, used assertion
 * `jti`s and revoked access-token `jti`s. Every entry has a time to live; nothing lives forever.
 *
 * Two implementations pass the same contract suite (`test/unit/as-store.test.ts`): `MemoryAsStore` (one
 * node, the default) and `RedisAsStore` (many replicas). Records are plain JSON: a store hands back copies,
 * never the object it was given.
 *
 * Codes and refresh tokens are keyed by a hash of the credential (the caller hashes), so a dump of the store
 * does not hand out working credentials.
 */

/** A client that registered itself (RFC 7591) or that a client ID metadata document describes. Public clients only. */
export interface StoredClient {
  readonly clientId: string;
  readonly clientName?: string;
  readonly redirectUris: readonly string[];
  readonly grantTypes: readonly string[];
  /** Space-separated scopes the client registered for; absent = any supported scope. */
  readonly scope?: string;
  readonly tokenEndpointAuthMethod: 'none';
  /** Epoch seconds. */
  readonly issuedAt: number;
  readonly source: 'registration' | 'metadata_document';
}

/** The part of an authorization request that survives the trip through the corporate IdP and the consent page. */
export interface AuthorizationRequestRecord {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly codeChallenge: string;
  /** The client's `state`, echoed back verbatim. */
  readonly state?: string;
  /** RFC 8707: the audience the tokens will carry. */
  readonly resource: string;
  /** Requested scopes (already checked against what is supported). */
  readonly scopes: readonly string[];
}

/** `/authorize` → IdP → `/authorize/callback`: keyed by the `state` we sent to the IdP. */
export interface PendingLogin {
  readonly request: AuthorizationRequestRecord;
  /** Our PKCE verifier and nonce towards the IdP. */
  readonly idpCodeVerifier: string;
  readonly idpNonce: string;
  /** SHA-256 of the browser-binding cookie value, when the issuer is https (see plugin.ts). */
  readonly browserBinding?: string;
  /** Epoch seconds. */
  readonly createdAt: number;
}

/** The user logged in; the consent page is waiting for a decision. Keyed by an opaque random id. */
export interface PendingConsent {
  readonly request: AuthorizationRequestRecord;
  readonly subject: string;
  /** Scopes that will be granted if the user approves (requested ∩ mapped from IdP claims). */
  readonly grantedScopes: readonly string[];
  readonly groups?: readonly string[];
  /** Random value carried only in the consent form body (never in a URL). */
  readonly csrf: string;
  readonly browserBinding?: string;
  readonly createdAt: number;
}

/** What a single-use authorization code stands for. */
export interface CodeRecord {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly codeChallenge: string;
  readonly resource: string;
  readonly scopes: readonly string[];
  readonly subject: string;
  readonly groups?: readonly string[];
  /** The token family the code's tokens will belong to: known before the code is redeemed, so reuse can revoke them. */
  readonly familyId: string;
  /** Epoch seconds. */
  readonly expiresAt: number;
}

/** One refresh token of a family (rotation: each use replaces it with the next one). */
export interface RefreshRecord {
  readonly familyId: string;
  readonly clientId: string;
  readonly subject: string;
  readonly scopes: readonly string[];
  readonly resource: string;
  readonly groups?: readonly string[];
  /** Epoch seconds. */
  readonly expiresAt: number;
}

/** A remembered approval of a client by a user. A different redirect URI means asking again. */
export interface ConsentRecord {
  readonly scopes: readonly string[];
  readonly redirectUri: string;
  /** Epoch seconds. */
  readonly grantedAt: number;
}

/**
 * Outcome of redeeming a single-use record. `used` means it existed and was redeemed before: the caller
 * treats it as an attack (RFC 9700 §4.14, §4.5) and revokes what the first redemption produced.
 */
export type TakeResult<T> =
  | { readonly state: 'fresh'; readonly record: T }
  | { readonly state: 'used'; readonly record: T }
  | { readonly state: 'missing' };

export interface AsStore {
  saveClient(client: StoredClient, ttlSeconds: number): Promise<void>;
  findClient(clientId: string): Promise<StoredClient | undefined>;

  savePendingLogin(id: string, login: PendingLogin, ttlSeconds: number): Promise<void>;
  /** Single use: the record is gone after this call. */
  takePendingLogin(id: string): Promise<PendingLogin | undefined>;

  savePendingConsent(id: string, consent: PendingConsent, ttlSeconds: number): Promise<void>;
  /** Read without consuming (the consent page may be reloaded). */
  findPendingConsent(id: string): Promise<PendingConsent | undefined>;
  takePendingConsent(id: string): Promise<PendingConsent | undefined>;

  saveCode(codeHash: string, code: CodeRecord, ttlSeconds: number): Promise<void>;
  /** Atomic: exactly one caller gets `fresh`; later callers get `used` for `tombstoneTtlSeconds`. */
  takeCode(codeHash: string, tombstoneTtlSeconds: number): Promise<TakeResult<CodeRecord>>;

  saveRefreshToken(tokenHash: string, token: RefreshRecord, ttlSeconds: number): Promise<void>;
  /** Atomic, as `takeCode`. */
  takeRefreshToken(tokenHash: string, tombstoneTtlSeconds: number): Promise<TakeResult<RefreshRecord>>;
  /** Reads without consuming (revocation needs to know the family). Finds used tokens too. */
  findRefreshToken(tokenHash: string): Promise<RefreshRecord | undefined>;

  /**
   * Records an access token issued in a family, unless the family is revoked (then returns false and records
   * nothing). Atomic with `revokeFamily`: either the revocation sees the token, or the issuance sees the revocation.
   */
  addFamilyAccessToken(familyId: string, jti: string, expiresAt: number, ttlSeconds: number): Promise<boolean>;
  isFamilyRevoked(familyId: string): Promise<boolean>;
  /** Marks the family revoked and every access token recorded in it revoked until its own expiry. */
  revokeFamily(familyId: string, ttlSeconds: number, nowSeconds: number): Promise<void>;

  saveConsent(subject: string, clientId: string, consent: ConsentRecord, ttlSeconds: number): Promise<void>;
  findConsent(subject: string, clientId: string): Promise<ConsentRecord | undefined>;

  /** RFC 7523 §3 `jti` replay check: true the first time a (client, jti) pair is seen within the TTL. */
  markJtiUsed(clientId: string, jti: string, ttlSeconds: number): Promise<boolean>;

  /** Access tokens revoked before their expiry (RFC 7009, code reuse, family revocation). */
  revokeAccessToken(jti: string, ttlSeconds: number): Promise<void>;
  isAccessTokenRevoked(jti: string): Promise<boolean>;

  close(): Promise<void>;
}

/** A store refused a write because it is full (memory) — the caller answers 503, never grows without bound. */
export class StoreFullError extends Error {
  constructor() {
    super('authorization server store is full');
    this.name = 'StoreFullError';
  }
}
