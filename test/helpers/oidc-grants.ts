/**
 * The glue shared by the test authorization servers built on panva's `oidc-provider` with a grant type of their own
 * (exchange-idp.ts, id-jag-servers.ts): loading the module, a loopback listener for the issuer, the gateway's client
 * key pair (private_key_jwt), and the few parts of the provider's API the grants use.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';

export interface ProviderLike {
  callback(): (req: unknown, res: unknown) => void;
  registerGrantType(name: string, handler: (ctx: GrantCtx) => Promise<void>, params: string[], dupes: string[]): void;
  AccessToken: new (fields: Record<string, unknown>) => {
    resourceServer?: unknown;
    expiration: number;
    scope?: string;
    save(): Promise<string>;
  };
  ResourceServer: new (id: string, info: Record<string, unknown>) => unknown;
}

export interface GrantCtx {
  oidc: {
    params: Record<string, unknown>;
    client: unknown;
    entity(name: string, value: unknown): void;
  };
  headers?: Record<string, unknown>;
  body: unknown;
}

export interface OidcProviderModule {
  default: new (issuer: string, config: Record<string, unknown>) => ProviderLike;
  errors: Record<string, new (description?: string) => Error>;
}

export function loadOidcProvider(): Promise<OidcProviderModule> {
  const specifier = 'oidc-provider';
  return import(specifier) as Promise<OidcProviderModule>;
}

/** A server listening on a loopback port, its issuer URL, and a close that drops open connections. */
export async function listenLoopback(): Promise<{ server: Server; issuer: string; close: () => Promise<void> }> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = async (): Promise<void> => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { server, issuer, close };
}

/** An ES256 key pair: the private JWK (for the gateway's private_key_jwt), the public one (for the client's jwks). */
export async function es256KeyPair(kid: string): Promise<{ privateJwk: JWK; publicJwk: JWK }> {
  const pair = await generateKeyPair('ES256', { extractable: true });
  return {
    privateJwk: { ...(await exportJWK(pair.privateKey)), kid, alg: 'ES256' },
    publicJwk: { ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256', use: 'sig' },
  };
}

/** The first string of a parameter oidc-provider may hand over as a string or a list (dupes allowed). */
export const oneParam = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
