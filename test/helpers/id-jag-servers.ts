/**
 * The two authorization servers of enterprise-managed authorization (MCP extension
 * io.modelcontextprotocol/enterprise-managed-authorization), both panva's `oidc-provider` with a grant of their own:
 *
 * - the corporate IdP: the RFC 8693 token-exchange grant issuing ID-JAGs (extension §4, §4.3): it authenticates the
 *   gateway (private_key_jwt), verifies the `subject_token` against the keys of the tokens the gateway accepts, and
 *   signs a JWT with `typ: oauth-id-jag+jwt` and iss, sub, aud (= the requested audience), client_id (the gateway's
 *   client at that AS, mapped out of band: extension §6.1), jti, exp, iat, resource, scope, with its own key (its JWKS);
 * - the upstream's AS: the RFC 7523 jwt-bearer grant (extension §5, §5.1): it authenticates the gateway
 *   (private_key_jwt), verifies the ID-JAG's signature against the IdP's JWKS, its typ, iss, aud (= its own issuer),
 *   exp, that client_id is the authenticated client, and refuses a jti it has seen; it issues a JWT access token for
 *   the ID-JAG's resource with the ID-JAG's sub. It records everything it was sent, to prove no inbound token came.
 */
import { randomUUID } from 'node:crypto';
import { createRemoteJWKSet, importJWK, jwtVerify, SignJWT, type JWTVerifyGetKey } from 'jose';
import { es256KeyPair, listenLoopback, loadOidcProvider, oneParam } from './oidc-grants.js';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag';
export const IDP_CLIENT_ID = 'gatehouse-at-idp';
export const AS_CLIENT_ID = 'gatehouse-at-crm-as';

export interface IdJagIdp extends AsyncDisposable {
  readonly issuer: string;
  readonly tokenEndpoint: string;
  /** The gateway's private key at the IdP (a private JWK, as JSON). */
  readonly clientKey: string;
  /** ID-JAG requests, by audience (the AS) and subject. */
  readonly exchanges: {
    audience: string;
    resource: string;
    subject?: string;
    jti?: string;
    /** The ID-JAG issued (tests replay or redirect it). */
    jag?: string;
    ok: boolean;
  }[];
  /** Which keys verify a subject_token (the gateway's dev key set), and its issuer. */
  trustSubjectTokens(keys: JWTVerifyGetKey, issuer: string): void;
  close(): Promise<void>;
}

export interface IdJagAs extends AsyncDisposable {
  readonly issuer: string;
  readonly tokenEndpoint: string;
  /** The gateway's private key at this AS (a private JWK, as JSON). */
  readonly clientKey: string;
  /** Redemptions: the ID-JAG presented, its subject and jti when valid, and why it was refused. */
  readonly redemptions: { assertion: string; subject?: string; jti?: string; ok: boolean; reason?: string }[];
  /** Everything the AS was sent (parameters and headers, as JSON), one entry per token request. */
  readonly received: string[];
  close(): Promise<void>;
}

/** `clientIdAt`: the gateway's client id at each AS issuer (the out-of-band mapping of extension §6.1). */
export async function startIdJagIdp(clientIdAt: Record<string, string>): Promise<IdJagIdp> {
  const mod = await loadOidcProvider();
  const { errors } = mod;
  const { server, issuer, close } = await listenLoopback();
  const signing = await es256KeyPair('idp-id-jag');
  const signingKey = await importJWK(signing.privateJwk, 'ES256');
  const client = await es256KeyPair('gw-idp');
  const provider = new mod.default(issuer, {
    clients: [
      {
        client_id: IDP_CLIENT_ID,
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        id_token_signed_response_alg: 'ES256',
        jwks: { keys: [client.publicJwk] },
        grant_types: [TOKEN_EXCHANGE],
        response_types: [],
        redirect_uris: [],
      },
    ],
    jwks: { keys: [signing.privateJwk] },
    features: { devInteractions: { enabled: false } },
    cookies: { keys: ['id-jag-idp-cookie-key-for-tests'] },
  });
  const exchanges: IdJagIdp['exchanges'] = [];
  let subjectKeys: { keys: JWTVerifyGetKey; issuer: string } | undefined;

  provider.registerGrantType(
    TOKEN_EXCHANGE,
    async (ctx) => {
      const p = ctx.oidc.params;
      const audience = oneParam(p.audience) ?? '';
      const resource = oneParam(p.resource) ?? '';
      if (p.requested_token_type !== ID_JAG) throw new errors.InvalidRequest!('only ID-JAGs are issued here');
      if (audience === '' || resource === '') throw new errors.InvalidRequest!('audience and resource are required');
      if (p.subject_token_type !== 'urn:ietf:params:oauth:token-type:access_token' || subjectKeys === undefined)
        throw new errors.InvalidRequest!('unsupported subject_token_type');
      let sub: string;
      try {
        const { payload } = await jwtVerify(String(p.subject_token), subjectKeys.keys, { issuer: subjectKeys.issuer });
        sub = String(payload.sub);
      } catch {
        exchanges.push({ audience, resource, ok: false });
        throw new errors.InvalidGrant!('subject_token is not valid');
      }
      // The IdP's policy (extension §4.1): it issues only for authorization servers it knows the gateway's client at.
      const clientId = clientIdAt[audience];
      if (clientId === undefined) {
        exchanges.push({ audience, resource, subject: sub, ok: false });
        throw new errors.InvalidTarget!('audience not allowed');
      }
      const scope = typeof p.scope === 'string' ? p.scope : undefined;
      const jti = randomUUID();
      // Extension §4.3: the claims of an ID-JAG and its typ.
      const jag = await new SignJWT({ client_id: clientId, resource, ...(scope !== undefined ? { scope } : {}) })
        .setProtectedHeader({ alg: 'ES256', kid: 'idp-id-jag', typ: 'oauth-id-jag+jwt' })
        .setIssuer(issuer)
        .setSubject(sub)
        .setAudience(audience)
        .setJti(jti)
        .setIssuedAt()
        .setExpirationTime('300s')
        .sign(signingKey);
      exchanges.push({ audience, resource, subject: sub, jti, jag, ok: true });
      // Extension §4.2: token_type N_A, issued_token_type id-jag.
      ctx.body = {
        access_token: jag,
        issued_token_type: ID_JAG,
        token_type: 'N_A',
        expires_in: 300,
        ...(scope !== undefined ? { scope } : {}),
      };
    },
    ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'resource', 'scope'],
    ['audience', 'resource'],
  );
  server.on('request', provider.callback());
  return {
    issuer,
    tokenEndpoint: `${issuer}/token`,
    clientKey: JSON.stringify(client.privateJwk),
    exchanges,
    trustSubjectTokens(keys, iss) {
      subjectKeys = { keys, issuer: iss };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

export async function startIdJagAs(idp: { issuer: string }): Promise<IdJagAs> {
  const mod = await loadOidcProvider();
  const { errors } = mod;
  const { server, issuer, close } = await listenLoopback();
  const signing = await es256KeyPair('as-at');
  const client = await es256KeyPair('gw-as');
  const idpKeys = createRemoteJWKSet(new URL(`${idp.issuer}/jwks`));
  const provider = new mod.default(issuer, {
    clients: [
      {
        client_id: AS_CLIENT_ID,
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        id_token_signed_response_alg: 'ES256',
        jwks: { keys: [client.publicJwk] },
        grant_types: [JWT_BEARER],
        response_types: [],
        redirect_uris: [],
      },
    ],
    jwks: { keys: [signing.privateJwk] },
    features: { devInteractions: { enabled: false } },
    cookies: { keys: ['id-jag-as-cookie-key-for-tests'] },
  });
  const redemptions: IdJagAs['redemptions'] = [];
  const received: string[] = [];
  const seenJti = new Set<string>();

  provider.registerGrantType(
    JWT_BEARER,
    async (ctx) => {
      const p = ctx.oidc.params;
      received.push(JSON.stringify({ params: p, headers: ctx.headers ?? {} }));
      const assertion = String(p.assertion ?? '');
      const refuse = (reason: string): Error => {
        redemptions.push({ assertion, ok: false, reason });
        return new errors.InvalidGrant!(reason);
      };
      let claims: Record<string, unknown>;
      try {
        // RFC 7521 §5.2 / RFC 7523 §3 and extension §5.1: signature (IdP's JWKS), typ, iss, aud = this issuer, exp.
        ({ payload: claims } = await jwtVerify(assertion, idpKeys, {
          issuer: idp.issuer,
          audience: issuer,
          typ: 'oauth-id-jag+jwt',
          requiredClaims: ['sub', 'jti', 'exp', 'iat', 'client_id', 'resource'],
        }));
      } catch (err) {
        throw refuse(`assertion invalid: ${(err as { code?: string }).code ?? 'error'}`);
      }
      // Extension §5.1: client_id names the authenticated client.
      const clientId = (ctx.oidc.client as { clientId: string }).clientId;
      if (claims.client_id !== clientId) throw refuse('client_id does not match the authenticated client');
      // RFC 7523 §3 (7): a jti seen before is a replay.
      const jti = `${String(claims.iss)} ${String(claims.jti)}`;
      if (seenJti.has(jti)) throw refuse('jti replayed');
      seenJti.add(jti);
      const sub = String(claims.sub);
      const resource = String(claims.resource);
      const scope = typeof claims.scope === 'string' ? claims.scope : 'tools';
      const at = new provider.AccessToken({
        accountId: sub,
        client: ctx.oidc.client,
        grantId: randomUUID(),
        gty: 'jwt_bearer',
        scope,
      });
      at.resourceServer = new provider.ResourceServer(resource, {
        scope,
        audience: resource,
        accessTokenFormat: 'jwt',
        accessTokenTTL: 120,
        jwt: { sign: { alg: 'ES256' } },
      });
      ctx.oidc.entity('AccessToken', at);
      const value = await at.save();
      redemptions.push({ assertion, subject: sub, jti: String(claims.jti), ok: true });
      ctx.body = { access_token: value, token_type: 'Bearer', expires_in: at.expiration, scope };
    },
    ['assertion', 'scope'],
    [],
  );
  server.on('request', provider.callback());
  return {
    issuer,
    tokenEndpoint: `${issuer}/token`,
    clientKey: JSON.stringify(client.privateJwk),
    redemptions,
    received,
    close,
    [Symbol.asyncDispose]: close,
  };
}
