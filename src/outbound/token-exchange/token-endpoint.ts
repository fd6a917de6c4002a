/**
 * One token endpoint the gateway is a client of (shared by token exchange and ID-JAG): where it is (configured, or
 * discovered from the issuer's RFC 8414 / OpenID Connect metadata and cached for an hour), how the gateway
 * authenticates there (client-auth.ts), and one grant request with the answer checked by oauth4webapi. Every failure
 * becomes the provider's GW_UPSTREAM_CREDENTIAL_FAILED (through `fail`), the server's own words in the detail only.
 */
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import { isLoopbackHost } from '../../config/addresses.js';
import type { TokenEndpointAuthConfig } from '../../config/types.js';
import { GatewayError } from '../../errors/gateway-error.js';
import type { CredentialRequest } from '../credential-provider.js';
import { tokenEndpointAuth, type EndpointAuth } from './client-auth.js';

const DISCOVERY_MAX_AGE_MS = 60 * 60 * 1000;

export interface TokenEndpointConfig {
  readonly tokenEndpoint?: string;
  readonly issuer?: string;
  readonly clientAuth: TokenEndpointAuthConfig;
  readonly timeoutMs: number;
}

/** How a failure at this endpoint is worded in the detail (e.g. "token endpoint refused the exchange"). */
export interface TokenEndpointWords {
  readonly discovery: string;
  readonly refused: string;
  readonly failed: string;
}

export class TokenEndpoint {
  readonly #config: TokenEndpointConfig;
  readonly #now: () => number;
  readonly #words: TokenEndpointWords;
  readonly #fail: (reason: string, cause?: unknown) => GatewayError;
  readonly client: oauth.Client;
  #auth: Promise<EndpointAuth> | undefined;
  #metadata: { as: Promise<oauth.AuthorizationServer>; at: number } | undefined;

  constructor(opts: {
    config: TokenEndpointConfig;
    now: () => number;
    words: TokenEndpointWords;
    fail: (reason: string, cause?: unknown) => GatewayError;
  }) {
    this.#config = opts.config;
    this.#now = opts.now;
    this.#words = opts.words;
    this.#fail = opts.fail;
    this.client = { client_id: opts.config.clientAuth.clientId };
  }

  /** The gateway's client authentication here (loaded once). */
  auth(): Promise<EndpointAuth> {
    return (this.#auth ??= tokenEndpointAuth(this.#config.clientAuth));
  }

  /** The server's metadata (at least issuer and token_endpoint); a discovery failure is the provider's error. */
  async metadata(): Promise<oauth.AuthorizationServer> {
    try {
      return await this.#authorizationServer();
    } catch (err) {
      throw this.#fail(`${this.#words.discovery}: ${describe(err)}`, err);
    }
  }

  /**
   * One grant request (RFC 6749 §4.5 extension grant: token exchange, jwt-bearer) with the gateway's client
   * authentication; the successful response, or the provider's error with the server's `error`/`error_description`.
   */
  async request(
    grantType: string,
    params: URLSearchParams,
    opts: {
      as?: oauth.AuthorizationServer;
      recognizedTokenTypes?: oauth.ProcessTokenResponseOptions['recognizedTokenTypes'];
    } = {},
  ): Promise<oauth.TokenEndpointResponse> {
    const as = opts.as ?? (await this.metadata());
    const auth = await this.auth();
    const endpoint = as.token_endpoint ?? '';
    try {
      const res = await oauth.genericTokenEndpointRequest(as, this.client, auth.clientAuth, grantType, params, {
        signal: AbortSignal.timeout(this.#config.timeoutMs),
        [oauth.allowInsecureRequests]: isLoopbackUrl(endpoint),
        ...(auth.fetch !== undefined ? { [oauth.customFetch]: auth.fetch } : {}),
      });
      return await oauth.processGenericTokenEndpointResponse(
        as,
        this.client,
        res,
        opts.recognizedTokenTypes !== undefined ? { recognizedTokenTypes: opts.recognizedTokenTypes } : undefined,
      );
    } catch (err) {
      if (err instanceof oauth.ResponseBodyError)
        throw this.#fail(
          `${this.#words.refused}: ${err.error}${err.error_description !== undefined ? `: ${err.error_description}` : ''}`,
          err,
        );
      throw this.#fail(`${this.#words.failed}: ${describe(err)}`, err);
    }
  }

  /** The configured token endpoint, or the one the issuer's metadata names (cached for an hour). */
  #authorizationServer(): Promise<oauth.AuthorizationServer> {
    const c = this.#config;
    if (c.tokenEndpoint !== undefined)
      return Promise.resolve({
        issuer: c.issuer ?? new URL(c.tokenEndpoint).origin,
        token_endpoint: c.tokenEndpoint,
      });
    const now = this.#now();
    if (this.#metadata === undefined || now - this.#metadata.at > DISCOVERY_MAX_AGE_MS) {
      const issuer = new URL(c.issuer!);
      const http = {
        signal: AbortSignal.timeout(c.timeoutMs),
        [oauth.allowInsecureRequests]: isLoopbackUrl(issuer.href),
      };
      const as = oauth
        .discoveryRequest(issuer, { ...http, algorithm: 'oauth2' })
        .then((res) => oauth.processDiscoveryResponse(issuer, res))
        .catch(() =>
          oauth
            .discoveryRequest(issuer, { ...http, algorithm: 'oidc' })
            .then((res) => oauth.processDiscoveryResponse(issuer, res)),
        )
        .then((meta) => {
          if (meta.token_endpoint === undefined) throw new Error('the issuer metadata has no token_endpoint');
          return meta;
        });
      const entry = { as, at: now };
      this.#metadata = entry;
      as.catch(() => {
        if (this.#metadata === entry) this.#metadata = undefined;
      });
    }
    return this.#metadata.as;
  }
}

/** The `sub` of a JWT, unverified (for the audit record only); undefined for an opaque token. */
export function subjectOf(token: string): string | undefined {
  try {
    const sub = decodeJwt(token).sub;
    return typeof sub === 'string' ? sub.slice(0, 256) : undefined;
  } catch {
    return undefined;
  }
}

/** Waits for `p` unless the request is cancelled first (the shared exchange goes on for the others). */
export function whileNotCancelled<T>(p: Promise<T>, req: CredentialRequest): Promise<T> {
  if (req.cancel.aborted) return Promise.reject(new GatewayError('GW_MCP_REQUEST_CANCELLED'));
  return new Promise<T>((resolve, reject) => {
    const stop = req.cancel.onAbort(() => reject(new GatewayError('GW_MCP_REQUEST_CANCELLED')));
    p.then(
      (v) => {
        stop();
        resolve(v);
      },
      (err: unknown) => {
        stop();
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
    return `${err.name}: ${err.message}${cause}`;
  }
  return String(err);
}

/** Plain http is allowed to a loopback authorization server only (the loader refuses any other): tests, a sidecar. */
function isLoopbackUrl(raw: string): boolean {
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' && isLoopbackHost(url.hostname.replace(/^\[|\]$/g, ''));
  } catch {
    return false;
  }
}
