import { describe, expect, it } from 'vitest';
import { isBlockedIPv4, isBlockedIPv6, parseIPv4, parseIPv6 } from '../../src/policy/constraints/ip-address.js';
import { checkNoLeadingDash } from '../../src/policy/constraints/no-leading-dash.js';
import {
  checkPathUnderRoots,
  parsePath,
  parsePathRoot,
  type PathRoot,
} from '../../src/policy/constraints/path-under-roots.js';
import {
  checkUrl,
  parseHostPattern,
  type HostPattern,
  type UrlRule,
} from '../../src/policy/constraints/url-allowed.js';
import { parseFieldPath, readField, redactArguments } from '../../src/policy/field-path.js';
import { nameGlob, uriGlob } from '../../src/policy/glob.js';

function root(text: string): PathRoot {
  const r = parsePathRoot(text);
  if (!r.ok) throw new Error(`bad root ${text}: ${r.reason}`);
  return r.root;
}

const roots = [root('/data/ok')];
const pathReason = (value: unknown, rs: readonly PathRoot[] = roots): string => {
  const r = checkPathUnderRoots(value, rs);
  return r.ok ? 'ok' : r.reason;
};

describe('kind: path (threat model #10)', () => {
  it('admits canonical paths at or below a root, in any script, NFC or NFD', () => {
    for (const p of [
      '/data/ok',
      '/data/ok/',
      '/data/ok/a.txt',
      '/data/ok/sub/dir/file',
      '/data/ok/sub/dir/',
      '/data/ok/.hidden',
      '/data/ok/a..b',
      '/data/ok/file~',
      '/data/ok/file (1).txt',
      "/data/ok/Tom & Jerry's [draft] #2 + v1,2=3@x^{y}!.md",
      '/data/ok/-rf',
      '/data/ok/résumé.txt', // NFC
      '/data/ok/re\u0301sume\u0301.txt', // NFD, as macOS writes names
      '/data/ok/हिन्दी.txt', // Devanagari: vowel signs and virama are combining marks after letters
      '/data/ok/日本語/ファイル.txt',
      '/data/ok/Ελληνικά/٣.txt',
    ]) {
      expect(pathReason(p), p).toBe('ok');
    }
  });

  it('compares segment by segment: a shared string prefix is not containment (CVE-2025-53110)', () => {
    expect(pathReason('/data/ok_evil')).toBe('outside_roots');
    expect(pathReason('/data/ok_evil/x')).toBe('outside_roots');
    expect(pathReason('/data/okay')).toBe('outside_roots');
    expect(pathReason('/data/o')).toBe('outside_roots');
    expect(pathReason('/data')).toBe('outside_roots');
    expect(pathReason('/')).toBe('outside_roots');
    expect(pathReason('/DATA/ok/a')).toBe('outside_roots');
    expect(pathReason('/etc/passwd')).toBe('outside_roots');
  });

  // Defect 7: these were normalised away and then the raw text was forwarded (threat model #8).
  it('refuses doubled slashes anywhere, not only at the start, instead of normalising them', () => {
    for (const p of ['/data//ok/x', '/data/ok//x', '/data/ok/x//', '/data/ok///', '/data/ok//../../etc/passwd']) {
      expect(pathReason(p), p).toBe('empty_segment');
    }
    expect(pathReason('//data/ok/a')).toBe('unc_path');
    expect(pathReason('//server/share/x')).toBe('unc_path');
  });

  it('refuses "." segments instead of normalising them', () => {
    for (const p of ['/data/./ok/x', '/data/ok/./x', '/data/ok/.', '/data/ok/./', '/./data/ok/x', '/data/ok/. /x']) {
      expect(pathReason(p), p).toBe('dot_segment');
    }
  });

  it('refuses ".." segments, including ones Windows would trim to ".."', () => {
    for (const p of [
      '/data/ok/../secret',
      '/data/ok/..',
      '/data/ok/a/../../x',
      '/data/ok/a/../b',
      '/data/ok/.../x',
      '/data/ok/.. /x',
      '/data/ok/. ./x',
    ]) {
      expect(pathReason(p), p).toBe('dot_dot');
    }
  });

  it('refuses segments ending in a dot or a space (Windows trims them: "secret." opens "secret")', () => {
    for (const p of [
      '/data/ok/secret.',
      '/data/ok/secret ',
      '/data/ok/a./x',
      '/data/ok/a /x',
      '/data/ok/ /x',
      '/data/ok/x/  ',
    ]) {
      expect(pathReason(p), p).toBe('trailing_dot_or_space');
    }
  });

  it('refuses every percent sign: encoded dots, separators, double and overlong encodings alike', () => {
    for (const p of [
      '/data/ok/%2e%2e/secret',
      '/data/ok/%2E%2E/secret',
      '/data/ok/..%2fsecret',
      '/data/ok/%2e%2e%2fsecret',
      '/data/ok/..%5csecret',
      '/data/ok/%252e%252e/secret',
      '/data/ok/a%00.txt',
      '/data/ok/%c0%ae%c0%ae/secret',
      '/data/ok/%e0%80%ae/x',
      '/data/ok/%u002e%u002e/x',
      '/data/ok/100%20done',
      '/data/ok/100%',
    ]) {
      expect(pathReason(p), p).toBe('encoded_character');
    }
  });

  it('refuses ";" path parameters (..;/ reads as ../ to servers that strip them)', () => {
    for (const p of ['/data/ok/..;/secret', '/data/ok/.;/x', '/data/ok/a;jsessionid=1', '/data/ok/x;/../../etc']) {
      expect(pathReason(p), p).toBe('path_parameter');
    }
  });

  it('refuses backslashes (mixed separators)', () => {
    for (const p of ['/data/ok\\..\\..\\etc\\passwd', '/data/ok/a\\b', '\\data\\ok\\a', '\\\\server\\share\\x']) {
      expect(pathReason(p), p).toBe('backslash');
    }
  });

  it('refuses Windows drive letters and NTFS streams', () => {
    for (const p of ['C:/data/ok/a', 'C:\\data\\ok', '/C:/data/ok/a', '/data/ok/a.txt::$DATA', '/data/ok/a:b']) {
      expect(pathReason(p), p).toBe('drive_or_stream');
    }
  });

  it('refuses NUL bytes and C0/C1 control characters', () => {
    expect(pathReason('/data/ok/a.txt\u0000.png')).toBe('nul_byte');
    expect(pathReason('/data/ok/a\nb')).toBe('control_character');
    expect(pathReason('/data/ok/a\u007fb')).toBe('control_character');
    expect(pathReason('/data/ok/a\u0085b')).toBe('control_character');
  });

  it('refuses zero-width and other format characters (Unicode Cf)', () => {
    for (const p of [
      '/data/ok/\u200b../x',
      '/data/ok/.\u200b./x',
      '/data/ok/a\u200db',
      '/data/ok/a\u2060b',
      '/data/ok/\ufeffa',
      '/data/ok/a\u00adb',
      '/data/ok/\u{e0041}',
    ]) {
      expect(pathReason(p), JSON.stringify(p)).toBe('format_character');
    }
  });

  it('refuses bidi controls', () => {
    for (const p of [
      '/data/ok/\u202etxt.exe',
      '/data/ok/a\u2066b\u2069',
      '/data/ok/a\u200eb',
      '/data/ok/a\u200fb',
      '/data/ok/a\u061cb',
    ]) {
      expect(pathReason(p), JSON.stringify(p)).toBe('bidi_control');
    }
  });

  it('refuses combining marks that do not follow a letter or digit (".\u0301." folds to "..")', () => {
    for (const p of [
      '/data/ok/.\u0301./x',
      '/data/ok/\u0301x',
      '/data/ok/a.\u0301b',
      '/data/ok/ \u0301x',
      '/data/ok/..\u0338/x',
    ]) {
      expect(pathReason(p), JSON.stringify(p)).toBe('combining_mark');
    }
  });

  it('refuses lone surrogates', () => {
    for (const p of ['/data/ok/\ud800x', '/data/ok/x\udc00', '/data/ok/\udc00\ud800']) {
      expect(pathReason(p), JSON.stringify(p)).toBe('lone_surrogate');
    }
    expect(pathReason('/data/ok/\u{1d49c}.txt')).toBe('ok'); // a letter outside the BMP, as a well-formed pair
  });

  it('refuses fullwidth, overlong and look-alike dots and slashes, and whatever NFKC folds to them', () => {
    for (const p of [
      '/data/ok/\uff0e\uff0e/secret',
      '/data/ok/..\uff0fsecret',
      '/data/ok/\u2025/x',
      '/data/ok/\u2024\u2024/x',
      '/data/ok/a\u2215b',
      '/data/ok/a\u2044b',
      '/data/ok/a\uff3cb',
      '/data/ok/\ufe52\ufe52/x',
      '/data/ok/\u2100',
    ]) {
      expect(pathReason(p), JSON.stringify(p)).toBe('unicode_lookalike');
    }
  });

  it('refuses characters outside the repertoire: shell, glob and Windows-reserved ASCII, other spaces, symbols', () => {
    for (const p of [
      '/data/ok/a*b',
      '/data/ok/a?b',
      '/data/ok/"a"',
      '/data/ok/<a>',
      '/data/ok/a|b',
      '/data/ok/$(id)',
      '/data/ok/`id`',
      '/data/ok/a\u00a0b',
      '/data/ok/a\u3000b',
      '/data/ok/\u3002\u3002/x',
      '/data/ok/\u{1f4c1}',
      '/data/ok/\ue000',
      '/data/ok/\u{10ffff}',
    ]) {
      expect(pathReason(p), JSON.stringify(p)).toBe('disallowed_character');
    }
  });

  it('refuses relative paths and home expansion', () => {
    expect(pathReason('data/ok/a')).toBe('relative');
    expect(pathReason('./data/ok/a')).toBe('relative');
    expect(pathReason('../../.ssh/id_rsa')).toBe('relative');
    expect(pathReason('~/.ssh/id_rsa')).toBe('home_directory');
    expect(pathReason('~root/.ssh')).toBe('home_directory');
    expect(pathReason('/data/ok/~/x')).toBe('home_directory');
    expect(pathReason('/data/ok/~root')).toBe('home_directory');
  });

  it('refuses non-strings, empty and over-long values', () => {
    expect(pathReason(undefined)).toBe('not_a_string');
    expect(pathReason(42)).toBe('not_a_string');
    expect(pathReason(['/data/ok/a'])).toBe('not_a_string');
    expect(pathReason({ toString: () => '/data/ok/a' })).toBe('not_a_string');
    expect(pathReason('')).toBe('empty');
    expect(pathReason(`/data/ok/${'a'.repeat(5000)}`)).toBe('too_long');
  });

  it('decides on the text it is given: the segments it compared are the value itself', () => {
    for (const p of ['/data/ok/a/b.txt', '/data/ok/', '/data/ok/re\u0301sume\u0301']) {
      const r = parsePath(p);
      expect(r.ok && `/${r.segments.join('/')}${p.endsWith('/') ? '/' : ''}`).toBe(p);
    }
  });

  it('accepts several roots; a root must be canonical too (a trailing "/" is allowed)', () => {
    const rs = [root('/srv/a/'), root('/srv/b')];
    expect(rs[0]!.text).toBe('/srv/a');
    expect(pathReason('/srv/a/x', rs)).toBe('ok');
    expect(pathReason('/srv/b/x', rs)).toBe('ok');
    expect(pathReason('/srv/c/x', rs)).toBe('outside_roots');
    expect(parsePathRoot('/srv/../etc')).toEqual({ ok: false, reason: 'dot_dot' });
    expect(parsePathRoot('/srv//a')).toEqual({ ok: false, reason: 'empty_segment' });
    expect(parsePathRoot('relative').ok).toBe(false);
    expect(pathReason('/anything/at/all', [root('/')])).toBe('ok');
  });
});

function urlRule(hosts: string[], schemes = ['https'], ports?: number[]): UrlRule {
  const parsed: HostPattern[] = hosts.map((h) => {
    const r = parseHostPattern(h);
    if (!r.ok) throw new Error(`${h}: ${r.message}`);
    return r.host;
  });
  return { schemes: new Set(schemes), hosts: parsed, ...(ports ? { ports: new Set(ports) } : {}) };
}

describe('kind: url (threat model #12)', () => {
  const rule = urlRule(['api.example.com', '*.example.org'], ['https', 'http']);
  const reason = (value: unknown, r: UrlRule = rule): string => {
    const res = checkUrl(value, r);
    return res.ok ? 'ok' : res.reason;
  };

  it('admits allowlisted hosts, exact and below a wildcard at a dot boundary', () => {
    expect(reason('https://api.example.com/v1/items?q=1')).toBe('ok');
    expect(reason('https://API.Example.COM/v1')).toBe('ok');
    expect(reason('https://api.example.com./v1')).toBe('ok');
    expect(reason('https://a.example.org/')).toBe('ok');
    expect(reason('https://b.a.example.org/')).toBe('ok');
    expect(reason('http://a.example.org:8443/')).toBe('ok');
  });

  it('refuses hosts outside the allowlist, including look-alikes', () => {
    expect(reason('https://example.org/')).toBe('host_not_allowed');
    expect(reason('https://evilexample.org/')).toBe('host_not_allowed');
    expect(reason('https://api.example.com.evil.test/')).toBe('host_not_allowed');
    expect(reason('https://example.com/')).toBe('host_not_allowed');
    expect(reason('https://8.8.8.8/')).toBe('host_not_allowed');
  });

  it('refuses schemes outside the allowlist', () => {
    expect(reason('ftp://api.example.com/')).toBe('scheme_not_allowed');
    expect(reason('file:///etc/passwd')).toBe('scheme_not_allowed');
    expect(reason('gopher://api.example.com/')).toBe('scheme_not_allowed');
    expect(reason('data:text/plain,hi')).toBe('scheme_not_allowed');
    expect(reason('javascript:alert(1)')).toBe('scheme_not_allowed');
    expect(reason('http://api.example.com/', urlRule(['api.example.com']))).toBe('scheme_not_allowed');
  });

  it('refuses userinfo, even an empty one', () => {
    expect(reason('https://api.example.com@evil.test/')).toBe('userinfo');
    expect(reason('https://user:pass@api.example.com/')).toBe('userinfo');
    expect(reason('https://@api.example.com/')).toBe('userinfo');
    expect(reason('https://:@api.example.com/')).toBe('userinfo');
  });

  it('refuses loopback, private, link-local and other special IPv4 literals in every form WHATWG accepts', () => {
    for (const u of [
      'http://127.0.0.1/',
      'http://127.1/',
      'http://2130706433/',
      'http://0x7f.1/',
      'http://0x7f000001/',
      'http://0177.0.0.1/',
      'http://017700000001/',
      'http://%31%32%37.0.0.1/',
      'http://0/',
      'http://0.0.0.0/',
      'http://10.0.0.1/',
      'http://172.16.5.4/',
      'http://172.31.255.255/',
      'http://192.168.1.1/',
      'http://169.254.169.254/latest/meta-data/',
      'http://100.64.0.1/',
      'http://100.127.255.255/',
      'http://198.18.0.1/',
      'http://224.0.0.1/',
      'http://255.255.255.255/',
      'http://192.0.2.1/',
    ]) {
      expect(reason(u), u).toBe('blocked_address');
    }
  });

  it('refuses loopback, unique-local, link-local, mapped and other special IPv6 literals', () => {
    for (const u of [
      'http://[::1]/',
      'http://[::]/',
      'http://[0:0:0:0:0:0:0:1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://[::ffff:7f00:1]/',
      'http://[::ffff:a9fe:a9fe]/',
      'http://[::ffff:8.8.8.8]/',
      'http://[::127.0.0.1]/',
      'http://[fc00::1]/',
      'http://[fd12:3456::1]/',
      'http://[fe80::1]/',
      'http://[fec0::1]/',
      'http://[ff02::1]/',
      'http://[64:ff9b::7f00:1]/',
      'http://[2002:7f00:1::]/',
      'http://[2001:db8::1]/',
      'http://[2001::1]/',
      'http://[::ffff:0:7f00:1]/', // IPv4-translated (RFC 2765)
      'http://[3fff::1]/', // documentation (RFC 9637)
    ]) {
      expect(reason(u), u).toBe('blocked_address');
    }
  });

  it('reads the host of non-special schemes the way an http client would', () => {
    const r = urlRule(['api.example.com'], ['foo']);
    expect(reason('foo://0x7f.1/', r)).toBe('blocked_address');
    expect(reason('foo://api.example.com/', r)).toBe('ok');
  });

  it('refuses localhost names', () => {
    expect(reason('http://localhost/')).toBe('localhost');
    expect(reason('http://LOCALHOST./')).toBe('localhost');
    expect(reason('http://app.localhost/')).toBe('localhost');
    // Even when someone allowlisted it.
    expect(reason('http://localhost/', urlRule(['localhost'], ['http']))).toBe('localhost');
  });

  it('refuses whitespace, control characters and backslashes (parser differentials)', () => {
    expect(reason(' https://api.example.com/')).toBe('control_character');
    expect(reason('https://api.exa\tmple.com/')).toBe('control_character');
    expect(reason('https://api.example.com/\r\nHost: evil')).toBe('control_character');
    expect(reason('https://api.example.com\\@evil.test/')).toBe('backslash');
    expect(reason('https:\\\\api.example.com/')).toBe('backslash');
  });

  it('refuses non-strings, empty, over-long and unparseable values', () => {
    expect(reason(undefined)).toBe('not_a_string');
    expect(reason(['https://api.example.com/'])).toBe('not_a_string');
    expect(reason('')).toBe('empty');
    expect(reason(`https://api.example.com/${'a'.repeat(9000)}`)).toBe('too_long');
    expect(reason('not a url')).toBe('control_character');
    expect(reason('api.example.com/x')).toBe('unparseable');
    expect(reason('https://[::1/')).toBe('unparseable');
  });

  it('checks ports when given, counting the default port', () => {
    const r = urlRule(['api.example.com'], ['https'], [443]);
    expect(reason('https://api.example.com/', r)).toBe('ok');
    expect(reason('https://api.example.com:443/', r)).toBe('ok');
    expect(reason('https://api.example.com:22/', r)).toBe('port_not_allowed');
  });

  it('validates allowlist entries', () => {
    expect(parseHostPattern('api.example.com').ok).toBe(true);
    expect(parseHostPattern('*.example.org').ok).toBe(true);
    expect(parseHostPattern('[2606:4700::1]').ok).toBe(true);
    for (const bad of [
      'API.example.com',
      '*.org',
      'a.*.example.org',
      '*example.org',
      'https://api.example.com',
      'api.example.com/x',
      'user@api.example.com',
      '*.10.0.0.1',
      'api.example.com:443',
    ]) {
      expect(parseHostPattern(bad).ok, bad).toBe(false);
    }
  });

  // Defect 7's twin: WHATWG rewrites the authority, the raw text is what goes upstream (threat model #8, #12).
  describe('decides on the URL as written, not on what WHATWG made of it', () => {
    it('refuses an authority not written scheme://host', () => {
      expect(reason('https:api.example.com/x')).toBe('authority_not_canonical');
      expect(reason('https:/api.example.com/x')).toBe('authority_not_canonical');
      expect(reason('https:\\/api.example.com/x')).toBe('backslash');
      expect(reason('https:///api.example.com/x')).toBe('host_not_canonical');
    });

    it('refuses hosts IDNA would rewrite: write punycode', () => {
      expect(reason('https://\uff21\uff30\uff29.example.com/')).toBe('idna_host'); // fullwidth API
      expect(reason('https://api.exam\u00adple.com/')).toBe('idna_host'); // soft hyphen, dropped by UTS 46
      expect(reason('https://a.example.org\u3002evil.test/')).toBe('idna_host'); // ideographic full stop
      expect(reason('https://b\u00fccher.example.org/')).toBe('idna_host');
      expect(reason('https://xn--bcher-kva.example.org/')).toBe('ok');
    });

    it('refuses hosts WHATWG rewrites: percent-encoding, IPv4 shorthand, non-canonical IPv6', () => {
      const ips = urlRule(['93.184.216.34', '[2606:4700::1]'], ['http']);
      expect(reason('https://api%2eexample.com/')).toBe('host_not_canonical');
      for (const u of [
        'http://0x5d.184.216.34/',
        'http://93.184.216.34./',
        'http://1578424354/',
        'http://93.184.54818/',
        'http://0135.184.216.34/',
      ]) {
        expect(reason(u, ips), u).toBe('host_not_canonical');
      }
      expect(reason('http://93.184.216.34/', ips)).toBe('ok');
      expect(reason('http://[2606:4700:0::1]/', ips)).toBe('host_not_canonical');
      expect(reason('http://[2606:4700:0000:0000:0000:0000:0000:0001]/', ips)).toBe('host_not_canonical');
      expect(reason('http://[2606:4700::1]/', ips)).toBe('ok');
      expect(reason('foo://api%2eexample.com/', urlRule(['api.example.com'], ['foo']))).toBe('host_not_canonical');
    });

    it('refuses ports WHATWG rewrites, keeps an explicit default port', () => {
      expect(reason('https://api.example.com:/')).toBe('port_not_canonical');
      expect(reason('https://api.example.com:0443/')).toBe('port_not_canonical');
      expect(reason('https://api.example.com:+443/')).toBe('unparseable');
      expect(reason('https://api.example.com:443/')).toBe('ok');
      expect(reason('https://api.example.com:8443/')).toBe('ok');
    });

    it('keeps what every parser reads alike: ASCII case, a trailing dot, "@" after the authority', () => {
      expect(reason('HTTPS://API.Example.COM/v1')).toBe('ok');
      expect(reason('https://api.example.com./v1')).toBe('ok');
      expect(reason('https://api.example.com/#@evil.test/')).toBe('ok');
      expect(reason('https://api.example.com?@evil.test/')).toBe('ok');
    });
  });
});

describe('IP address helpers', () => {
  it('parses canonical IPv4 and IPv6', () => {
    expect(parseIPv4('127.0.0.1')).toBe(0x7f000001);
    expect(parseIPv4('01.2.3.4')).toBeUndefined();
    expect(parseIPv4('256.1.1.1')).toBeUndefined();
    expect(parseIPv6('::1')).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(parseIPv6('::ffff:1.2.3.4')).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]);
    expect(parseIPv6('1:2:3:4:5:6:7:8')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(parseIPv6('1::')).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(parseIPv6('1:2:3:4:5:6:7')).toBeUndefined();
    expect(parseIPv6('1::2::3')).toBeUndefined();
    expect(parseIPv6(':1')).toBeUndefined();
  });

  it('leaves public unicast addresses alone', () => {
    expect(isBlockedIPv4(parseIPv4('8.8.8.8')!)).toBe(false);
    expect(isBlockedIPv4(parseIPv4('172.32.0.1')!)).toBe(false);
    expect(isBlockedIPv4(parseIPv4('100.128.0.1')!)).toBe(false);
    expect(isBlockedIPv6(parseIPv6('2606:4700:4700::1111')!)).toBe(false);
    expect(isBlockedIPv6(parseIPv6('64:ff9b::808:808')!)).toBe(false);
    expect(isBlockedIPv6(parseIPv6('2002:808:808::')!)).toBe(false);
  });
});

describe('kind: noLeadingDash (threat model #11)', () => {
  const reason = (v: unknown): string => {
    const r = checkNoLeadingDash(v);
    return r.ok ? 'ok' : r.reason;
  };

  it('refuses values readable as options', () => {
    for (const v of ['-rf', '--upload-pack=touch /tmp/pwned', '-', ' -x', '\t--help', ['ok', '-x'], -1, -0])
      expect(reason(v), JSON.stringify(v)).toBe('leading_dash');
  });

  it('refuses them at any depth of nested lists (an upstream may flatten them into its argv)', () => {
    for (const v of [[['-x']], ['ok', ['a', ['--upload-pack=x']]], [[-1]]]) {
      expect(reason(v), JSON.stringify(v)).toBe('leading_dash');
    }
    expect(reason([['a'], [['b']]])).toBe('ok');
  });

  it('passes everything else', () => {
    for (const v of ['main', 'a-b', 'file.txt', '', ['a', 'b'], [], 3, 0, true, null, { a: '-x' }, '\u2013rf'])
      expect(reason(v), JSON.stringify(v)).toBe('ok');
  });
});

describe('globs', () => {
  it('name globs: * matches any characters; everything else is literal', () => {
    const g = nameGlob('orders__*');
    expect(g.matches('orders__get_order')).toBe(true);
    expect(g.matches('orders__')).toBe(true);
    expect(g.matches('orders_get')).toBe(false);
    expect(g.matches('xorders__a')).toBe(false);
    expect(nameGlob('*__get-env').matches('everything__get-env')).toBe(true);
    expect(nameGlob('*__get-env').matches('everything__get-env2')).toBe(false);
    expect(nameGlob('a*b*c').matches('abc')).toBe(true);
    expect(nameGlob('a*b*c').matches('aXbYbZc')).toBe(true);
    expect(nameGlob('a*b*c').matches('acb')).toBe(false);
    expect(nameGlob('ab*ba').matches('aba')).toBe(false);
    expect(nameGlob('a.b').matches('aXb')).toBe(false);
    expect(nameGlob('*').matches('')).toBe(true);
  });

  it('URI globs: * stays within a segment, ** crosses segments', () => {
    const one = uriGlob('file:///srv/docs/*.md');
    expect(one.matches('file:///srv/docs/a.md')).toBe(true);
    expect(one.matches('file:///srv/docs/x/a.md')).toBe(false);
    const deep = uriGlob('file:///srv/docs/**');
    expect(deep.matches('file:///srv/docs/x/y/z.md')).toBe(true);
    expect(deep.matches('file:///srv/docs_evil/x')).toBe(false);
    expect(uriGlob('demo://resource/*/document/**').matches('demo://resource/static/document/a/b')).toBe(true);
    expect(uriGlob('demo://resource/*/document/**').matches('demo://resource/a/b/document/c')).toBe(false);
    expect(uriGlob('a?b').matches('a?b')).toBe(true);
    const flat = uriGlob('file:///srv/notes/*');
    expect(flat.matches('file:///srv/notes/a.md')).toBe(true);
    expect(flat.matches('file:///srv/notes/')).toBe(true);
    expect(flat.matches('file:///srv/notes/x/a.md')).toBe(false);
    expect(uriGlob('**/secret').matches('file:///a/b/secret')).toBe(true);
    expect(uriGlob('*/secret').matches('file:///a/b/secret')).toBe(false);
  });

  it('URI globs stay linear on hostile input', () => {
    const g = uriGlob('**a**a**a**a**a**a**b');
    const text = 'a'.repeat(8000);
    const started = performance.now();
    expect(g.matches(text)).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('field paths and redaction', () => {
  it('reads JSON pointers and dotted paths, own properties only', () => {
    const args = { a: { b: [10, { c: 'x' }] }, 'x/y': 1, 'p.q': 2 };
    const read = (t: string): unknown => {
      const p = parseFieldPath(t);
      if (!p.ok) throw new Error(p.message);
      return readField(args, p.path);
    };
    expect(read('a.b.1.c')).toEqual({ found: true, value: 'x' });
    expect(read('/a/b/0')).toEqual({ found: true, value: 10 });
    expect(read('/x~1y')).toEqual({ found: true, value: 1 });
    expect(read('/p.q')).toEqual({ found: true, value: 2 });
    expect(read('a.constructor')).toEqual({ found: false, value: undefined });
    expect(read('/a/b/2')).toEqual({ found: false, value: undefined });
    expect(parseFieldPath('a..b').ok).toBe(false);
    expect(parseFieldPath('/a~2').ok).toBe(false);
  });

  it('redacts a copy and leaves the input alone', () => {
    const args = { note: 'secret', nested: { token: 't', keep: 1 }, list: ['a', 'b'] };
    const out = redactArguments(args, ['/note', '/nested/token', '/list/1', '/absent']);
    expect(out).toEqual({ note: '[redacted]', nested: { token: '[redacted]', keep: 1 }, list: ['a', '[redacted]'] });
    expect(args).toEqual({ note: 'secret', nested: { token: 't', keep: 1 }, list: ['a', 'b'] });
  });

  it('redacts a key named __proto__ as an own field, and a deep path without touching its siblings', () => {
    const args = JSON.parse('{"__proto__": "secret", "a": {"b": {"c": 1, "d": 2}}, "e": {"f": 3}}') as Record<
      string,
      unknown
    >;
    const out = redactArguments(args, ['/__proto__', '/a/b/c']);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.hasOwn(out, '__proto__') && out['__proto__']).toBe('[redacted]');
    expect(out.a).toEqual({ b: { c: '[redacted]', d: 2 } });
    expect(out.e).toBe(args.e); // untouched branches are shared, not copied
    expect((args.a as { b: { c: number } }).b.c).toBe(1);
  });
});
