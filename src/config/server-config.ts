/** The `server` section: listener, Origin/Host allow-lists, trusted proxies, edge limits and TLS. */
import net from 'node:net';
import path from 'node:path';
import { CONFIG_DEFAULTS } from './defaults.js';
import { checkPemFile, checkPrivateKey } from './key-material.js';
import { report, resolveSecret, type LoadContext } from './load-context.js';
import type { SecretRef } from './secrets.js';
import type { HttpRateLimitConfig, OverloadConfig, ServerConfig, TlsConfig } from './types.js';

interface RawTls {
  certFile: string;
  key: SecretRef;
  clientCaFile?: string;
  clientCertificates?: TlsConfig['clientCertificates'];
  minVersion?: TlsConfig['minVersion'];
}
/** `server` as written (the schema has checked the shapes and ranges). */
export type RawServer = Partial<Omit<ServerConfig, 'tls' | 'httpRateLimit' | 'overload'>> & {
  tls?: RawTls;
  httpRateLimit?: { enabled?: boolean } & {
    [K in 'oauth' | 'registration' | 'sessions' | 'authFailures']?: Partial<HttpRateLimitConfig[K]>;
  };
  overload?: Partial<OverloadConfig>;
};

export function normaliseServer(raw: RawServer, ctx: LoadContext): ServerConfig {
  const { tls: rawTls, forwardedClientCertHeader, httpRateLimit, overload, ...rest } = raw;
  const base = { ...CONFIG_DEFAULTS.server, ...rest, ...edgeLimits(httpRateLimit, overload) };
  if (base.host.includes(':') && !net.isIPv6(base.host))
    report(ctx, '/server/host', 'must be a valid IPv6 address (without brackets)');
  // Node refuses to start a server whose headers timeout exceeds its request timeout.
  if (base.headersTimeoutMs > base.requestTimeoutMs) {
    report(ctx, '/server/headersTimeoutMs', `must not exceed requestTimeoutMs (${base.requestTimeoutMs})`);
  }
  base.allowedOrigins.forEach((origin, i) => {
    let canonical: string;
    try {
      canonical = new URL(origin).origin;
    } catch {
      report(ctx, `/server/allowedOrigins/${i}`, 'is not a valid origin (scheme://host[:port])');
      return;
    }
    // Browsers send the serialised origin; a non-canonical entry (upper case, default port) would never match.
    if (canonical !== origin)
      report(ctx, `/server/allowedOrigins/${i}`, `must be written exactly as browsers send it: "${canonical}"`);
  });
  base.allowedHosts.forEach((host, i) => checkAllowedHost(host, `/server/allowedHosts/${i}`, ctx));
  base.trustedProxies.forEach((entry, i) => checkProxyAddress(entry, `/server/trustedProxies/${i}`, ctx));
  if (forwardedClientCertHeader !== undefined && base.trustedProxies.length === 0) {
    report(
      ctx,
      '/server/forwardedClientCertHeader',
      'needs server.trustedProxies: a forwarded client certificate is only believed from listed proxy addresses, and the list is empty',
    );
  }
  const tls = rawTls === undefined ? undefined : normaliseTls(rawTls, ctx);
  return {
    ...base,
    ...(tls !== undefined ? { tls } : {}),
    // Node hands header names to us lower-cased; storing the same form lets the edge look it up directly.
    ...(forwardedClientCertHeader !== undefined
      ? { forwardedClientCertHeader: forwardedClientCertHeader.toLowerCase() }
      : {}),
  };
}

/** `server.httpRateLimit` and `server.overload`, merged key by key over the defaults (a partial block keeps the rest). */
function edgeLimits(
  rl: RawServer['httpRateLimit'],
  overload: RawServer['overload'],
): Pick<ServerConfig, 'httpRateLimit' | 'overload'> {
  const d = CONFIG_DEFAULTS.server;
  return {
    httpRateLimit: {
      enabled: rl?.enabled ?? d.httpRateLimit.enabled,
      oauth: { ...d.httpRateLimit.oauth, ...rl?.oauth },
      registration: { ...d.httpRateLimit.registration, ...rl?.registration },
      sessions: { ...d.httpRateLimit.sessions, ...rl?.sessions },
      authFailures: { ...d.httpRateLimit.authFailures, ...rl?.authFailures },
    },
    overload: { ...d.overload, ...overload },
  };
}

/** One `allowedHosts` entry: a host name as the URL parser writes it (lower case, no port), compared with `Host`. */
function checkAllowedHost(host: string, pointer: string, ctx: LoadContext): void {
  let parsed: string | undefined;
  try {
    const url = new URL(`http://${host}`);
    parsed = url.host === url.hostname && url.pathname === '/' && url.username === '' ? url.hostname : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined) {
    report(
      ctx,
      pointer,
      'is not a host name; write the name alone, without scheme, port or path (e.g. mcp.example.com)',
    );
  } else if (parsed !== host) {
    report(ctx, pointer, `must be written as clients send it in Host: "${parsed}"`);
  }
}

const PROXY_EXAMPLE = 'e.g. 10.0.0.0/8, 192.168.1.10 or ::1';

/** One `trustedProxies` entry: an IPv4/IPv6 address or `address/prefix`, as `node:net` BlockList takes them. */
function checkProxyAddress(entry: string, pointer: string, ctx: LoadContext): void {
  const slash = entry.indexOf('/');
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const prefixText = slash < 0 ? undefined : entry.slice(slash + 1);
  const family = net.isIP(address);
  const prefix = prefixText !== undefined && /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : undefined;
  if (family === 0 || (prefixText !== undefined && (prefix === undefined || prefix > (family === 6 ? 128 : 32)))) {
    const why = family !== 0 ? ` (the prefix length must be 0-${family === 6 ? 128 : 32})` : '';
    report(ctx, pointer, `is not an IP address or CIDR range${why}; ${PROXY_EXAMPLE}`);
    return;
  }
  try {
    const list = new net.BlockList();
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, prefix, type);
  } catch {
    report(ctx, pointer, `is not an IP address or CIDR range; ${PROXY_EXAMPLE}`);
    return;
  }
  // Trusting every peer lets any client forge the forwarded headers (a client certificate, its address).
  if (prefix === 0)
    report(
      ctx,
      pointer,
      "trusts every address, so any client could forge forwarded headers; list the proxies' own addresses or subnets",
    );
}

function normaliseTls(raw: RawTls, ctx: LoadContext): TlsConfig | undefined {
  const at = '/server/tls';
  const d = CONFIG_DEFAULTS.tls;
  const certFile = path.resolve(ctx.secrets.baseDir, raw.certFile);
  checkPemFile(certFile, `${at}/certFile`, 'a certificate', ctx);
  const clientCaFile = raw.clientCaFile === undefined ? undefined : path.resolve(ctx.secrets.baseDir, raw.clientCaFile);
  if (clientCaFile !== undefined) checkPemFile(clientCaFile, `${at}/clientCaFile`, 'a CA certificate', ctx);
  const clientCertificates = raw.clientCertificates ?? d.clientCertificates;
  if (clientCertificates !== 'none' && clientCaFile === undefined) {
    report(
      ctx,
      `${at}/clientCertificates`,
      `"${clientCertificates}" needs tls.clientCaFile: client certificates are checked against that CA only, never against public roots`,
    );
  }
  if (clientCertificates === 'none' && clientCaFile !== undefined) {
    report(
      ctx,
      `${at}/clientCaFile`,
      'is unused while tls.clientCertificates is "none"; set clientCertificates to "request" or "require", or remove clientCaFile',
      'key',
    );
  }
  const key = resolveSecret(raw.key, `${at}/key`, ctx);
  if (key !== undefined) checkPrivateKey(key, `${at}/key`, ctx);
  if (key === undefined) return undefined;
  return {
    certFile,
    key,
    ...(clientCaFile !== undefined ? { clientCaFile } : {}),
    clientCertificates,
    minVersion: raw.minVersion ?? d.minVersion,
  };
}
