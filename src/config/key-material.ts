/** Files and secrets holding keys: TLS certificates and keys, JWKS files, the built-in AS's signing JWKs. */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type JsonWebKey } from 'node:crypto';
import fs from 'node:fs';
import { withUnit } from '../lib/value-words.js';
import { fileExposure } from './file-exposure.js';
import { isRecord, report, type LoadContext } from './load-context.js';
import { describeFsError } from './secrets.js';
import type { SecretValue } from './types.js';

/** Reads a file that must exist; reports why not. Never quotes the content. */
function readSmallFile(file: string, maxBytes: number, pointer: string, ctx: LoadContext): string | undefined {
  try {
    const stat = fs.statSync(file);
    if (stat.isDirectory()) {
      report(ctx, pointer, `${file} is a folder, not a file`);
      return undefined;
    }
    if (stat.size > maxBytes) {
      report(ctx, pointer, `file ${file} is larger than ${withUnit('Bytes', maxBytes)}`);
      return undefined;
    }
    // Certificates, CAs and JWKS are trust anchors: whoever may change them chooses whom the gateway trusts.
    for (const message of fileExposure(file, 'file')) report(ctx, pointer, message);
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const why = describeFsError(err);
    report(
      ctx,
      pointer,
      why === 'no such file' ? `file ${file} does not exist` : `file ${file} cannot be read (${why})`,
    );
    return undefined;
  }
}

/** Certificate and CA bundles (public, but a whole CA store is large). */
const MAX_PEM_FILE_BYTES = 4 * 1024 * 1024;

/** A PEM file that must exist and hold at least one certificate, and no private key (keys go in `tls.key`). */
export function checkPemFile(file: string, pointer: string, what: string, ctx: LoadContext): void {
  const text = readSmallFile(file, MAX_PEM_FILE_BYTES, pointer, ctx);
  if (text === undefined) return;
  if (!text.includes('-----BEGIN CERTIFICATE-----'))
    report(ctx, pointer, `file ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----); expected ${what}`);
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    report(
      ctx,
      pointer,
      `file ${file} also holds a private key; keep the key in a file of its own and reference it from tls.key`,
    );
  }
}

/** The TLS key: an unencrypted PEM private key Node can load. Messages name the source, never the content. */
export function checkPrivateKey(key: SecretValue, pointer: string, ctx: LoadContext): void {
  const pem = key.reveal();
  const at = `${pointer}/${key.source.startsWith('env:') ? 'fromEnv' : 'fromFile'}`;
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/.test(pem)) {
    report(
      ctx,
      at,
      `the secret from ${key.source} is an encrypted private key; Gatehouse needs it unencrypted (protect the file's permissions instead)`,
    );
    return;
  }
  try {
    createPrivateKey(pem);
  } catch {
    // A variable holding `\n` escapes instead of line breaks is the usual way a PEM key from the environment breaks.
    const hint =
      key.source.startsWith('env:') && pem.includes('\\n')
        ? ' (it holds "\\n" escapes; the variable needs real line breaks)'
        : '';
    report(ctx, at, `the secret from ${key.source} is not a PEM private key (-----BEGIN PRIVATE KEY-----)${hint}`);
  }
}

const MAX_JWKS_FILE_BYTES = 1024 * 1024;

/** A local JWKS: JSON `{ "keys": [...] }` with public keys only. */
export function checkJwksFile(file: string, pointer: string, ctx: LoadContext): void {
  const text = readSmallFile(file, MAX_JWKS_FILE_BYTES, pointer, ctx);
  if (text === undefined) return;
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch {
    report(ctx, pointer, `file ${file} is not valid JSON`);
    return;
  }
  const keys = isRecord(jwks) ? jwks.keys : undefined;
  if (!Array.isArray(keys) || !keys.every(isRecord)) {
    report(ctx, pointer, `file ${file} is not a JWKS (a JSON object with a "keys" list of JWKs)`);
    return;
  }
  if (keys.length === 0) report(ctx, pointer, `file ${file} has an empty "keys" list`);
  // "d": an RSA/EC/OKP private key; "k": a symmetric key. Neither belongs in a verifier's key set.
  if (keys.some((k) => 'd' in k || 'k' in k)) {
    report(
      ctx,
      pointer,
      `file ${file} holds private or symmetric key material ("d" or "k" members); it must hold public keys only`,
    );
  }
}

/**
 * A signing key: a private JWK the built-in AS can sign with — EC P-256 (ES256) or RSA ≥ 2048 bits (RS256,
 * PS256), the same rules as src/auth/as/keys.ts. Returns its key id (`kid`, else the RFC 7638 thumbprint).
 * Messages name the secret's source, never any of its content.
 */
export function checkSigningJwk(key: SecretValue, pointer: string, ctx: LoadContext): string | undefined {
  const at = `${pointer}/${key.source.startsWith('env:') ? 'fromEnv' : 'fromFile'}`;
  const bad = (why: string): undefined => {
    report(ctx, at, `the secret from ${key.source} ${why}`);
    return undefined;
  };
  let jwk: unknown;
  try {
    jwk = JSON.parse(key.reveal());
  } catch {
    const hint = /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.reveal())
      ? ' (it holds a PEM key; convert it to a JWK)'
      : '';
    return bad(`is not a JSON Web Key (a JSON object)${hint}`);
  }
  if (!isRecord(jwk) || typeof jwk.kty !== 'string') return bad('is not a JSON Web Key (a JSON object with "kty")');
  if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || jwk.kid === ''))
    return bad('has a "kid" that is not a non-empty string');
  if (jwk.kty === 'EC') {
    if (jwk.crv !== 'P-256')
      return bad('is an EC key on another curve than P-256 (ES256 is the only EC algorithm supported)');
    if (jwk.alg !== undefined && jwk.alg !== 'ES256') return bad('names an "alg" other than ES256 for a P-256 key');
  } else if (jwk.kty === 'RSA') {
    if (typeof jwk.n !== 'string' || Buffer.from(jwk.n, 'base64url').length * 8 < 2048)
      return bad('is an RSA key shorter than 2048 bits');
    if (jwk.alg !== undefined && jwk.alg !== 'RS256' && jwk.alg !== 'PS256')
      return bad('names an "alg" other than RS256 or PS256 for an RSA key');
  } else {
    return bad('is not an EC P-256 or RSA key (the only kinds the built-in authorization server signs with)');
  }
  if (typeof jwk.d !== 'string') return bad('is a public key; the signing key must be the private JWK (with "d")');
  // The public members of the JWK are what /jwks publishes (keys.ts): a "d" that does not belong to them would sign
  // tokens nobody can verify. Node imports such a pair without complaint, so sign once and verify with the public half.
  const publicMembers =
    jwk.kty === 'EC' ? { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } : { kty: jwk.kty, n: jwk.n, e: jwk.e };
  let matches: boolean;
  try {
    const probe = Buffer.from('gatehouse signing key check');
    const signature = sign('sha256', probe, createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' }));
    matches = verify('sha256', probe, createPublicKey({ key: publicMembers as JsonWebKey, format: 'jwk' }), signature);
  } catch {
    return bad('is not a valid private key');
  }
  if (!matches) return bad('is not a valid private key (its private and public members do not belong together)');
  if (typeof jwk.kid === 'string') return jwk.kid;
  // RFC 7638: SHA-256 over the required public members in lexicographic order, as keys.ts computes the default kid.
  const members =
    jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { e: jwk.e, kty: jwk.kty, n: jwk.n };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}
