/** What a listener address means: loopback, or every interface. */
import net from 'node:net';

/** 127.0.0.0/8, ::1 (and IPv4-mapped 127/8), localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === 'localhost.') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) {
    // The URL parser writes IPv6 in its shortest form, so `0:0:0:0:0:0:0:1` and `::1` compare equal.
    const canonical = new URL(`http://[${h}]/`).hostname;
    return canonical === '[::1]' || canonical.startsWith('[::ffff:7f');
  }
  return false;
}

/** 0.0.0.0 and :: — "every interface", not an address anyone connects to. */
export function isUnspecifiedAddress(host: string): boolean {
  return host === '0.0.0.0' || (net.isIPv6(host) && new URL(`http://[${host}]/`).hostname === '[::]');
}
