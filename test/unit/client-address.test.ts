/** `clientAddress`: the socket peer, or the first untrusted `X-Forwarded-For` hop behind trusted proxies only. */
import { describe, expect, it } from 'vitest';
import { clientAddress } from '../../src/edge/client-address.js';
import { trustedProxyMatcher } from '../../src/edge/trusted-proxies.js';

const req = (remoteAddress: string | undefined, xff?: string | string[]) => ({
  socket: { remoteAddress },
  headers: xff === undefined ? {} : { 'x-forwarded-for': xff },
});

describe('clientAddress', () => {
  const trusted = trustedProxyMatcher(['10.0.0.0/8', '::1']);

  it('ignores X-Forwarded-For from an untrusted peer', () => {
    expect(clientAddress(req('203.0.113.5', '198.51.100.1'), trusted)).toBe('203.0.113.5');
    expect(clientAddress(req('203.0.113.5', '198.51.100.1'), trustedProxyMatcher([]))).toBe('203.0.113.5');
  });

  it('takes the hop the trusted proxy appended, never what the client wrote to its left', () => {
    expect(clientAddress(req('10.0.0.2', '198.51.100.1'), trusted)).toBe('198.51.100.1');
    expect(clientAddress(req('10.0.0.2', '6.6.6.6, 198.51.100.1'), trusted)).toBe('198.51.100.1');
  });

  it('walks past a chain of trusted proxies (repeated headers included)', () => {
    expect(clientAddress(req('10.0.0.2', '198.51.100.1, 10.1.1.1, 10.2.2.2'), trusted)).toBe('198.51.100.1');
    expect(clientAddress(req('::ffff:10.0.0.2', ['6.6.6.6, 198.51.100.7', '10.1.1.1']), trusted)).toBe('198.51.100.7');
    // Every hop trusted: the leftmost is the closest to the client we can see.
    expect(clientAddress(req('10.0.0.2', '10.3.3.3, 10.1.1.1'), trusted)).toBe('10.3.3.3');
  });

  it('accepts ports and brackets, and stops at a malformed hop (the proxy that passed it is the answer)', () => {
    expect(clientAddress(req('10.0.0.2', '198.51.100.1:5555'), trusted)).toBe('198.51.100.1');
    expect(clientAddress(req('::1', '[2001:db8::5]:443'), trusted)).toBe('2001:db8::5');
    expect(clientAddress(req('10.0.0.2', 'unknown'), trusted)).toBe('10.0.0.2');
    expect(clientAddress(req('10.0.0.2', '198.51.100.1, garbage, 10.1.1.1'), trusted)).toBe('10.1.1.1');
  });

  it('falls back to the peer without a header, and has no answer without a socket address', () => {
    expect(clientAddress(req('10.0.0.2'), trusted)).toBe('10.0.0.2');
    expect(clientAddress(req('10.0.0.2', ''), trusted)).toBe('10.0.0.2');
    expect(clientAddress(req(undefined, '198.51.100.1'), trusted)).toBeUndefined();
  });
});
