/**
 * IP literals that a URL argument must not point at (threat model #12): every range that reaches the host
 * itself, a private network, or something other than one public unicast host. Parsers accept the canonical forms
 * the WHATWG URL parser produces (dotted-quad IPv4; IPv6 without brackets, possibly with a trailing dotted quad).
 */

/** `a.b.c.d` with decimal octets → 32-bit number, or undefined. */
export function parseIPv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const octet = Number(p);
    if (octet > 255) return undefined;
    n = n * 256 + octet;
  }
  return n;
}

/** An IPv6 address (no brackets, no zone) → its eight 16-bit groups, or undefined. */
export function parseIPv6(text: string): number[] | undefined {
  if (text.length === 0 || text.length > 45 || !/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  let body = text;
  const lastColon = body.lastIndexOf(':');
  if (body.includes('.', lastColon)) {
    // A trailing dotted quad (`::ffff:1.2.3.4`) stands for the last two groups.
    const v4 = parseIPv4(body.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    body = `${body.slice(0, lastColon + 1)}${Math.floor(v4 / 65536).toString(16)}:${(v4 % 65536).toString(16)}`;
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const parse = (s: string): number[] | undefined => {
    if (s === '') return [];
    const groups: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      groups.push(Number.parseInt(g, 16));
    }
    return groups;
  };
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  if (head === undefined || rest === undefined) return undefined;
  const explicit = head.length + rest.length;
  if (halves.length === 1 ? explicit !== 8 : explicit > 7) return undefined;
  return [...head, ...new Array<number>(8 - explicit).fill(0), ...rest];
}

type Range4 = readonly [base: number, bits: number];

const BLOCKED_V4: readonly Range4[] = [
  [ip4(0, 0, 0, 0), 8], // "this network", 0.0.0.0 unspecified
  [ip4(10, 0, 0, 0), 8], // private
  [ip4(100, 64, 0, 0), 10], // carrier-grade NAT
  [ip4(127, 0, 0, 0), 8], // loopback
  [ip4(169, 254, 0, 0), 16], // link-local (cloud metadata 169.254.169.254)
  [ip4(172, 16, 0, 0), 12], // private
  [ip4(192, 0, 0, 0), 24], // IETF protocol assignments
  [ip4(192, 0, 2, 0), 24], // TEST-NET-1
  [ip4(192, 88, 99, 0), 24], // 6to4 relay anycast
  [ip4(192, 168, 0, 0), 16], // private
  [ip4(198, 18, 0, 0), 15], // benchmarking
  [ip4(198, 51, 100, 0), 24], // TEST-NET-2
  [ip4(203, 0, 113, 0), 24], // TEST-NET-3
  [ip4(224, 0, 0, 0), 4], // multicast
  [ip4(240, 0, 0, 0), 4], // reserved, broadcast
];

export function isBlockedIPv4(n: number): boolean {
  for (const [base, bits] of BLOCKED_V4) {
    const size = 2 ** (32 - bits);
    if (n >= base && n < base + size) return true;
  }
  return false;
}

/**
 * Blocked: unspecified, loopback, IPv4-compatible (::/96), IPv4-mapped (::ffff:0:0/96) and IPv4-translated
 * (::ffff:0:0:0/96, RFC 2765 §2.1: stacks that honour it connect to the embedded address) — a URL has no
 * business naming an IPv4 host that way, whatever the address — discard (100::/64), IETF assignments and
 * Teredo (2001::/23), documentation (2001:db8::/32, 3fff::/20 RFC 9637), unique-local (fc00::/7), link-local
 * (fe80::/10), site-local (fec0::/10), multicast (ff00::/8), local-use NAT64 (64:ff9b:1::/48); and NAT64
 * (64:ff9b::/96) or 6to4 (2002::/16) addresses whose embedded IPv4 address is blocked.
 */
export function isBlockedIPv6(g: readonly number[]): boolean {
  const [g0, g1, g2, g3, g4, g5, g6, g7] = g as [number, number, number, number, number, number, number, number];
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && (g5 === 0 || g5 === 0xffff)) return true;
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0xffff && g5 === 0) return true;
  if (g0 === 0x0100 && g1 === 0 && g2 === 0 && g3 === 0) return true;
  if (g0 === 0x2001 && g1 < 0x0200) return true;
  if (g0 === 0x2001 && g1 === 0x0db8) return true;
  if (g0 === 0x3fff && g1 < 0x1000) return true;
  if ((g0 & 0xfe00) === 0xfc00) return true;
  if ((g0 & 0xffc0) === 0xfe80 || (g0 & 0xffc0) === 0xfec0) return true;
  if ((g0 & 0xff00) === 0xff00) return true;
  if (g0 === 0x0064 && g1 === 0xff9b) {
    if (g2 === 0x0001) return true;
    if (g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return isBlockedIPv4(g6 * 65536 + g7);
  }
  if (g0 === 0x2002) return isBlockedIPv4(g1 * 65536 + g2);
  return false;
}

function ip4(a: number, b: number, c: number, d: number): number {
  return ((a * 256 + b) * 256 + c) * 256 + d;
}
