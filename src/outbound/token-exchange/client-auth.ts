/**
 * The gateway's client authentication at a token endpoint (RFC 8693 §2.1 leaves it to the AS): private_key_jwt
 * (RFC 7523, an assertion signed with the configured key — no shared secret; preferred), tls_client_auth (RFC 8705:
 * the request goes over a TLS connection presenting the configured client certificate), or client_secret_basic
 * where the authorization server offers nothing else.
 */
import { createPrivateKey, randomUUID, type JsonWebKey as NodeJwk } from 'node:crypto';
import https from 'node:https';
import { importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import * as oauth from 'oauth4webapi';
import type { TokenEndpointAuthConfig } from '../../config/types.js';

export interface EndpointAuth {
  readonly clientAuth: oauth.ClientAuth;
  /**
   * private_key_jwt only: a short JWT naming the gateway (iss = sub = its client id) for the authorization server
   * `audience`, the RFC 8693 §2.1 `actor_token` of a delegation.
   */
  readonly actorToken?: (audience: string) => Promise<string>;
  /** tls_client_auth: the fetch that presents the client certificate. */
  readonly fetch?: (url: string, init: oauth.CustomFetchOptions<'POST', URLSearchParams>) => Promise<Response>;
}

export async function tokenEndpointAuth(config: TokenEndpointAuthConfig): Promise<EndpointAuth> {
  switch (config.method) {
    case 'private_key_jwt': {
      const text = config.key.reveal().trim();
      const jwk = (text.startsWith('{') ? JSON.parse(text) : createPrivateKey(text).export({ format: 'jwk' })) as JWK &
        NodeJwk;
      const alg = config.alg ?? defaultAlg(jwk);
      const key = (await importJWK({ ...jwk, alg }, alg)) as CryptoKey;
      const kid = config.keyId ?? (typeof jwk.kid === 'string' ? jwk.kid : undefined);
      const actorToken = (audience: string): Promise<string> =>
        new SignJWT({})
          .setProtectedHeader(kid !== undefined ? { alg, kid, typ: 'JWT' } : { alg, typ: 'JWT' })
          .setIssuer(config.clientId)
          .setSubject(config.clientId)
          .setAudience(audience)
          .setIssuedAt()
          .setExpirationTime('60s')
          .setJti(randomUUID())
          .sign(key);
      return { clientAuth: oauth.PrivateKeyJwt(kid !== undefined ? { key, kid } : { key }), actorToken };
    }
    case 'tls_client_auth': {
      const agent = new https.Agent({ cert: config.cert.reveal(), key: config.key.reveal(), keepAlive: true });
      return { clientAuth: oauth.TlsClientAuth(), fetch: (url, init) => httpsPost(agent, url, init) };
    }
    case 'client_secret_basic':
      return { clientAuth: oauth.ClientSecretBasic(config.clientSecret.reveal()) };
  }
}

function defaultAlg(jwk: NodeJwk): string {
  if (jwk.kty === 'EC') return jwk.crv === 'P-384' ? 'ES384' : 'ES256';
  if (jwk.kty === 'OKP') return 'EdDSA';
  return 'RS256';
}

/** One POST over a TLS connection with a client certificate (Node's fetch takes no client certificate). */
function httpsPost(
  agent: https.Agent,
  url: string,
  init: oauth.CustomFetchOptions<'POST', URLSearchParams>,
): Promise<Response> {
  const body = init.body.toString();
  return new Promise<Response>((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { ...init.headers, 'content-length': String(Buffer.byteLength(body)) },
        ...(init.signal !== undefined ? { signal: init.signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          // A token response is small; anything this big is not one.
          if (size > 1024 * 1024) req.destroy(new Error('token endpoint response too large'));
          else chunks.push(c);
        });
        res.on('end', () => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers))
            if (typeof v === 'string') headers.set(k, v);
            else if (Array.isArray(v)) for (const x of v) headers.append(k, x);
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500, headers }));
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
