/**
 * `auth.mode: dev` (docs/architecture.md §6): one local ES256 signing key, created on first use and kept in a 0600
 * file, that `gatehouse token` mints access tokens with and the gateway verifies them against. For the bundled example
 * and tests only — the config loader allows dev mode on a loopback host only.
 *
 * The key file is `{kid, privateJwk, createdAt}` (JSON). It is refused when group- or world-accessible, like an
 * SSH private key.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  SignJWT,
  type JSONWebKeySet,
  type JWK,
} from 'jose';

export const DEV_ALG = 'ES256';
/** Used when `mint` gets no `ttlSeconds`. */
export const DEV_TOKEN_DEFAULT_TTL_SECONDS = 600;
/** Dev tokens live at most a day. */
export const DEV_TOKEN_MAX_TTL_SECONDS = 24 * 60 * 60;
/** The client id a dev token carries when none is given (RFC 9068 requires `client_id`). */
export const DEV_DEFAULT_CLIENT_ID = 'gatehouse-dev';
/** A key file is a few hundred bytes; anything much bigger is not ours. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

export interface MintOptions {
  sub: string;
  scopes: readonly string[];
  /** Default `gatehouse-dev`. */
  clientId?: string;
  /** Default 600; 1..86400. */
  ttlSeconds?: number;
  /** `auth.resource` of the gateway the token is for. */
  audience: string;
  /** `auth.dev.issuer`. */
  issuer: string;
  /** Where the scopes and the client id go. Default `scope` and `client_id` (RFC 9068); follow `auth.claims`. */
  claimNames?: { scope?: string; clientId?: string };
  /** More claims (e.g. `groups`, `cnf`). The registered claims above always win over these. */
  extra?: Record<string, unknown>;
  /** Epoch milliseconds; tests mint tokens in the past. Default `Date.now()`. */
  now?: number;
}

export interface DevKey {
  /** RFC 7638 JWK thumbprint (SHA-256) of the public key. */
  readonly kid: string;
  /** Absolute path of the key file. */
  readonly file: string;
  /** When the key was generated (ISO 8601). */
  readonly createdAt: string;
  /** True when this call generated the key (the file did not exist). */
  readonly created: boolean;
  /** The public key only, as a JWKS with `kid`, `alg: ES256`, `use: sig`. A fresh copy on every call. */
  publicJwks(): JSONWebKeySet;
  /** An RFC 9068 access token (`typ: at+jwt`) signed with this key. */
  mint(opts: MintOptions): Promise<string>;
}

interface KeyFileContents {
  kid: string;
  privateJwk: JWK;
  createdAt: string;
}

/** Loads the dev signing key from `keyFile`, generating it (and its folder, 0700) if the file does not exist. */
export async function loadOrCreateDevKey(keyFile: string): Promise<DevKey> {
  const existing = await readKeyFile(keyFile);
  if (existing) return makeDevKey(keyFile, existing, false);
  const created = await createKeyFile(keyFile);
  // Another process (`gatehouse token` while `gatehouse start` boots) may have won the race: use its key.
  if (created) return makeDevKey(keyFile, created, true);
  const raced = await readKeyFile(keyFile);
  if (!raced) throw new Error(`dev signing key ${keyFile}: could not be created or read`);
  return makeDevKey(keyFile, raced, false);
}

/** `600`, `600s`, `10m`, `2h`, `1d` → seconds. Throws on anything else or outside 1..86400. */
export function parseTtl(text: string): number {
  const m = /^\s*(\d+)\s*([smhd]?)\s*$/.exec(text);
  if (!m) throw new Error(`invalid ttl "${text}": use seconds (600) or a number with s, m, h or d (10m, 2h)`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  const seconds = Number(m[1]) * unit;
  checkTtl(seconds);
  return seconds;
}

function checkTtl(seconds: number): void {
  if (!Number.isSafeInteger(seconds) || seconds < 1)
    throw new RangeError(`ttl must be a whole number of seconds ≥ 1 (got ${seconds})`);
  if (seconds > DEV_TOKEN_MAX_TTL_SECONDS)
    throw new RangeError(
      `ttl ${seconds} s is longer than the dev-token maximum of ${DEV_TOKEN_MAX_TTL_SECONDS} s (24 h)`,
    );
}

/** RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

function makeDevKey(file: string, contents: KeyFileContents, created: boolean): DevKey {
  const { kty, crv, x, y } = contents.privateJwk;
  const publicJwk: JWK = { kty, crv, x, y, kid: contents.kid, alg: DEV_ALG, use: 'sig' };
  let signingKey: ReturnType<typeof importJWK> | undefined;
  return {
    kid: contents.kid,
    file,
    createdAt: contents.createdAt,
    created,
    publicJwks: () => ({ keys: [{ ...publicJwk }] }),
    async mint(opts) {
      if (typeof opts.sub !== 'string' || opts.sub.length === 0) throw new Error('sub must be a non-empty string');
      for (const s of opts.scopes) {
        if (!SCOPE_TOKEN.test(s))
          throw new Error(
            `invalid scope ${JSON.stringify(s)}: scopes are printable ASCII without spaces, quotes or backslashes`,
          );
      }
      const ttl = opts.ttlSeconds ?? DEV_TOKEN_DEFAULT_TTL_SECONDS;
      checkTtl(ttl);
      signingKey ??= importJWK(contents.privateJwk, DEV_ALG);
      const now = Math.floor((opts.now ?? Date.now()) / 1000);
      const clientId = opts.clientId ?? DEV_DEFAULT_CLIENT_ID;
      const claims: Record<string, unknown> = {
        ...opts.extra,
        [opts.claimNames?.scope ?? 'scope']: opts.scopes.join(' '),
        // RFC 9068 §2.2 `client_id` always (the verifier requires it with `requireTokenType`), and under the
        // configured claim name too when `auth.claims.clientId` is another one.
        client_id: clientId,
        [opts.claimNames?.clientId ?? 'client_id']: clientId,
      };
      return new SignJWT(claims)
        .setProtectedHeader({ alg: DEV_ALG, kid: contents.kid, typ: 'at+jwt' })
        .setIssuer(opts.issuer)
        .setSubject(opts.sub)
        .setAudience(opts.audience)
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(now + ttl)
        .setJti(randomBytes(16).toString('base64url'))
        .sign(await signingKey);
    },
  };
}

/** undefined when the file does not exist; throws when it exists but is unsafe or not a key file. */
async function readKeyFile(file: string): Promise<KeyFileContents | undefined> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`dev signing key ${file}: cannot open: ${(err as Error).message}`);
  }
  let text: string;
  try {
    // fstat of the open file: what is checked is what is read.
    const st = await handle.stat();
    if (!st.isFile()) throw new Error(`dev signing key ${file}: not a regular file`);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new Error(
        `dev signing key ${file} is accessible by other users (mode ${(st.mode & 0o777).toString(8).padStart(3, '0')}); ` +
          `it is a private key: run \`chmod 600 ${file}\` (or delete it to generate a new one)`,
      );
    }
    if (st.size > MAX_KEY_FILE_BYTES)
      throw new Error(`dev signing key ${file}: too large to be a key file (${st.size} bytes)`);
    text = await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
  return parseKeyFile(file, text);
}

async function parseKeyFile(file: string, text: string): Promise<KeyFileContents> {
  const bad = (why: string): Error =>
    new Error(`dev signing key ${file}: ${why} (delete the file to generate a new key)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null) throw bad('not a JSON object');
  const { privateJwk, createdAt } = parsed as Partial<KeyFileContents>;
  if (typeof privateJwk !== 'object' || privateJwk === null) throw bad('no privateJwk');
  const { kty, crv, x, y, d } = privateJwk;
  if (kty !== 'EC' || crv !== 'P-256' || typeof x !== 'string' || typeof y !== 'string' || typeof d !== 'string') {
    throw bad('privateJwk is not a P-256 EC private key');
  }
  const jwk: JWK = { kty, crv, x, y, d };
  try {
    await importJWK(jwk, DEV_ALG);
  } catch (err) {
    throw bad(`privateJwk does not import: ${(err as Error).message}`);
  }
  // The kid is derived, never trusted from the file: a hand-edited kid cannot drift from the key.
  const kid = await calculateJwkThumbprint({ kty, crv, x, y }, 'sha256');
  return { kid, privateJwk: jwk, createdAt: typeof createdAt === 'string' ? createdAt : 'unknown' };
}

/**
 * Writes a new key to a temporary 0600 file beside `file`, then hard-links it into place: the key file appears
 * complete or not at all, and an existing one is never overwritten. undefined when another process got there first.
 */
async function createKeyFile(file: string): Promise<KeyFileContents | undefined> {
  const { privateKey, publicKey } = await generateKeyPair(DEV_ALG, { extractable: true });
  const privateJwk = await exportJWK(privateKey);
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint({ kty: pub.kty, crv: pub.crv, x: pub.x, y: pub.y }, 'sha256');
  const contents: KeyFileContents = {
    kid,
    privateJwk: { kty: privateJwk.kty, crv: privateJwk.crv, x: privateJwk.x, y: privateJwk.y, d: privateJwk.d },
    createdAt: new Date().toISOString(),
  };
  const folder = dirname(file);
  await mkdir(folder, { recursive: true, mode: 0o700 });
  const tmp = join(folder, `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  await writeFile(tmp, `${JSON.stringify(contents, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, file);
    return contents;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw new Error(`dev signing key ${file}: cannot create: ${(err as Error).message}`);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}
