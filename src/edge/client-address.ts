/**
 * The address a request comes from, for per-IP limits and audit records: the socket peer, unless that peer is one
 * of `server.trustedProxies` — then the `X-Forwarded-For` chain is walked from the right (the hop the nearest proxy
 * appended) past every trusted proxy, and the first untrusted hop is the client. Entries left of it were written
 * by the client itself and are never believed, so a spoofed header cannot buy a fresh rate-limit budget.
 *
 * This is the algorithm of `proxy-addr` (what fastify's `trustProxy` uses), written against our matcher so the
 * same list decides forwarded certificates (client-cert.ts) and forwarded addresses.
 */
import net from 'node:net';
import type { TrustedProxyMatcher } from './trusted-proxies.js';

/** What the function reads from a request (fastify's and Node's requests both fit). */
export interface AddressSource {
  readonly socket: { readonly remoteAddress?: string | undefined };
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** Longest `X-Forwarded-For` chain looked at: a proxy chain longer than this is a configuration we do not trust. */
const MAX_HOPS = 20;

/**
 * The client address of `request`; `undefined` only when the socket has none (already closed). A malformed
 * forwarded hop stops the walk at the proxy that passed it on: its own address is the best one known.
 */
export function clientAddress(request: AddressSource, isTrustedProxy: TrustedProxyMatcher): string | undefined {
  let address = request.socket.remoteAddress;
  if (address === undefined || !isTrustedProxy(address)) return address;
  const header = request.headers['x-forwarded-for'];
  // Node joins repeated X-Forwarded-For headers with ", ", so the list order is preserved.
  const text = Array.isArray(header) ? header.join(',') : header;
  if (text === undefined || text === '') return address;
  const hops = text.split(',').slice(-MAX_HOPS);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = stripPort(hops[i]!.trim());
    if (net.isIP(hop) === 0) return address;
    address = hop;
    if (!isTrustedProxy(address)) return address;
  }
  // Every hop is a trusted proxy: the leftmost is as close to the client as we can see.
  return address;
}

/** `1.2.3.4:5678` and `[2001:db8::1]:443` (some proxies append the port) to the bare address. */
function stripPort(hop: string): string {
  if (hop.startsWith('[')) {
    const end = hop.indexOf(']');
    return end === -1 ? hop : hop.slice(1, end);
  }
  const colon = hop.indexOf(':');
  return colon !== -1 && colon === hop.lastIndexOf(':') ? hop.slice(0, colon) : hop;
}
