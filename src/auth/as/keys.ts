/**
 * The authorization server's signing keys: private JWKs from secret references. The first key signs; all
 * are published at `/jwks`, so a new key can be published before it signs and an old one kept until the
 * last token it signed has expired (rotation).
 */
import { calculateJwkThumbprint, importJWK, type CryptoKey, type JWK } from 'jose';
import type { SecretValue } from '../../config/types.js';

export type SigningAlg = 'ES256' | 'RS256' | 'PS256';

export interface SigningKey {
  readonly kid: string;
  readonly alg: SigningAlg;
  readonly privateKey: CryptoKey;
  readonly publicJwk: Readonly<JWK>;
}

export interface SigningKeys {
  /** The key that signs new tokens. */
  readonly active: SigningKey;
  readonly all: readonly SigningKey[];
  /** `{ keys: [...] }` — public members only. */
  readonly jwks: { readonly keys: readonly Readonly<JWK>[] };
}

/** Misuse: thrown at start-up, never at request time. Names the secret's source, never its content. */
export class SigningKeyError extends TypeError {
  constructor(source: string, message: string) {
    super(`signing key ${source}: ${message}`);
    this.name = 'SigningKeyError';
  }
}

export async function loadSigningKeys(secrets: readonly SecretValue[]): Promise<SigningKeys> {
  if (secrets.length === 0) throw new TypeError('the built-in authorization server needs at least one signing key');
  const all: SigningKey[] = [];
  for (const secret of secrets) {
    const key = await loadOne(secret);
    if (all.some((k) => k.kid === key.kid)) throw new SigningKeyError(secret.source, `duplicate kid "${key.kid}"`);
    all.push(key);
  }
  return Object.freeze({
    active: all[0]!,
    all: Object.freeze(all),
    jwks: Object.freeze({ keys: Object.freeze(all.map((k) => k.publicJwk)) }),
  });
}

async function loadOne(secret: SecretValue): Promise<SigningKey> {
  let jwk: JWK;
  try {
    jwk = JSON.parse(secret.reveal()) as JWK;
  } catch {
    throw new SigningKeyError(secret.source, 'is not a JSON Web Key');
  }
  if (typeof jwk !== 'object' || jwk === null || typeof jwk.d !== 'string')
    throw new SigningKeyError(secret.source, 'must be a private JWK (with "d")');
  const alg = algorithmFor(jwk, secret.source);
  let privateKey: CryptoKey;
  try {
    privateKey = (await importJWK({ ...jwk, alg }, alg)) as CryptoKey;
  } catch {
    throw new SigningKeyError(secret.source, `cannot be imported as an ${alg} key`);
  }
  const publicJwk = publicPart(jwk);
  const kid =
    typeof jwk.kid === 'string' && jwk.kid !== '' ? jwk.kid : await calculateJwkThumbprint(publicJwk, 'sha256');
  return Object.freeze({ kid, alg, privateKey, publicJwk: Object.freeze({ ...publicJwk, kid, alg, use: 'sig' }) });
}

function algorithmFor(jwk: JWK, source: string): SigningAlg {
  if (jwk.kty === 'EC') {
    if (jwk.crv !== 'P-256') throw new SigningKeyError(source, 'EC keys must use the P-256 curve (ES256)');
    if (jwk.alg !== undefined && jwk.alg !== 'ES256')
      throw new SigningKeyError(source, `alg "${jwk.alg}" does not fit a P-256 key`);
    return 'ES256';
  }
  if (jwk.kty === 'RSA') {
    const bits = Buffer.from(jwk.n ?? '', 'base64url').length * 8;
    if (bits < 2048) throw new SigningKeyError(source, 'RSA keys must have at least 2048 bits');
    if (jwk.alg === undefined || jwk.alg === 'RS256') return 'RS256';
    if (jwk.alg === 'PS256') return 'PS256';
    throw new SigningKeyError(source, `alg "${jwk.alg}" is not allowed (RS256 or PS256)`);
  }
  throw new SigningKeyError(source, 'only EC P-256 and RSA keys are supported');
}

/** The public members of an EC or RSA JWK; everything else (d, p, q, dp, dq, qi, oth, k) stays private. */
function publicPart(jwk: JWK): JWK {
  if (jwk.kty === 'EC') return { kty: 'EC', crv: jwk.crv!, x: jwk.x!, y: jwk.y! };
  return { kty: 'RSA', n: jwk.n!, e: jwk.e! };
}
