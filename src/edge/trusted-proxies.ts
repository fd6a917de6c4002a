/**
 * `server.trustedProxies`: the peers whose forwarded headers (a client certificate from a TLS-terminating
 * ingress, threat model #20) are believed. Everyone else's copies of those headers are ignored and stripped.
 * Entries are single addresses or CIDR blocks, IPv4 or IPv6; an IPv4-mapped IPv6 peer (`::ffff:10.0.0.1`, what a
 * dual-stack listener reports for an IPv4 client) matches the IPv4 entries and vice versa.
 */
import net from 'node:net';

/** True when `address` (a socket's `remoteAddress`) is one of the configured proxies. */
export type TrustedProxyMatcher = (address: string | undefined) => boolean;

/** Nothing is trusted: the matcher for an empty list. */
const NOBODY: TrustedProxyMatcher = () => false;

/**
 * Builds the matcher once, at start. Throws on an entry that is not an address or CIDR (the config loader
 * reports those with a line number first; this is the fail-closed backstop).
 */
export function trustedProxyMatcher(entries: readonly string[] | undefined): TrustedProxyMatcher {
  if (entries === undefined || entries.length === 0) return NOBODY;
  const list = new net.BlockList();
  for (const entry of entries) addEntry(list, entry);
  return (address) => {
    const parsed = address === undefined ? undefined : normaliseAddress(address);
    return parsed !== undefined && list.check(parsed.address, parsed.family);
  };
}

/** Is this text a valid `trustedProxies` entry? (For config validation.) */
export function isTrustedProxyEntry(entry: string): boolean {
  try {
    addEntry(new net.BlockList(), entry);
    return true;
  } catch {
    return false;
  }
}

function addEntry(list: net.BlockList, entry: string): void {
  const text = entry.trim();
  const slash = text.indexOf('/');
  const ip = normaliseAddress(slash === -1 ? text : text.slice(0, slash));
  if (ip === undefined) throw new Error(`trustedProxies: "${entry}" is not an IP address or CIDR`);
  if (slash === -1) {
    list.addAddress(ip.address, ip.family);
    return;
  }
  const prefixText = text.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  const max = ip.family === 'ipv4' && !ip.mapped ? 32 : 128;
  if (!Number.isInteger(prefix) || prefix > max)
    throw new Error(`trustedProxies: "${entry}" has an invalid prefix length`);
  if (ip.mapped && prefix >= 96) {
    // `::ffff:10.0.0.0/104` was normalised to IPv4: its prefix loses the 96 bits of the mapping.
    list.addSubnet(ip.address, prefix - 96, 'ipv4');
  } else if (ip.mapped) {
    list.addSubnet(ip.written, prefix, 'ipv6');
  } else {
    list.addSubnet(ip.address, prefix, ip.family);
  }
}

interface Address {
  address: string;
  family: 'ipv4' | 'ipv6';
  /** Written as IPv4-mapped IPv6 and normalised to IPv4. */
  mapped: boolean;
  /** As written, without brackets or zone. */
  written: string;
}

const MAPPED_V4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

function normaliseAddress(text: string): Address | undefined {
  // A scoped link-local address (`fe80::1%eth0`): the zone names an interface, not part of the address.
  let address = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const zone = address.indexOf('%');
  if (zone !== -1) address = address.slice(0, zone);
  const mapped = MAPPED_V4.exec(address);
  if (mapped?.[1] !== undefined && net.isIPv4(mapped[1]))
    return { address: mapped[1], family: 'ipv4', mapped: true, written: address };
  if (net.isIPv4(address)) return { address, family: 'ipv4', mapped: false, written: address };
  if (net.isIPv6(address)) return { address, family: 'ipv6', mapped: false, written: address };
  return undefined;
}
