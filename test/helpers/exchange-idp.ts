/**
 * The corporate authorization server for token exchange tests: panva's `oidc-provider` with the RFC 8693 grant
 * registered (`registerGrantType`). It authenticates the gateway with private_key_jwt, verifies the `subject_token`
 * against the keys of the tokens the gateway accepts (the test hands them in), and issues JWT access tokens (signed
 * with its own key, published at its JWKS) whose `aud` is the requested resource and whose `sub` is the caller's.
 * `failAudience`: a resource it refuses with an error text that must never reach a client.
 */
import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { es256KeyPair, listenLoopback, loadOidcProvider, oneParam as one } from './oidc-grants.js';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const EXCHANGE_CLIENT_ID = 'gatehouse-exchange';
/** The text the IdP answers a refused exchange with: a test asserts it never reaches the client. */
export const IDP_SECRET_TEXT = 'idp-internal-detail-7f3a: tenant db shard 12 unreachable';

export interface ExchangeIdp extends AsyncDisposable {
  readonly issuer: string;
  readonly tokenEndpoint: string;
  /** The gateway's private key (a private JWK, as JSON) for private_key_jwt. */
  readonly clientKey: string;
  /** Token exchanges the IdP performed (successful or not), by requested resource. */
  readonly exchanges: { resource: string; subject?: string; actor?: string; ok: boolean }[];
  /** A resource the IdP refuses (with IDP_SECRET_TEXT); settable once the upstream's URL is known. */
  failResource: string | undefined;
  /** Which keys verify a subject_token (the gateway's dev key set), and its issuer. */
  trustSubjectTokens(keys: JWTVerifyGetKey, issuer: string): void;
  close(): Promise<void>;
}

export async function startExchangeIdp(): Promise<ExchangeIdp> {
  const opts: { failResource?: string } = {};
  const mod = await loadOidcProvider();
  const { errors } = mod;
  const { server, issuer, close } = await listenLoopback();

  const signing = await generateKeyPair('ES256', { extractable: true });
  const idpKey = { ...(await exportJWK(signing.privateKey)), kid: 'idp-at', alg: 'ES256', use: 'sig' };
  const { privateJwk: clientPrivate, publicJwk: clientPublic } = await es256KeyPair('gw-1');
  const clientKeys = createLocalJWKSet({ keys: [clientPublic] });
  const actors = new WeakMap<object, string>();

  const provider = new mod.default(issuer, {
    clients: [
      {
        client_id: EXCHANGE_CLIENT_ID,
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        id_token_signed_response_alg: 'ES256',
        jwks: { keys: [clientPublic] },
        grant_types: [TOKEN_EXCHANGE],
        response_types: [],
        redirect_uris: [],
      },
    ],
    jwks: { keys: [idpKey] },
    features: { devInteractions: { enabled: false } },
    // The issued token's `act` claim (RFC 8693 §4.1) for an exchange that named an actor.
    extraTokenClaims: (_ctx: unknown, token: object) => {
      const actor = actors.get(token);
      return actor === undefined ? undefined : { act: { sub: actor } };
    },
    cookies: { keys: ['exchange-idp-cookie-key-for-tests'] },
  });

  const exchanges: ExchangeIdp['exchanges'] = [];
  let subjectKeys: { keys: JWTVerifyGetKey; issuer: string } | undefined;

  provider.registerGrantType(
    TOKEN_EXCHANGE,
    async (ctx) => {
      const p = ctx.oidc.params;
      const resource = one(p.resource) ?? one(p.audience) ?? '';
      if (opts.failResource !== undefined && resource === opts.failResource) {
        exchanges.push({ resource, ok: false });
        throw new errors.InvalidTarget!(IDP_SECRET_TEXT);
      }
      if (p.subject_token_type !== 'urn:ietf:params:oauth:token-type:access_token' || subjectKeys === undefined)
        throw new errors.InvalidRequest!('unsupported subject_token_type');
      let sub: string;
      try {
        const { payload } = await jwtVerify(String(p.subject_token), subjectKeys.keys, { issuer: subjectKeys.issuer });
        sub = String(payload.sub);
      } catch {
        exchanges.push({ resource, ok: false });
        throw new errors.InvalidGrant!('subject_token is not valid');
      }
      // An actor token (RFC 8693 §2.1): the gateway's own short JWT, signed with its client key; the issued token
      // records the delegation in `act` (§4.1).
      let actor: string | undefined;
      if (p.actor_token !== undefined) {
        try {
          const { payload } = await jwtVerify(String(p.actor_token), clientKeys, {
            issuer: EXCHANGE_CLIENT_ID,
            subject: EXCHANGE_CLIENT_ID,
            audience: issuer,
            maxTokenAge: '2m',
          });
          actor = String(payload.sub);
        } catch {
          exchanges.push({ resource, ok: false });
          throw new errors.InvalidGrant!('actor_token is not valid');
        }
        if (p.actor_token_type !== 'urn:ietf:params:oauth:token-type:jwt')
          throw new errors.InvalidRequest!('unsupported actor_token_type');
      }
      const at = new provider.AccessToken({
        accountId: sub,
        client: ctx.oidc.client,
        grantId: randomUUID(),
        gty: 'token_exchange',
        scope: 'tools',
      });
      if (actor !== undefined) actors.set(at, actor);
      at.resourceServer = new provider.ResourceServer(resource, {
        scope: 'tools',
        audience: resource,
        accessTokenFormat: 'jwt',
        accessTokenTTL: 120,
        jwt: { sign: { alg: 'ES256' } },
      });
      ctx.oidc.entity('AccessToken', at);
      const value = await at.save();
      exchanges.push({ resource, subject: sub, ...(actor !== undefined ? { actor } : {}), ok: true });
      ctx.body = {
        access_token: value,
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        token_type: 'Bearer',
        expires_in: at.expiration,
        scope: 'tools',
      };
    },
    [
      'subject_token',
      'subject_token_type',
      'requested_token_type',
      'audience',
      'resource',
      'scope',
      'actor_token',
      'actor_token_type',
    ],
    ['audience', 'resource'],
  );
  server.on('request', provider.callback());

  return {
    issuer,
    tokenEndpoint: `${issuer}/token`,
    clientKey: JSON.stringify(clientPrivate),
    exchanges,
    get failResource() {
      return opts.failResource;
    },
    set failResource(v) {
      opts.failResource = v;
    },
    trustSubjectTokens(keys, iss) {
      subjectKeys = { keys, issuer: iss };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
