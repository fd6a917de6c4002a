/**
 * A JSON object sealed for the gateway's own eyes: JWE compact serialisation (RFC 7516 §7.1), `alg: dir` with
 * `enc: A256GCM` (RFC 7518 §4.5, §5.3), so nothing is wrapped and the token stays short. The header's `kid` names the
 * key (a fingerprint under a label, never a configured name): the first key seals, every key opens, so a key can be
 * rotated in while the previous one is still accepted. Session ids and 2026-07-28 `requestState` values are built on
 * it; each caller checks its own claims.
 *
 * Pure: no clock, no I/O.
 */
import { createHash } from 'node:crypto';
import { CompactEncrypt, compactDecrypt, decodeProtectedHeader } from 'jose';
import { isJsonObject, type JsonObject } from '../lib/json-rpc.js';

/** Key length of A256GCM (RFC 7518 §5.3). */
export const SEALED_KEY_BYTES = 32;

export type UnsealFailure = 'malformed' | 'unknown_key' | 'undecryptable' | 'invalid_claims';
export type UnsealResult =
  { readonly ok: true; readonly payload: JsonObject } | { readonly ok: false; readonly reason: UnsealFailure };

/** Compact JWE with `dir`: header . (empty key) . iv . ciphertext . tag, all base64url. */
const COMPACT_JWE = /^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const DECRYPT_OPTIONS = { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] };
/**
 * The exact protected header we issue. Anything else — `zip` (a decompression step after decryption, RFC 7516
 * §4.1.3), `crit`, `epk`, `p2c`, … — is refused before any crypto, so no header parameter of the sender's choosing
 * ever steers how a token is processed, even one sealed with a leaked key.
 */
const HEADER_KEYS = ['alg', 'enc', 'kid'] as const;

/** A key's `kid`: a fingerprint under its use's label, so it says nothing about the key and needs no configuring. */
export function sealedKeyId(label: string, key: Uint8Array): string {
  return createHash('sha256').update(label).update('\0').update(key).digest('base64url').slice(0, 11);
}

export class SealedJson {
  private readonly sealKey: Uint8Array;
  private readonly sealKid: string;
  private readonly byKid: ReadonlyMap<string, Uint8Array>;

  /**
   * `keys[0]` seals; all open. `kidLabel` keeps the fingerprints of one use apart from another's. Throws on an empty
   * list or a key of the wrong length.
   */
  constructor(
    keys: readonly Uint8Array[],
    kidLabel: string,
    /** The longest token opened: far above what is issued, far below a header or body limit. */
    private readonly maxChars: number,
  ) {
    if (keys.length === 0) throw new TypeError('SealedJson needs at least one key');
    for (const k of keys)
      if (k.length !== SEALED_KEY_BYTES) throw new TypeError(`sealing keys are ${SEALED_KEY_BYTES} bytes`);
    this.sealKey = keys[0]!;
    this.sealKid = sealedKeyId(kidLabel, this.sealKey);
    this.byKid = new Map(keys.map((k) => [sealedKeyId(kidLabel, k), k]));
  }

  get kid(): string {
    return this.sealKid;
  }

  seal(payload: JsonObject): Promise<string> {
    return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: this.sealKid })
      .encrypt(this.sealKey);
  }

  /** Never throws: anything that is not a token of ours holding a JSON object is a reason. */
  async open(token: string): Promise<UnsealResult> {
    if (token.length > this.maxChars || !COMPACT_JWE.test(token)) return fail('malformed');
    let kid: unknown;
    try {
      const header = decodeProtectedHeader(token);
      if (header.alg !== 'dir' || header.enc !== 'A256GCM') return fail('malformed');
      if (Object.keys(header).some((k) => !(HEADER_KEYS as readonly string[]).includes(k))) return fail('malformed');
      kid = header.kid;
    } catch {
      return fail('malformed');
    }
    const key = typeof kid === 'string' ? this.byKid.get(kid) : undefined;
    if (key === undefined) return fail('unknown_key');
    let plaintext: Uint8Array;
    try {
      // GCM's tag authenticates the header too (it is the AAD, RFC 7516 §5.1 step 14): a changed kid fails here.
      plaintext = (await compactDecrypt(token, key, DECRYPT_OPTIONS)).plaintext;
    } catch {
      return fail('undecryptable');
    }
    let p: unknown;
    try {
      p = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext));
    } catch {
      return fail('invalid_claims');
    }
    return isJsonObject(p) ? { ok: true, payload: p } : fail('invalid_claims');
  }
}

function fail(reason: UnsealFailure): UnsealResult {
  return { ok: false, reason };
}
