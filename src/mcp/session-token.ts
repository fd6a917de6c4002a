/**
 * The `Mcp-Session-Id` as an encrypted, authenticated token (docs/architecture.md §7): any replica holding the session
 * keys can rebuild the session from the id alone. JWE compact serialisation (RFC 7516 §7.1), `alg: dir` with
 * `enc: A256GCM` (RFC 7518 §4.5, §5.3): no wrapped key, so the id stays short — it rides on every request.
 * The header's `kid` names the key (a fingerprint, not a configured name): the first key encrypts, every key
 * decrypts, so a key can be rotated in while the previous one is still accepted.
 *
 * Pure: no clock of its own (callers pass `now`), no I/O; the revocation and idle checks live in the store.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isJsonObject, type JsonObject } from '../lib/json-rpc.js';
import { SEALED_KEY_BYTES, SealedJson, sealedKeyId } from './sealed-json.js';
import { principalKey, type Principal } from '../identity/principal.js';

/** What a session id carries. Times are epoch milliseconds here, seconds on the wire (RFC 7519 NumericDate). */
export interface SessionClaims {
  /** The session's own random id (internal key, audit, revocation); never an identity. */
  readonly jti: string;
  /** `principalBinding(principal)`: who may use the session, as a hash. */
  readonly binding: string;
  readonly protocolVersion: string;
  readonly capabilities: JsonObject;
  readonly clientInfo: JsonObject;
  readonly issuedAt: number;
  /** Absolute end of the session (`sessions.maxLifetimeMs` after `issuedAt`). */
  readonly expiresAt: number;
}

export type OpenFailure = 'malformed' | 'unknown_key' | 'undecryptable' | 'invalid_claims' | 'expired';
export type OpenResult =
  { readonly ok: true; readonly claims: SessionClaims } | { readonly ok: false; readonly reason: OpenFailure };

/**
 * How far ahead of this replica's clock a session id's `iat` may be: another replica's clock may run a little
 * fast. Beyond it the id is refused (RFC 7519 §4.1.6: nothing is issued in the future): the lifetime check counts
 * from `iat`, so an id dated ahead would live past `sessions.maxLifetimeMs` from now.
 */
export const SESSION_CLOCK_TOLERANCE_MS = 60_000;

/** Key length of A256GCM (RFC 7518 §5.3). */
export const SESSION_KEY_BYTES = SEALED_KEY_BYTES;
/** The longest id we try to open: far above what we issue (~0.4 KB), far below a header limit. */
const MAX_TOKEN_CHARS = 4096;
const KID_LABEL = 'gatehouse session key id';

/** A key's `kid`: a fingerprint under its own label, so it says nothing about the key and needs no configuring. */
export function keyId(key: Uint8Array): string {
  return sealedKeyId(KID_LABEL, key);
}

/**
 * Who may use a session: a hash of issuer, subject, client and certificate (`principalKey`, threat model #6).
 * Hashed so that even a decrypted token names nobody; 128 bits, inside an authenticated token, is plenty.
 */
export function principalBinding(p: Principal): string {
  return createHash('sha256')
    .update('gatehouse session principal\0')
    .update(principalKey(p))
    .digest('base64url')
    .slice(0, 22);
}

/** Whether a token's binding is this principal's, in constant time (no timing hint of how much of the hash matched). */
export function sameBinding(binding: string, principal: Principal): boolean {
  const expected = Buffer.from(principalBinding(principal));
  const got = Buffer.from(binding);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

export function newSessionJti(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * Keys that may change while the gateway runs (`sessions.keys` from files that rotate: src/config/secret-rotation.ts).
 * `stamp` is cheap (the keys' generations); `keys` is asked only when the stamp moved.
 */
export interface LiveSessionKeys {
  stamp(): string;
  keys(): readonly Uint8Array[];
}

export class SessionTokenCodec {
  private box: SealedJson;
  private stamp: string | undefined;

  /**
   * `keys[0]` encrypts; all decrypt. Throws on an empty list or a key of the wrong length. Live keys are looked at
   * on every seal and open: when they moved, the new first key seals from then on, and ids sealed with a key no
   * longer listed stop opening (`unknown_key`). A seal already started finishes with the key it began with.
   */
  constructor(private readonly source: readonly Uint8Array[] | LiveSessionKeys) {
    this.stamp = 'stamp' in source ? source.stamp() : undefined;
    this.box = SessionTokenCodec.boxOf('stamp' in source ? source.keys() : source);
  }

  private static boxOf(keys: readonly Uint8Array[]): SealedJson {
    if (keys.length === 0) throw new TypeError('SessionTokenCodec needs at least one key');
    for (const k of keys)
      if (k.length !== SESSION_KEY_BYTES) throw new TypeError(`session keys are ${SESSION_KEY_BYTES} bytes`);
    return new SealedJson(keys, KID_LABEL, MAX_TOKEN_CHARS);
  }

  /** The box of the current keys (rebuilt when live keys moved; a bad new set keeps the old: the watcher checked it). */
  private current(): SealedJson {
    const src = this.source;
    if ('stamp' in src) {
      const stamp = src.stamp();
      if (stamp !== this.stamp) {
        this.stamp = stamp;
        try {
          this.box = SessionTokenCodec.boxOf(src.keys());
        } catch {
          // Keep serving with the previous keys; the rotation watcher refuses a bad key before it gets here.
        }
      }
    }
    return this.box;
  }

  /** One random key for this process alone (no `sessions.keys`): ids die with the process. */
  static ephemeral(): SessionTokenCodec {
    return new SessionTokenCodec([new Uint8Array(randomBytes(SESSION_KEY_BYTES))]);
  }

  get kid(): string {
    return this.current().kid;
  }

  seal(claims: SessionClaims): Promise<string> {
    return this.current().seal({
      jti: claims.jti,
      pb: claims.binding,
      v: claims.protocolVersion,
      cap: claims.capabilities,
      ci: claims.clientInfo,
      iat: Math.floor(claims.issuedAt / 1000),
      exp: Math.ceil(claims.expiresAt / 1000),
    });
  }

  /** Never throws: anything that is not a valid, current token of ours is a reason (the caller answers 404). */
  async open(token: string, now: number): Promise<OpenResult> {
    const opened = await this.current().open(token);
    if (!opened.ok) return fail(opened.reason);
    const claims = parseClaims(opened.payload);
    if (claims === undefined) return fail('invalid_claims');
    if (now >= claims.expiresAt) return fail('expired');
    if (claims.issuedAt > now + SESSION_CLOCK_TOLERANCE_MS) return fail('invalid_claims');
    return { ok: true, claims };
  }
}

function fail(reason: OpenFailure): OpenResult {
  return { ok: false, reason };
}

function parseClaims(p: JsonObject): SessionClaims | undefined {
  const { jti, pb, v, cap, ci, iat, exp } = p;
  if (
    typeof jti !== 'string' ||
    typeof pb !== 'string' ||
    typeof v !== 'string' ||
    !isJsonObject(cap) ||
    !isJsonObject(ci)
  )
    return undefined;
  if (!Number.isSafeInteger(iat) || !Number.isSafeInteger(exp)) return undefined;
  return {
    jti,
    binding: pb,
    protocolVersion: v,
    capabilities: cap,
    clientInfo: ci,
    issuedAt: (iat as number) * 1000,
    expiresAt: (exp as number) * 1000,
  };
}
