/**
 * Property-based tests of the `kind: path` and `kind: url` constraints (threat model #8, #10, #12): whatever the
 * check admits, every other reader of the same text — a POSIX resolver, a lenient one, Unicode normalisation, a
 * second URL parser — must see the same thing the check saw. Seeded and bounded, so a run is reproducible and a
 * failure shrinks to a small counterexample.
 */
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkPathUnderRoots,
  parsePath,
  parsePathRoot,
  type PathRoot,
} from '../../src/policy/constraints/path-under-roots.js';
import { checkUrl, parseHostPattern, type UrlRule } from '../../src/policy/constraints/url-allowed.js';

const SEED = 20261207;
const NUM_RUNS = 10_000;

/**
 * Runs `property` on every generated value that `admit` lets through, and fails if fewer than `minShare` of the
 * runs were admitted: a property that is never exercised proves nothing.
 */
function assertOnAdmitted<T>(
  values: fc.Arbitrary<T>,
  admit: (value: T) => boolean,
  property: (value: T) => void,
  minShare: number,
): void {
  let admitted = 0;
  fc.assert(
    fc.property(values, (value) => {
      if (!admit(value)) return;
      admitted++;
      property(value);
    }),
    { seed: SEED, numRuns: NUM_RUNS },
  );
  expect(admitted).toBeGreaterThan(NUM_RUNS * minShare);
}

/** Mostly `good`, sometimes `bad`: enough well-formed inputs get through for the properties to be tested on them. */
function mostly(good: readonly string[], bad: readonly string[], badWeight = 2): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...good) },
    { weight: badWeight, arbitrary: fc.constantFrom(...bad) },
  );
}

// ─── kind: path ──────────────────────────────────────────────────────────────────────────────────────────

const ROOT = '/data/ok';
const roots: PathRoot[] = [(parsePathRoot(ROOT) as { ok: true; root: PathRoot }).root];

const isInside = (resolved: string): boolean => resolved === ROOT || resolved.startsWith(`${ROOT}/`);

/** One round of percent-decoding that never throws: `%XX` → that byte (read as Latin-1), the rest unchanged. */
const decodeOnce = (s: string): string =>
  s.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
/** A lax UTF-8 decoder that accepts overlong forms of `.` and `/`. */
const decodeOverlong = (s: string): string => s.replace(/%c0%ae|%e0%80%ae/gi, '.').replace(/%c0%af|%e0%80%af/gi, '/');
/** Servlet-style path parameters: `seg;params` is `seg`. */
const stripParams = (s: string): string =>
  s
    .split('/')
    .map((seg) => seg.split(';')[0])
    .join('/');
const backslashToSlash = (s: string): string => s.replace(/\\/g, '/');
const lenient = (s: string): string => stripParams(backslashToSlash(s));
/** Windows drops trailing dots and spaces of each segment. */
const trimWindows = (s: string): string =>
  s
    .split('/')
    .map((seg) => seg.replace(/[. ]+$/, ''))
    .join('/');

/** Every way we know of to read more into a path than POSIX does, alone and stacked. */
const readers: readonly [string, (p: string) => string][] = [
  ['posix', (p) => p],
  ['backslash and ;params, then one percent-decoding', (p) => lenient(decodeOnce(lenient(p)))],
  ['overlong UTF-8, then two percent-decodings', (p) => lenient(decodeOnce(decodeOnce(decodeOverlong(p))))],
  ['windows trimming', (p) => trimWindows(backslashToSlash(p))],
  ['NFC', (p) => p.normalize('NFC')],
  ['NFD', (p) => p.normalize('NFD')],
  ['NFKC', (p) => p.normalize('NFKC')],
  ['NFKD', (p) => p.normalize('NFKD')],
  ['accent and ignorable folding', (p) => p.normalize('NFKD').replace(/[\p{M}\p{Cf}]/gu, '')],
];

const PATH_SAFE = [
  ...['ok', 'a', 'b.txt', 'data', 'x y', 'é', 'e\u0301', '日本', 'ह\u093f', '(1)', '.hidden', 'a..b', 'f~', '-'],
  ...['/', '/', 'ok/', 'a/'],
];
const PATH_HOSTILE = [
  ...['..', '.', '', '//', '/./', '/../', '...', '. ', '.. ', ' '],
  ...['%2e', '%2E', '%2f', '%5c', '%25', '%', '%c0%ae', '%u002e', ';', '..;', ';/', ':', 'C:', '::$DATA'],
  ...['\\', '\\..\\', '~', '~/', '\u0000', '\n', '\u007f', '\u0085'],
  ...['\uff0e', '\u2024', '\u2025', '\ufe52', '\u2215', '\uff0f', '\u2044', '\uff3c', '\u3002', '\u00a0'],
  ...['\u0301', '\u0338', '\u0307', '\u200b', '\u200d', '\u00ad', '\ufeff', '\u202e', '\u2066', '\u200f'],
  ...['\ud800', '\udc00', '\ud83d\udcc1', '\ue000', '$', '*', '?', '|', '"', '`'],
];
const PATH_PREFIXES = ['/data/ok/', '/data/ok'];
const HOSTILE_PREFIXES = [
  ...['/data/', '/', '', '//', '/data/ok_evil/', '\\data\\ok\\', 'C:/data/ok/', '~/'],
  ...['/data/./ok/', '/data//ok/', '/data/ok/../'],
];

const pathToken = fc.oneof(
  { weight: 16, arbitrary: fc.constantFrom(...PATH_SAFE) },
  { weight: 2, arbitrary: fc.constantFrom(...PATH_HOSTILE) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 3 }) },
);
const pathValue = fc
  .tuple(mostly(PATH_PREFIXES, HOSTILE_PREFIXES), fc.array(pathToken, { maxLength: 10 }))
  .map(([prefix, tokens]) => prefix + tokens.join(''));

describe('kind: path, fuzzed (threat model #10)', () => {
  it('admits nothing that any reader would place outside the roots, and forwards exactly what it decided on', () => {
    assertOnAdmitted(
      pathValue,
      (value) => checkPathUnderRoots(value, roots).ok,
      (value) => {
        // Decided on the value's own segments: nothing normalised away, nothing to forward but the value.
        const parsed = parsePath(value);
        expect(parsed.ok).toBe(true);
        const decided = `/${(parsed as { segments: string[] }).segments.join('/')}`;
        expect(value === decided || value === `${decided}/`).toBe(true);
        // Already canonical for POSIX: resolving changes nothing but a trailing slash.
        expect(path.posix.resolve(value)).toBe(decided);
        for (const [name, read] of readers) {
          expect(isInside(path.posix.resolve('/', read(value))), `${name}: ${JSON.stringify(value)}`).toBe(true);
        }
      },
      0.05,
    );
  });

  it('refuses a value that differs from its own POSIX resolution (beyond a trailing "/"), whatever it contains', () => {
    fc.assert(
      fc.property(pathValue, (value) => {
        const resolved = path.posix.resolve('/', value);
        const canonical = value === resolved || value === `${resolved}/`;
        if (value.startsWith('/') && !canonical) expect(checkPathUnderRoots(value, roots).ok).toBe(false);
      }),
      { seed: SEED, numRuns: NUM_RUNS },
    );
  });
});

// ─── kind: url ───────────────────────────────────────────────────────────────────────────────────────────

const ALLOWED_EXACT = ['api.example.com', '93.184.216.34', '[2606:4700::1]'];
const rule: UrlRule = {
  schemes: new Set(['https', 'http']),
  hosts: [...ALLOWED_EXACT, '*.example.org'].map((h) => {
    const r = parseHostPattern(h);
    if (!r.ok) throw new Error(r.message);
    return r.host;
  }),
};
const DEFAULT_PORTS: Record<string, string> = { http: '80', https: '443' };

/** The allowlist, written again independently of the code under test. */
function allowlisted(host: string): boolean {
  const h = host.endsWith('.') ? host.slice(0, -1) : host;
  return ALLOWED_EXACT.includes(h) || (h.endsWith('.example.org') && h.length > '.example.org'.length);
}

/** RFC 3986 Appendix B: the regular expression every generic URI parser agrees with. */
const RFC3986 = /^(?:([^:/?#]+):)?(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/s;

const URL_SCHEMES = mostly(['https', 'http', 'HTTPS', 'hTTp'], ['ftp', 'foo', 'file', 'javascript']);
const URL_SEPARATORS = mostly(['://'], [':/', ':', ':///', ':\\\\', '://\t', ':////', ': //']);
const URL_USERINFO = mostly([''], ['u@', '@', 'u:p@', 'api.example.com@', 'a.example.org:x@']);
const URL_HOSTS = mostly(
  [
    ...['api.example.com', 'a.example.org', 'b.a.example.org', 'API.Example.com', 'api.example.com.'],
    ...['93.184.216.34', '[2606:4700::1]', '[2606:4700::ABCD]', 'xn--bcher-kva.example.org'],
  ],
  [
    // Spellings WHATWG rewrites into an allowed host.
    ...['0x5d.184.216.34', '1578424354', '93.184.216.34.', '0135.184.216.34', '93.184.54818'],
    ...['[2606:4700:0::1]', '[2606:4700::1%25eth0]', 'api%2eexample.com', 'a.example.org%2fevil.test'],
    ...['\uff21\uff30\uff29.example.com', 'api.exam\u00adple.com', 'a.example.org\u3002evil.test'],
    ...['b\u00fccher.example.org', 'api.example.com\u200b'],
    // Blocked or not allowed at all.
    ...['127.0.0.1', '0x7f.1', '[::1]', '[::ffff:7f00:1]', 'localhost', '169.254.169.254', '0'],
    ...['evil.test', 'api.example.com.evil.test', 'example.org', 'evilexample.org', ''],
  ],
  4,
);
const URL_PORTS = mostly(['', ':443', ':8443', ':80'], [':', ':0443', ':99999', ':+1', ':0']);
const URL_RESTS = mostly(
  ['', '/', '/x?y#z', '#@evil.test/', '?@evil.test', '/@evil.test', '/../..'],
  ['\\@evil.test/', '%2f@evil.test', '@evil.test', ':@evil.test', '\t/', '\n'],
);
const URL_NOISE = fc.oneof(
  { weight: 3, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(80), fc.string({ unit: 'binary', maxLength: 2 })) },
);

const urlValue = fc
  .tuple(URL_SCHEMES, URL_SEPARATORS, URL_USERINFO, URL_HOSTS, URL_PORTS, URL_RESTS, URL_NOISE)
  .map(([scheme, sep, user, host, port, rest, noise]) => {
    const text = scheme + sep + user + host + port + rest;
    if (noise === null) return text;
    const at = noise[0] % (text.length + 1);
    return text.slice(0, at) + noise[1] + text.slice(at);
  });

describe('kind: url, fuzzed (threat model #12)', () => {
  it('admits no URL whose scheme or host another parser would read differently, or that leaves the allowlist', () => {
    assertOnAdmitted(
      urlValue,
      (value) => checkUrl(value, rule).ok,
      (value) => {
        const url = new URL(value);
        const scheme = url.protocol.slice(0, -1);
        expect(rule.schemes.has(scheme)).toBe(true);
        expect(allowlisted(url.hostname), value).toBe(true);
        // A second, generic parser sees the same scheme, host and port in the text as it is forwarded.
        const m = RFC3986.exec(value)!;
        expect(m[1]?.toLowerCase(), value).toBe(scheme);
        const authority = m[2] ?? '';
        expect(m[2], value).toBeDefined();
        expect(authority.includes('@'), value).toBe(false);
        const hostEnd = authority.startsWith('[') ? authority.indexOf(']') : 0;
        const colon = authority.indexOf(':', hostEnd);
        const host = colon < 0 ? authority : authority.slice(0, colon);
        const port = colon < 0 ? '' : authority.slice(colon + 1);
        expect(host.toLowerCase(), value).toBe(url.hostname);
        const samePort = port === '' || port === url.port || (url.port === '' && port === DEFAULT_PORTS[scheme]);
        expect(samePort, value).toBe(true);
      },
      0.05,
    );
  });
});
