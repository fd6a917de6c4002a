/** Checks of `auth` against the rest of the file: the listener (loopback, TLS, the built-in AS's routes) and the policy. */
import { isLoopbackHost, isUnspecifiedAddress } from './addresses.js';
import type { RawAuth } from './auth-config.js';
import { report, type LoadContext } from './load-context.js';
import type { AuthConfig, ServerConfig } from './types.js';

/** Default deny (docs/architecture.md §4): without policy files an authenticated gateway would refuse every request. */
export function checkAuthNeedsPolicy(auth: AuthConfig, hasPolicy: boolean, ctx: LoadContext): void {
  if (auth.mode !== 'none' && !hasPolicy) {
    report(
      ctx,
      '/auth/mode',
      `auth.mode "${auth.mode}" needs policy.dir: with no policy every request would be denied (default deny)`,
    );
  }
}

/** Where clients reach the gateway decides which auth modes are safe and whether tokens travel over TLS. */
export function checkAuthAgainstHost(server: ServerConfig, auth: AuthConfig, raw: RawAuth, ctx: LoadContext): void {
  if (auth.mode === 'builtin') {
    checkBuiltinAgainstHost(server, auth, raw, ctx);
    return;
  }
  if (auth.mode === 'oauth') {
    // Tokens carry the URL clients connect to; "0.0.0.0" is no such URL.
    if (raw.resource === undefined && isUnspecifiedAddress(server.host)) {
      report(
        ctx,
        '/auth/resource',
        `must be set to the URL clients use to reach the gateway; it cannot be derived from server.host "${server.host}"`,
      );
    } else if (!isLoopbackHost(server.host) && server.tls === undefined && auth.resource.startsWith('http:')) {
      // OAuth 2.1 §1.5 and RFC 6750 §5.3: bearer tokens only over TLS. Clients use the resource URL, so a plain
      // http one off loopback sends every token across the network in clear text (trusted proxies change nothing).
      report(
        ctx,
        raw.resource !== undefined ? '/auth/resource' : '/server/host',
        `clients would send bearer tokens over plain HTTP to ${auth.resource} ` +
          `(server.host ${server.host} is not loopback); ` +
          'set server.tls, or, behind a TLS-terminating proxy, set auth.resource to the https URL clients use',
      );
    }
    return;
  }
  if (isLoopbackHost(server.host)) return;
  const pointer = raw.mode !== undefined ? '/auth/mode' : '/server/host';
  const fix = auth.mode === 'none' ? 'configure authentication' : 'use auth.mode "oauth"';
  report(
    ctx,
    pointer,
    `auth.mode "${auth.mode}" is only allowed on a loopback host; ${fix} to listen on ${server.host}`,
  );
}

/**
 * Mode builtin: browsers log in through the gateway, so off loopback it must be reached over https — its own
 * TLS, or a TLS-terminating proxy in front, declared with an explicit https `resource`. The default issuer
 * (the resource's origin) must then be https too, and `tls_client_auth` clients need a client certificate source.
 */
function checkBuiltinAgainstHost(server: ServerConfig, auth: AuthConfig, raw: RawAuth, ctx: LoadContext): void {
  const explicitResource = raw.resource !== undefined;
  let hostProblem = false;
  if (!isLoopbackHost(server.host)) {
    if (!explicitResource && isUnspecifiedAddress(server.host)) {
      report(
        ctx,
        '/auth/resource',
        `must be set to the URL clients use to reach the gateway; it cannot be derived from server.host "${server.host}"`,
      );
      hostProblem = true;
    } else if (server.tls === undefined && !(explicitResource && auth.resource.startsWith('https:'))) {
      report(
        ctx,
        explicitResource ? '/auth/resource' : '/auth/mode',
        `auth.mode "builtin" on the non-loopback host ${server.host} needs HTTPS: set server.tls, or, behind a TLS-terminating proxy, an https auth.resource`,
      );
      hostProblem = true;
    }
  }
  const builtin = auth.builtin;
  if (builtin === undefined) return;
  if (raw.builtin?.issuer === undefined && builtin.issuer !== '' && !hostProblem) {
    const url = new URL(builtin.issuer);
    if (url.protocol !== 'https:' && !isLoopbackHost(url.hostname.replace(/^\[|\]$/g, ''))) {
      report(
        ctx,
        '/auth/resource',
        `the built-in authorization server's issuer defaults to this URL's origin (${builtin.issuer}), which must be https (http only on loopback hosts); use an https resource or set auth.builtin.issuer`,
      );
    }
  }
  if (builtin.issuer !== '') {
    // The authorization server's routes live on the same listener, under the issuer's path.
    const prefix = new URL(builtin.issuer).pathname.replace(/\/+$/, '');
    const routes = ['/authorize', '/authorize/callback', '/consent', '/token', '/revoke', '/register', '/jwks'].map(
      (r) => `${prefix}${r}`,
    );
    if (routes.includes(server.path)) {
      report(
        ctx,
        '/server/path',
        `"${server.path}" is a route of the built-in authorization server (issuer ${builtin.issuer}); choose another MCP path or issuer`,
      );
    }
  }
  const certs =
    (server.tls !== undefined && server.tls.clientCertificates !== 'none') ||
    server.forwardedClientCertHeader !== undefined;
  builtin.clients.forEach((c, i) => {
    if (c.auth === 'tls_client_auth' && !certs) {
      report(
        ctx,
        `/auth/builtin/clients/${i}/auth`,
        'tls_client_auth needs client certificates: set server.tls.clientCertificates to "request" or "require", or server.forwardedClientCertHeader behind a proxy',
      );
    }
  });
}
