import { isIP } from 'node:net';

/**
 * DNS-rebinding defence (MCP transports §Security Warning; threat model #7): a browser page on another
 * origin must not reach the gateway. Non-browser clients send no Origin and pass; a present Origin must be a
 * loopback origin or one the config allows exactly. `null` (sandboxed frames, file://) is refused.
 */
export class OriginPolicy {
  private readonly allowed: ReadonlySet<string>;

  constructor(allowedOrigins: readonly string[], private readonly loopbackHostOnly: boolean) {
    this.allowed = new Set(allowedOrigins.map((o) => normaliseOrigin(o)).filter((o): o is string => o !== undefined));
  }

  originAllowed(origin: string | undefined): boolean {
    if (origin === undefined) return true;
    const normal = normaliseOrigin(origin);
    if (normal === undefined) return false;
    if (this.allowed.has(normal)) return true;
    const url = new URL(normal);
    return isLoopbackHostname(url.hostname);
  }

  /** When the gateway listens on loopback only, the Host header must name loopback too (a rebinding tell). */
  hostAllowed(host: string | undefined): boolean {
    if (!this.loopbackHostOnly) return true;
    if (host === undefined) return false;
    // Clients send the same Host on every request: remember answers (bounded) instead of parsing a URL each time.
    const known = this.hosts.get(host);
    if (known !== undefined) return known;
    let ok: boolean;
    try {
      ok = isLoopbackHostname(new URL(`http://${host}`).hostname);
    } catch {
      ok = false;
    }
    if (this.hosts.size >= 256) this.hosts.clear();
    this.hosts.set(host, ok);
    return ok;
  }

  private readonly hosts = new Map<string, boolean>();
}

export function normaliseOrigin(origin: string): string | undefined {
  if (origin === 'null') return undefined;
  try {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    if (url.username !== '' || url.password !== '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

export function isLoopbackHostname(hostname: string): boolean {
  const h = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1';
  return false;
}
