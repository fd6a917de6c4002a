/** The URLs under `auth`: issuers and endpoints checked, the resource in its canonical form. */
import net from 'node:net';
import { isLoopbackHost } from './addresses.js';
import { report, type LoadContext } from './load-context.js';
import { inlineSecretProblem } from './secrets.js';
import type { ServerConfig } from './types.js';

/**
 * The `resource` a config without one gets: `http(s)://host:port/path`, https when the listener has TLS.
 * With port 0 the result says `:0` — the real port is only known once listening, so a gateway on port 0
 * outside tests needs `auth.resource`; tests can call this again with the bound port.
 */
export function defaultResource(server: Pick<ServerConfig, 'host' | 'port' | 'path' | 'tls'>): string {
  const host = net.isIPv6(server.host) ? `[${server.host}]` : server.host;
  return canonicalResource(
    new URL(`${server.tls !== undefined ? 'https' : 'http'}://${host}:${server.port}${server.path}`),
  );
}

/** RFC 8707 / RFC 9728 canonical form: lower-case scheme and host (the URL parser's), no default port, no trailing `/`. */
export function canonicalResource(url: URL): string {
  const pathname = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') || '/' : url.pathname;
  return `${url.protocol}//${url.host}${pathname}${url.search}`;
}

/**
 * A URL under `auth`. `issuer`: RFC 8414 identifier (no query, no fragment); `endpoint`: something fetched
 * (JWKS, introspection); both need https except on loopback hosts (local test servers). `resource`: the
 * gateway's own URL, http allowed (TLS may end at a proxy). Returns the parsed URL when it is acceptable.
 */
export function checkAuthUrl(
  raw: string,
  pointer: string,
  kind: 'issuer' | 'endpoint' | 'resource',
  ctx: LoadContext,
): URL | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    report(ctx, pointer, 'is not a valid URL');
    return undefined;
  }
  const before = ctx.problems.length;
  if (url.username !== '' || url.password !== '') report(ctx, pointer, 'must not contain user:password@');
  if (raw.includes('#')) report(ctx, pointer, 'must not contain a #fragment');
  if (kind === 'issuer' && raw.includes('?'))
    report(ctx, pointer, 'must not contain a ?query (issuer identifiers have none, RFC 8414)');
  if (kind === 'endpoint') {
    for (const [name, value] of url.searchParams) {
      const problem = inlineSecretProblem('query parameter', name, value);
      if (problem !== undefined) report(ctx, pointer, problem);
    }
  }
  if (kind !== 'resource' && url.protocol !== 'https:' && !isLoopbackHost(url.hostname.replace(/^\[|\]$/g, ''))) {
    report(
      ctx,
      pointer,
      'must use https: (http: is accepted only for loopback hosts such as 127.0.0.1, [::1] or localhost)',
    );
  }
  return ctx.problems.length === before ? url : undefined;
}
