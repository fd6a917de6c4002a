/**
 * Who is calling the token and revocation endpoints (OAuth 2.1 §2.4). Three ways, chosen by the client's
 * registration — never by what the request would prefer:
 * - public clients (registered or metadata-document clients): `client_id` only, no secret;
 * - pre-registered machine clients with `private_key_jwt` (RFC 7523 §2.2, §3): a JWT signed by a key of the
 *   client's JWKS, `iss` = `sub` = client id, `aud` = our issuer or token endpoint, `exp` at most 5 minutes
 *   ahead, no `iat` in the future (beyond the tolerance), `jti` a string, single use;
 * - pre-registered machine clients with `tls_client_auth` (RFC 8705 §2.1): the request's client certificate
 *   subject DN equals the configured one (exact string comparison).
 * Client secrets are not supported: an `Authorization` header is refused rather than ignored.
 */
import { readFileSync } from 'node:fs';
import {
  createLocalJWKSet,
  decodeJwt,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import type { BuiltinAsConfig } from '../../config/types.js';
import type { AsStore, StoredClient } from '../../stores/as/as-store.js';
import type { CertIdentity } from '../authenticator.js';
import { checkTokenTimes, type TimeRules } from '../token-times.js';
import { OAuthError } from './oauth-error.js';

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ASSERTION_ALGORITHMS = ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA'];
/** RFC 7523 §3 item 4: we accept assertions that expire at most this far ahead. */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;
const CLOCK_TOLERANCE_SECONDS = 30;
const ASSERTION_TIMES: TimeRules = Object.freeze({ skewSeconds: CLOCK_TOLERANCE_SECONDS });

export interface MachineClient {
  readonly clientId: string;
  readonly auth: 'private_key_jwt' | 'tls_client_auth';
  readonly scopes: readonly string[];
  readonly keys?: JWTVerifyGetKey;
  readonly tlsSubject?: string;
}

export type AuthenticatedClient =
  | { readonly kind: 'public'; readonly clientId: string; readonly client: StoredClient }
  | {
      readonly kind: 'machine';
      readonly clientId: string;
      readonly client: MachineClient;
      readonly certThumbprint?: string;
    };

export interface ClientAuthContext {
  readonly issuer: string;
  readonly tokenEndpoint: string;
  readonly store: AsStore;
  readonly machineClients: ReadonlyMap<string, MachineClient>;
  readonly findPublicClient: (clientId: string) => Promise<StoredClient | undefined>;
  /** Epoch seconds. */
  readonly now: number;
}

/** Reads the machine clients' public JWKS files once, at start-up. Misuse throws. */
export function loadMachineClients(clients: BuiltinAsConfig['clients']): Map<string, MachineClient> {
  const out = new Map<string, MachineClient>();
  for (const c of clients) {
    if (out.has(c.clientId)) throw new TypeError(`auth.builtin.clients: duplicate clientId "${c.clientId}"`);
    if (c.auth === 'private_key_jwt') {
      if (c.jwksFile === undefined)
        throw new TypeError(`auth.builtin.clients "${c.clientId}": private_key_jwt needs jwksFile`);
      let jwks: JSONWebKeySet;
      try {
        jwks = JSON.parse(readFileSync(c.jwksFile, 'utf8')) as JSONWebKeySet;
      } catch {
        throw new TypeError(`auth.builtin.clients "${c.clientId}": cannot read a JWKS from ${c.jwksFile}`);
      }
      if (!Array.isArray(jwks.keys) || jwks.keys.length === 0 || jwks.keys.some((k) => 'd' in k || k.kty === 'oct')) {
        throw new TypeError(
          `auth.builtin.clients "${c.clientId}": ${c.jwksFile} must hold public asymmetric keys only`,
        );
      }
      out.set(c.clientId, { clientId: c.clientId, auth: c.auth, scopes: [...c.scopes], keys: createLocalJWKSet(jwks) });
    } else {
      if (c.tlsSubject === undefined || c.tlsSubject === '')
        throw new TypeError(`auth.builtin.clients "${c.clientId}": tls_client_auth needs tlsSubject`);
      out.set(c.clientId, { clientId: c.clientId, auth: c.auth, scopes: [...c.scopes], tlsSubject: c.tlsSubject });
    }
  }
  return out;
}

export async function authenticateClient(
  params: URLSearchParams,
  authorizationHeader: string | undefined,
  cert: CertIdentity | undefined,
  ctx: ClientAuthContext,
): Promise<AuthenticatedClient> {
  if (authorizationHeader !== undefined)
    throw new OAuthError('invalid_client', 'Authorization header (client secrets are not supported)');
  const bodyClientId = params.get('client_id') ?? undefined;
  const assertionType = params.get('client_assertion_type');
  const assertion = params.get('client_assertion');

  if (assertionType !== null || assertion !== null) {
    if (assertionType !== JWT_BEARER_ASSERTION || assertion === null)
      throw new OAuthError('invalid_client', 'unsupported or incomplete client assertion');
    return authenticateWithAssertion(assertion, bodyClientId, ctx);
  }
  if (bodyClientId === undefined || bodyClientId === '') throw new OAuthError('invalid_client', 'no client_id');

  const machine = ctx.machineClients.get(bodyClientId);
  if (machine !== undefined) {
    if (machine.auth !== 'tls_client_auth')
      throw new OAuthError('invalid_client', `${bodyClientId} must authenticate with private_key_jwt`);
    if (cert === undefined) throw new OAuthError('invalid_client', `${bodyClientId}: no client certificate`);
    if (cert.subject !== machine.tlsSubject)
      throw new OAuthError('invalid_client', `${bodyClientId}: certificate subject does not match`);
    return { kind: 'machine', clientId: bodyClientId, client: machine, certThumbprint: cert.thumbprint };
  }
  const client = await ctx.findPublicClient(bodyClientId);
  if (client === undefined) throw new OAuthError('invalid_client', 'unknown client');
  return { kind: 'public', clientId: bodyClientId, client };
}

async function authenticateWithAssertion(
  assertion: string,
  bodyClientId: string | undefined,
  ctx: ClientAuthContext,
): Promise<AuthenticatedClient> {
  let claimedIss: unknown;
  try {
    claimedIss = decodeJwt(assertion).iss;
  } catch {
    throw new OAuthError('invalid_client', 'client assertion is not a JWT');
  }
  if (typeof claimedIss !== 'string') throw new OAuthError('invalid_client', 'client assertion without iss');
  if (bodyClientId !== undefined && bodyClientId !== claimedIss)
    throw new OAuthError('invalid_client', 'client_id differs from the assertion issuer');
  const machine = ctx.machineClients.get(claimedIss);
  if (machine === undefined || machine.auth !== 'private_key_jwt' || machine.keys === undefined)
    throw new OAuthError('invalid_client', 'unknown client or not a private_key_jwt client');

  let payload;
  try {
    ({ payload } = await jwtVerify(assertion, machine.keys, {
      issuer: machine.clientId,
      subject: machine.clientId,
      audience: [ctx.issuer, ctx.tokenEndpoint],
      algorithms: ASSERTION_ALGORITHMS,
      requiredClaims: ['exp', 'jti'],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      currentDate: new Date(ctx.now * 1000),
    }));
  } catch (err) {
    const code = err instanceof joseErrors.JOSEError ? err.code : 'ERR_UNKNOWN';
    throw new OAuthError('invalid_client', `client assertion rejected (${code})`);
  }
  // jose checks a future iat only when given maxTokenAge: an assertion "issued" later than now is refused here
  // (RFC 7519 §4.1.6), by the rule every token the gateway accepts is held to.
  const times = { exp: payload.exp, nbf: payload.nbf, iat: payload.iat };
  const late = checkTokenTimes(times, ctx.now * 1000, ASSERTION_TIMES);
  if (late !== undefined) throw new OAuthError('invalid_client', `client assertion rejected (${late.detail})`);
  const exp = payload.exp!;
  if (exp - ctx.now > MAX_ASSERTION_LIFETIME_SECONDS)
    throw new OAuthError('invalid_client', 'client assertion expires too far in the future');
  // jose checks only that jti is present: a number or an object would key the replay store by its string form.
  const jti: unknown = payload.jti;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) {
    throw new OAuthError('invalid_client', 'client assertion jti unusable');
  }
  const ttl = Math.max(1, exp - ctx.now + CLOCK_TOLERANCE_SECONDS);
  if (!(await ctx.store.markJtiUsed(machine.clientId, jti, ttl)))
    throw new OAuthError('invalid_client', 'client assertion jti replayed');
  return { kind: 'machine', clientId: machine.clientId, client: machine };
}
