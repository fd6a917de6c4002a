import { describe, expect, it } from 'vitest';
import { isTrustedProxyEntry, trustedProxyMatcher } from '../../src/edge/trusted-proxies.js';

describe('trustedProxyMatcher', () => {
  it('trusts nobody when the list is empty or absent', () => {
    for (const m of [trustedProxyMatcher([]), trustedProxyMatcher(undefined)]) {
      expect(m('127.0.0.1')).toBe(false);
      expect(m('::1')).toBe(false);
      expect(m(undefined)).toBe(false);
    }
  });

  it('matches single IPv4 addresses exactly', () => {
    const m = trustedProxyMatcher(['10.1.2.3']);
    expect(m('10.1.2.3')).toBe(true);
    expect(m('10.1.2.4')).toBe(false);
    expect(m('10.1.2.30')).toBe(false);
  });

  it('matches IPv4 CIDR blocks at their boundaries', () => {
    const m = trustedProxyMatcher(['10.0.0.0/8', '192.168.1.128/25']);
    expect(m('10.0.0.0')).toBe(true);
    expect(m('10.255.255.255')).toBe(true);
    expect(m('11.0.0.0')).toBe(false);
    expect(m('9.255.255.255')).toBe(false);
    expect(m('192.168.1.128')).toBe(true);
    expect(m('192.168.1.255')).toBe(true);
    expect(m('192.168.1.127')).toBe(false);
  });

  it('handles /32, /0 and a non-network base address', () => {
    expect(trustedProxyMatcher(['203.0.113.7/32'])('203.0.113.7')).toBe(true);
    expect(trustedProxyMatcher(['203.0.113.7/32'])('203.0.113.8')).toBe(false);
    expect(trustedProxyMatcher(['0.0.0.0/0'])('8.8.8.8')).toBe(true);
    // Host bits set in the base: the block is still 172.16.0.0/12.
    const m = trustedProxyMatcher(['172.16.5.4/12']);
    expect(m('172.31.255.254')).toBe(true);
    expect(m('172.32.0.1')).toBe(false);
  });

  it('matches IPv6 addresses and CIDR blocks, in any spelling', () => {
    const m = trustedProxyMatcher(['::1', 'fd00:abcd::/32']);
    expect(m('::1')).toBe(true);
    expect(m('0:0:0:0:0:0:0:1')).toBe(true);
    expect(m('::2')).toBe(false);
    expect(m('fd00:abcd::1')).toBe(true);
    expect(m('FD00:ABCD:FFFF::1')).toBe(true);
    expect(m('fd00:abce::1')).toBe(false);
  });

  it('matches an IPv4-mapped IPv6 peer against IPv4 entries (dual-stack listeners report these)', () => {
    const m = trustedProxyMatcher(['127.0.0.1', '10.0.0.0/8']);
    expect(m('::ffff:127.0.0.1')).toBe(true);
    expect(m('::FFFF:10.9.8.7')).toBe(true);
    expect(m('::ffff:7f00:1')).toBe(true);
    expect(m('::ffff:127.0.0.2')).toBe(false);
    expect(m('::ffff:11.0.0.1')).toBe(false);
  });

  it('matches an IPv4 peer against IPv4-mapped entries', () => {
    expect(trustedProxyMatcher(['::ffff:192.0.2.1'])('192.0.2.1')).toBe(true);
    expect(trustedProxyMatcher(['::ffff:192.0.2.0/120'])('192.0.2.77')).toBe(true);
    expect(trustedProxyMatcher(['::ffff:192.0.2.0/120'])('192.0.3.1')).toBe(false);
    expect(trustedProxyMatcher(['::ffff:0.0.0.0/96'])('198.51.100.1')).toBe(true);
  });

  it('does not confuse IPv4 with IPv6 outside the mapped range', () => {
    const m = trustedProxyMatcher(['127.0.0.1']);
    expect(m('::1')).toBe(false);
    expect(m('::127.0.0.1')).toBe(false);
    expect(trustedProxyMatcher(['::1'])('127.0.0.1')).toBe(false);
  });

  it('ignores a zone index and brackets on the peer address', () => {
    const m = trustedProxyMatcher(['fe80::/10']);
    expect(m('fe80::1%eth0')).toBe(true);
    expect(m('[fe80::1]')).toBe(true);
  });

  it('never matches a missing or malformed peer address', () => {
    const m = trustedProxyMatcher(['0.0.0.0/0', '::/0']);
    expect(m(undefined)).toBe(false);
    expect(m('')).toBe(false);
    expect(m('localhost')).toBe(false);
    expect(m('127.0.0.1:8080')).toBe(false);
    expect(m('1.2.3')).toBe(false);
  });

  it('refuses invalid entries (fail closed at start)', () => {
    for (const bad of [
      '',
      'localhost',
      '10.0.0.0/33',
      '10.0.0.0/-1',
      '10.0.0.0/',
      '10.0.0.0/8/8',
      '::1/129',
      '1.2.3.4/abc',
      '256.0.0.1',
      '10.0.0.0/ 8',
      '::ffff:1.2.3.4/129',
    ]) {
      expect(() => trustedProxyMatcher([bad]), bad).toThrow(/trustedProxies/);
      expect(isTrustedProxyEntry(bad), bad).toBe(false);
    }
    for (const good of ['10.0.0.0/8', '::1', '2001:db8::/32', '127.0.0.1', '::ffff:10.0.0.0/104'])
      expect(isTrustedProxyEntry(good), good).toBe(true);
  });

  it('does not echo anything but the entry in its error', () => {
    expect(() => trustedProxyMatcher(['10.0.0.0/99'])).toThrow(
      'trustedProxies: "10.0.0.0/99" has an invalid prefix length',
    );
  });
});
