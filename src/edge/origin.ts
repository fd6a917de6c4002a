import { isIP } from 'node:net';

export interface OriginPolicyOptions {
  /** Origins allowed exactly as browsers serialise them (RFC 6454 §6.2): `server.allowedOrigins`, our own. */
  readonly allowedOrigins: readonly string[];
  /** Host names allowed in `Host` besides IP literals and loopback names: `server.allowedHosts`, our public hosts. */
  readonly allowedHosts: readonly string[];
  /** The listener is on a loopback address: its own origin is every loopback name at its port. */
  readonly loopback: boolean;
  /** The listener's scheme (`https` with `server.tls`). */
  readonly scheme: 'http' | 'https';
}

/**
 * DNS-rebinding and browser-CSRF defence (MCP transports §Security Warning; threat model #7). Non-browser
 * clients send no Origin and pass; a present Origin must be one of the gateway's own origins or one the config
 * lists, compared as the exact string browsers send (no parsing per request). A page on another loopback port
 * (`http://localhost:3000`) is another origin and is refused. `null` (sandboxed frames, file://) is refused.
 *
 * `Host` must name the gateway: a rebinding page makes the browser send its own (attacker's) DNS name. IP
 * literals and loopback names pass (a browser sends those only for a page whose own origin is that address, which
 * the Origin check covers); any other name must be listed. Kubernetes probes (Host: the pod IP) need no entry.
 */
export class OriginPolicy {
  private readonly allowed: ReadonlySet<string>;
  private readonly hostNames: ReadonlySet<string>;
  private readonly loopback: boolean;
  private readonly scheme: 'http' | 'https';
  // The own loopback origins of the one port the listener has (known from the socket once it listens: port 0).
  private ownPort = -1;
  private own: ReadonlySet<string> = new Set();
  // Clients send the same Host on every request: answers are remembered (bounded) instead of parsed each time.
  private readonly hosts = new Map<string, boolean>();

  constructor(opts: OriginPolicyOptions) {
    this.allowed = new Set(opts.allowedOrigins);
    this.hostNames = new Set(opts.allowedHosts.map((h) => h.toLowerCase()));
    this.loopback = opts.loopback;
    this.scheme = opts.scheme;
  }

  /** `localPort`: the port the request arrived on (the gateway's own origin on loopback). */
  originAllowed(origin: string | undefined, localPort: number | undefined): boolean {
    if (origin === undefined) return true;
    if (this.allowed.has(origin)) return true;
    if (!this.loopback || localPort === undefined) return false;
    if (localPort !== this.ownPort) {
      this.own = loopbackOrigins(this.scheme, localPort);
      this.ownPort = localPort;
    }
    return this.own.has(origin);
  }

  hostAllowed(host: string | undefined): boolean {
    if (host === undefined) return false;
    const known = this.hosts.get(host);
    if (known !== undefined) return known;
    const name = hostnameOf(host);
    const literal = name !== undefined && (isLoopbackHostname(name) || isIP(unbracket(name)) !== 0);
    const ok = literal || (name !== undefined && this.hostNames.has(name));
    if (this.hosts.size >= 256) this.hosts.clear();
    this.hosts.set(host, ok);
    return ok;
  }
}

/** The origins a browser sends for a page of this listener reached as 127.0.0.1, localhost or [::1]. */
function loopbackOrigins(scheme: 'http' | 'https', port: number): ReadonlySet<string> {
  // RFC 6454 §6.2: the default port is not serialised.
  const suffix = (scheme === 'http' && port === 80) || (scheme === 'https' && port === 443) ? '' : `:${port}`;
  return new Set(['127.0.0.1', 'localhost', '[::1]'].map((h) => `${scheme}://${h}${suffix}`));
}

/** The host name of a `Host` header value (RFC 9110 §7.2: uri-host [":" port]), lower-cased; undefined if malformed. */
function hostnameOf(host: string): string | undefined {
  try {
    const url = new URL(`http://${host}`);
    const bare = url.username === '' && url.password === '' && url.pathname === '/' && url.search === '' && !url.hash;
    return bare ? url.hostname : undefined;
  } catch {
    return undefined;
  }
}

function unbracket(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

export function isLoopbackHostname(hostname: string): boolean {
  const h = unbracket(hostname);
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1';
  return false;
}
