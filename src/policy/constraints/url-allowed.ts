import { fail, PASS, type CheckResult } from './check-result.js';
import { isBlockedIPv4, isBlockedIPv6, parseIPv4, parseIPv6 } from './ip-address.js';

/**
 * `kind: url` — the argument is a URL the upstream may fetch (threat model #12, SSRF). Parsed with the WHATWG
 * URL parser, the same one Node's `fetch` uses, so the host checked is the host a Node upstream would connect to.
 *
 * The decision is taken on the raw text, which is what the gateway forwards (threat model #8): WHATWG rewrites the
 * authority it parses (IDNA, `0x7f.1` → `127.0.0.1`, `%2e` → `.`, `https:host` → `https://host`), and another
 * parser in the upstream may not, so a URL whose authority is not already written the way WHATWG serialises it
 * is refused rather than trusted in its parsed form. Scheme and host may differ only in ASCII case (RFC 3986
 * §3.1, §3.2.2: case-insensitive), and the port only by an explicit default port.
 *
 * Refused: non-strings; empty or over-long values; whitespace and control characters (WHATWG silently strips
 * tabs and line breaks, other parsers do not); backslashes (WHATWG reads `\` as `/` in http(s) URLs, other
 * parsers do not: a classic parser differential); unparseable URLs; schemes outside the allowlist; userinfo
 * (`https://api.example.com@evil.test/`, even an empty `@`); an authority not written `scheme://host[:port]`
 * (`https:api.example.com`, `https:/api.example.com`); non-ASCII hosts (IDNA: `ＡＰＩ.example.com`, a soft
 * hyphen inside a name; write punycode); hosts WHATWG rewrites (`0x5d.184.216.34`, `api%2eexample.com`,
 * `[0:0::1]`, `1.2.3.4.`); ports written other than as WHATWG keeps them (`:`, `:0443`); IP literals in
 * loopback, private, link-local, unique-local, CGNAT, unspecified, multicast, documentation or reserved ranges,
 * IPv4 and IPv6, IPv4-mapped, -translated and -compatible IPv6 — in whatever form WHATWG normalises to an
 * address (`http://2130706433/`, `http://0x7f.1/`, `http://0177.0.0.1/`, `http://[::ffff:7f00:1]/`);
 * `localhost` and `*.localhost`; hosts not in the allowlist; ports outside `ports` when given.
 *
 * Not done, because a pure check performs no I/O: **DNS resolution**. `evil.example.org` may resolve to
 * 127.0.0.1, so the host allowlist is the real defence — list only hosts you control or trust, and never a
 * wildcard over a domain where others can create names. An upstream that fetches must still pin the resolved
 * address and refuse redirects.
 */
export type UrlRefusal =
  | 'not_a_string'
  | 'empty'
  | 'too_long'
  | 'control_character'
  | 'backslash'
  | 'unparseable'
  | 'scheme_not_allowed'
  | 'userinfo'
  | 'authority_not_canonical'
  | 'no_host'
  | 'idna_host'
  | 'host_not_canonical'
  | 'port_not_canonical'
  | 'blocked_address'
  | 'localhost'
  | 'host_not_allowed'
  | 'port_not_allowed';

export const MAX_URL_LENGTH = 8192;

/** A host allowlist entry: an exact host, or `*.domain` (any name below `domain`, at a dot boundary). */
export interface HostPattern {
  readonly text: string;
  readonly exact?: string;
  /** For `*.example.org`: `.example.org`. */
  readonly dotSuffix?: string;
}

export interface UrlRule {
  readonly schemes: ReadonlySet<string>;
  readonly hosts: readonly HostPattern[];
  readonly ports?: ReadonlySet<number>;
}

const WHITESPACE_OR_CONTROL =
  /[\u0000-\u0020\u007f-\u009f\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]/;
const SPECIAL_SCHEMES = new Set(['http', 'https', 'ws', 'wss', 'ftp', 'file']);
const DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443, ws: 80, wss: 443, ftp: 21 };

export function checkUrl(value: unknown, rule: UrlRule): CheckResult<UrlRefusal> {
  if (typeof value !== 'string') return fail('not_a_string');
  if (value.length === 0) return fail('empty');
  if (value.length > MAX_URL_LENGTH) return fail('too_long');
  if (WHITESPACE_OR_CONTROL.test(value)) return fail('control_character');
  if (value.includes('\\')) return fail('backslash');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail('unparseable');
  }
  const scheme = url.protocol.slice(0, -1);
  if (!rule.schemes.has(scheme)) return fail('scheme_not_allowed');
  if (url.username !== '' || url.password !== '' || authorityHasAt(value)) return fail('userinfo');
  const authority = rawAuthority(value, scheme);
  if (authority === undefined) return fail('authority_not_canonical');

  let host = url.hostname;
  if (host === '') return fail('no_host');
  // Non-special schemes keep the host as written; read it the way an http client would (0x7f.1 → 127.0.0.1).
  if (!SPECIAL_SCHEMES.has(scheme)) {
    try {
      host = new URL(`http://${host}/`).hostname;
    } catch {
      return fail('unparseable');
    }
  }
  if (host.startsWith('[')) {
    const groups = parseIPv6(host.slice(1, -1));
    if (groups === undefined || isBlockedIPv6(groups)) return fail('blocked_address');
  } else {
    const v4 = parseIPv4(host);
    if (v4 !== undefined && isBlockedIPv4(v4)) return fail('blocked_address');
  }
  const written = authorityRefusal(authority, host, url.port, DEFAULT_PORTS[scheme]);
  if (written !== undefined) return fail(written);
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host === 'localhost' || host.endsWith('.localhost')) return fail('localhost');
  if (!rule.hosts.some((h) => hostMatches(host, h))) return fail('host_not_allowed');
  if (rule.ports !== undefined) {
    const port = url.port === '' ? DEFAULT_PORTS[scheme] : Number(url.port);
    if (port === undefined || !rule.ports.has(port)) return fail('port_not_allowed');
  }
  return PASS;
}

/**
 * Builds an allowlist entry, or says why it is unusable. Entries are written the way WHATWG serialises hosts
 * (lower case, punycode, IPv6 in brackets), so that comparison is plain string equality.
 */
export function parseHostPattern(text: string): { ok: true; host: HostPattern } | { ok: false; message: string } {
  const wildcard = text.startsWith('*.');
  const name = wildcard ? text.slice(2) : text;
  if (name.includes('*'))
    return { ok: false, message: 'a wildcard is only allowed as a leading "*." (e.g. *.example.org)' };
  let canonical: string;
  try {
    canonical = new URL(`http://${name}/`).hostname;
  } catch {
    return { ok: false, message: 'is not a host name' };
  }
  if (canonical !== name || /[/?#@:]/.test(name.replace(/^\[.*\]$/, ''))) {
    return {
      ok: false,
      message: `must be written as a bare host in canonical form${canonical !== name && !/[/?#@]/.test(name) ? ` ("${wildcard ? '*.' : ''}${canonical}")` : ''}`,
    };
  }
  if (wildcard && (canonical.startsWith('[') || parseIPv4(canonical) !== undefined)) {
    return { ok: false, message: 'a wildcard cannot apply to an IP address' };
  }
  if (wildcard && !canonical.includes('.'))
    return {
      ok: false,
      message: 'a wildcard must be below a domain with at least two labels (e.g. *.example.org, not *.org)',
    };
  return {
    ok: true,
    host: Object.freeze(wildcard ? { text, dotSuffix: `.${canonical}` } : { text, exact: canonical }),
  };
}

function hostMatches(host: string, pattern: HostPattern): boolean {
  if (pattern.exact !== undefined) return host === pattern.exact;
  const suffix = pattern.dotSuffix!;
  return host.length > suffix.length && host.endsWith(suffix);
}

/** An `@` between `//` and the end of the authority, even when WHATWG leaves the username empty. */
function authorityHasAt(value: string): boolean {
  const start = value.indexOf('//');
  if (start < 0) return false;
  const rest = value.slice(start + 2);
  const end = rest.search(/[/?#]/);
  return (end < 0 ? rest : rest.slice(0, end)).includes('@');
}

/** The authority as written, when the value starts `scheme://` (any ASCII case): up to the first `/`, `?` or `#`. */
function rawAuthority(value: string, scheme: string): string | undefined {
  const start = scheme.length + 3;
  if (value.slice(0, start).toLowerCase() !== `${scheme}://`) return undefined;
  const end = value.slice(start).search(/[/?#]/);
  return end < 0 ? value.slice(start) : value.slice(start, start + end);
}

/**
 * Why the authority as written is not the one WHATWG parsed, if it is not: the host must be the parsed host up
 * to ASCII case, and a port must be the parsed one, or the scheme's default port that WHATWG drops.
 */
function authorityRefusal(
  authority: string,
  host: string,
  port: string,
  defaultPort: number | undefined,
): UrlRefusal | undefined {
  const colon = authority.startsWith('[') ? authority.indexOf(':', authority.indexOf(']')) : authority.indexOf(':');
  const writtenHost = colon < 0 ? authority : authority.slice(0, colon);
  if (/[^\u0000-\u007f]/.test(writtenHost)) return 'idna_host';
  if (writtenHost.toLowerCase() !== host) return 'host_not_canonical';
  if (colon < 0) return undefined;
  const writtenPort = authority.slice(colon + 1);
  if (!/^[1-9][0-9]{0,4}$/.test(writtenPort)) return 'port_not_canonical';
  if (writtenPort === port || (port === '' && Number(writtenPort) === defaultPort)) return undefined;
  return 'port_not_canonical';
}
