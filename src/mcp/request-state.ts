/**
 * The `requestState` the gateway hands a 2026-07-28 client with an `InputRequiredResult` (basic/patterns/mrtr): sealed
 * (sealed-json.ts), because the client echoes it back and "servers MUST treat requestState as an
 * attacker-controlled input … MUST protect its integrity … and MUST reject state that fails verification" (MRTR
 * §requestState). It binds the retry to what the first round was: the principal, the upstream, the method and target,
 * a digest of the arguments, an expiry and the round (MRTR §Security: bind to the principal, a short TTL and the
 * originating request). It carries the upstream's own `requestState` byte for byte (the gateway is that upstream's
 * client and must not alter it), or the handle of a call parked on a 2025 upstream (input-required.ts).
 *
 * Keys: derived from `sessions.keys` under their own label (HKDF, RFC 5869), so every replica holding the session keys
 * opens every replica's state and no key serves two purposes; without them, a random key of this process.
 * Pure: the clock is the caller's.
 */
import { createHash, hkdfSync, randomBytes } from 'node:crypto';
import { canonicalJson } from '../audit/canonical-json.js';
import type { Principal } from '../identity/principal.js';
import type { JsonObject } from '../lib/json-rpc.js';
import { SEALED_KEY_BYTES, SealedJson, type UnsealFailure } from './sealed-json.js';
import { sameBinding, principalBinding } from './session-token.js';

/** How long a client has to answer an input request and retry. The spec leaves it to the server (MRTR §Security). */
export const REQUEST_STATE_TTL_MS = 10 * 60_000;
/** A state is a few hundred bytes plus the upstream's own; the body limit caps the rest. */
const MAX_STATE_CHARS = 256 * 1024;
const KID_LABEL = 'gatehouse requestState key id';
const HKDF_INFO = 'gatehouse mcp requestState v1';

/** What the first round was, to be matched by the retry. */
export interface StateBinding {
  readonly upstream: string;
  readonly method: string;
  /** The target as the client named it: the exposed tool or prompt name, or the resource URI. */
  readonly name: string;
  /** The tool's or prompt's arguments (absent for a resource read). */
  readonly args: JsonObject | undefined;
}

export interface RequestStateClaims {
  /** Rounds so far of this logical request (1 after the first `InputRequiredResult`). */
  readonly round: number;
  /** The upstream's own `requestState`, exactly as it sent it. */
  readonly inner?: string;
  /** A call parked on a 2025 upstream that asked the client something mid-call (parked-calls.ts). */
  readonly parked?: string;
  /**
   * The question was the gateway's own (a consent URL, steps/consent.ts), not the upstream's: the retry's answers
   * are not passed upstream.
   */
  readonly own?: boolean;
}

export type StateRefusal = UnsealFailure | 'expired' | 'wrong_principal' | 'wrong_request';
export type StateResult =
  { readonly ok: true; readonly claims: RequestStateClaims } | { readonly ok: false; readonly reason: StateRefusal };

export class RequestStateCodec {
  private readonly box: SealedJson;

  /** `keys` are the session keys (32 bytes each); the first seals. */
  constructor(keys: readonly Uint8Array[]) {
    const derived = keys.map(
      (k) => new Uint8Array(hkdfSync('sha256', k, new Uint8Array(0), HKDF_INFO, SEALED_KEY_BYTES)),
    );
    this.box = new SealedJson(derived, KID_LABEL, MAX_STATE_CHARS);
  }

  /** A random key for this process alone: states die with a restart and do not move between replicas. */
  static ephemeral(): RequestStateCodec {
    return new RequestStateCodec([new Uint8Array(randomBytes(SEALED_KEY_BYTES))]);
  }

  seal(principal: Principal, binding: StateBinding, claims: RequestStateClaims, now: number): Promise<string> {
    const payload: JsonObject = {
      pb: principalBinding(principal),
      u: binding.upstream,
      m: binding.method,
      n: binding.name,
      d: argsDigest(binding.args),
      exp: now + REQUEST_STATE_TTL_MS,
      r: claims.round,
    };
    if (claims.inner !== undefined) payload.i = claims.inner;
    if (claims.parked !== undefined) payload.p = claims.parked;
    if (claims.own === true) payload.g = true;
    return this.box.seal(payload);
  }

  /** Never throws: a state that is not ours, not current, or not this principal's and this request's is a reason. */
  async open(token: string, principal: Principal, binding: StateBinding, now: number): Promise<StateResult> {
    const opened = await this.box.open(token);
    if (!opened.ok) return { ok: false, reason: opened.reason };
    const { pb, u, m, n, d, exp, r, i, p, g } = opened.payload;
    if (
      typeof pb !== 'string' ||
      typeof u !== 'string' ||
      typeof m !== 'string' ||
      typeof n !== 'string' ||
      typeof d !== 'string' ||
      typeof exp !== 'number' ||
      !Number.isSafeInteger(r) ||
      (i !== undefined && typeof i !== 'string') ||
      (p !== undefined && typeof p !== 'string')
    )
      return { ok: false, reason: 'invalid_claims' };
    if (now >= exp) return { ok: false, reason: 'expired' };
    if (!sameBinding(pb, principal)) return { ok: false, reason: 'wrong_principal' };
    if (u !== binding.upstream || m !== binding.method || n !== binding.name || d !== argsDigest(binding.args))
      return { ok: false, reason: 'wrong_request' };
    const claims: { -readonly [K in keyof RequestStateClaims]: RequestStateClaims[K] } = { round: r as number };
    if (i !== undefined) claims.inner = i;
    if (p !== undefined) claims.parked = p;
    if (g === true) claims.own = true;
    return { ok: true, claims };
  }
}

/** The arguments as one short value: the same arguments in any member order give the same digest. */
function argsDigest(args: JsonObject | undefined): string {
  if (args === undefined) return '';
  return createHash('sha256').update(canonicalJson(args)).digest('base64url').slice(0, 22);
}
