/**
 * The SSRF guard for client ID metadata documents: address classes, refusal before any connection, the
 * pinned connection, and the answer rules (no redirects, size cap, JSON only, one deadline).
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createSafeJsonFetcher, isBlockedAddress, type RequestFn } from '../../src/auth/as/safe-fetch.js';

describe('isBlockedAddress', () => {
  it.each([
    '10.0.0.1',
    '10.255.255.255',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '127.0.0.1',
    '127.8.9.10',
    '169.254.169.254',
    '100.64.0.1',
    '100.127.255.255',
    '0.0.0.0',
    '224.0.0.1',
    '239.255.255.250',
    '255.255.255.255',
    '198.18.0.1',
    '192.0.2.1',
    '::1',
    '::',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '::ffff:7f00:1',
    '::ffff:a9fe:a9fe',
    '64:ff9b::a00:1',
    '2001:db8::1',
    '2002:a00:1::1',
    'localhost',
    'example.com',
  ])('blocks %s', (address) => {
    expect(isBlockedAddress(address)).toBe(true);
  });

  it.each([
    '93.184.216.34',
    '8.8.8.8',
    '172.32.0.1',
    '100.128.0.1',
    '192.169.0.1',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
  ])('allows %s', (address) => {
    expect(isBlockedAddress(address)).toBe(false);
  });

  it('the unsafe loopback switch lets loopback through, and nothing else', () => {
    expect(isBlockedAddress('127.0.0.1', { allowLoopback: true })).toBe(false);
    expect(isBlockedAddress('::1', { allowLoopback: true })).toBe(false);
    expect(isBlockedAddress('10.0.0.1', { allowLoopback: true })).toBe(true);
    expect(isBlockedAddress('169.254.169.254', { allowLoopback: true })).toBe(true);
  });
});

describe('refusal before any connection', () => {
  function spies() {
    const request = vi.fn<RequestFn>(() => {
      throw new Error('no connection may be attempted');
    });
    const lookup = vi.fn(async (_host: string) => [{ address: '93.184.216.34', family: 4 }]);
    return { request, lookup };
  }

  it('an IP literal in a private range: no DNS, no connection', async () => {
    const { request, lookup } = spies();
    const fetch = createSafeJsonFetcher({ request, lookup });
    for (const url of [
      'https://10.0.0.1/client.json',
      'https://169.254.169.254/latest',
      'https://[::1]/c.json',
      'https://[::ffff:127.0.0.1]/c.json',
      'https://0x7f000001/c.json',
    ]) {
      const r = await fetch(url);
      expect(r).toMatchObject({ ok: false, reason: 'blocked_address' });
    }
    expect(lookup).not.toHaveBeenCalled();
    expect(request).not.toHaveBeenCalled();
  });

  it('a host name resolving to loopback (real DNS: localhost) is refused without connecting', async () => {
    const { request } = spies();
    const r = await createSafeJsonFetcher({ request })('https://localhost/client.json');
    expect(r).toMatchObject({ ok: false, reason: 'blocked_address' });
    expect(request).not.toHaveBeenCalled();
  });

  it('refused when ANY resolved address is private (a mixed answer)', async () => {
    const request = vi.fn<RequestFn>();
    const lookup = async () => [
      { address: '93.184.216.34', family: 4 },
      { address: '10.1.2.3', family: 4 },
    ];
    expect(await createSafeJsonFetcher({ request, lookup })('https://mixed.example/c.json')).toMatchObject({
      ok: false,
      reason: 'blocked_address',
    });
    expect(request).not.toHaveBeenCalled();
  });

  it('refuses non-https schemes and userinfo; reports DNS failures and DNS timeouts', async () => {
    const { request, lookup } = spies();
    const fetch = createSafeJsonFetcher({ request, lookup });
    expect(await fetch('http://app.example/c.json')).toMatchObject({ ok: false, reason: 'scheme' });
    expect(await fetch('file:///etc/passwd')).toMatchObject({ ok: false, reason: 'scheme' });
    expect(await fetch('https://u:p@app.example/c.json')).toMatchObject({ ok: false, reason: 'invalid_url' });
    expect(await fetch('not a url')).toMatchObject({ ok: false, reason: 'invalid_url' });
    const failing = createSafeJsonFetcher({
      request,
      lookup: async () => Promise.reject(Object.assign(new Error('x'), { code: 'ENOTFOUND' })),
    });
    expect(await failing('https://nx.example/c.json')).toMatchObject({ ok: false, reason: 'dns_failure' });
    const hanging = createSafeJsonFetcher({ request, lookup: () => new Promise(() => undefined), timeoutMs: 100 });
    expect(await hanging('https://slow-dns.example/c.json')).toMatchObject({ ok: false, reason: 'timeout' });
    expect(request).not.toHaveBeenCalled();
  });

  it('connects to the vetted address only: lookup pinned, SNI and Host stay the name, no pooled agent', async () => {
    let captured: Parameters<RequestFn>[0] | undefined;
    const request = vi.fn<RequestFn>((options) => {
      captured = options;
      throw new Error('stop here');
    });
    let answers = 0;
    // A rebinding resolver: the first answer is public, any later one would be loopback.
    const lookup = async () =>
      answers++ === 0 ? [{ address: '93.184.216.34', family: 4 }] : [{ address: '127.0.0.1', family: 4 }];
    const r = await createSafeJsonFetcher({ request, lookup })('https://cimd.example:8443/clients/a.json?v=1');
    expect(r).toMatchObject({ ok: false, reason: 'network' });
    expect(captured).toMatchObject({
      hostname: 'cimd.example',
      servername: 'cimd.example',
      port: 8443,
      path: '/clients/a.json?v=1',
      method: 'GET',
      agent: false,
    });
    const pinned = captured!.lookup as unknown as (
      h: string,
      o: { all?: boolean },
      cb: (...a: unknown[]) => void,
    ) => void;
    const one = await new Promise<unknown[]>((resolve) => pinned('cimd.example', {}, (...a) => resolve(a)));
    expect(one).toEqual([null, '93.184.216.34', 4]);
    const all = await new Promise<unknown[]>((resolve) => pinned('cimd.example', { all: true }, (...a) => resolve(a)));
    expect(all).toEqual([null, [{ address: '93.184.216.34', family: 4 }]]);
    expect(answers).toBe(1);
  });
});

describe('answers (a loopback server, through the unsafe switch)', () => {
  let server: Server;
  let base: string;
  const routes: Record<string, (res: ServerResponse) => void> = {
    '/ok': (res) =>
      res
        .writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'public, max-age=60' })
        .end('{"a":1}'),
    '/vendor-json': (res) => res.writeHead(200, { 'content-type': 'application/vnd.example+json' }).end('{"b":2}'),
    '/redirect': (res) => res.writeHead(302, { location: '/ok' }).end(),
    '/error': (res) => res.writeHead(500, { 'content-type': 'application/json' }).end('{}'),
    '/html': (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<p>hi</p>'),
    '/declared-big': (res) =>
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(1024 * 1024) }).end(),
    '/streamed-big': (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = 'x'.repeat(16 * 1024);
      for (let i = 0; i < 8; i++) res.write(chunk);
      res.end();
    },
    '/not-json': (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{nope'),
    '/not-utf8': (res) =>
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d])),
    '/hang': () => undefined,
    '/no-store': (res) =>
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end('{}'),
  };
  beforeAll(async () => {
    server = createServer((req, res) => {
      const route = routes[req.url ?? ''];
      if (route === undefined) res.writeHead(404).end();
      else route(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const fetch = () => createSafeJsonFetcher({ unsafe: { allowLoopback: true }, timeoutMs: 500 });

  it('returns the JSON body and the cache lifetime', async () => {
    expect(await fetch()(`${base}/ok`)).toEqual({ ok: true, body: { a: 1 }, maxAgeSeconds: 60 });
    expect(await fetch()(`${base}/vendor-json`)).toEqual({ ok: true, body: { b: 2 } });
    expect(await fetch()(`${base}/no-store`)).toEqual({ ok: true, body: {}, maxAgeSeconds: 0 });
  });

  it.each([
    ['/redirect', 'redirect'],
    ['/error', 'http_status'],
    ['/html', 'content_type'],
    ['/declared-big', 'too_large'],
    ['/streamed-big', 'too_large'],
    ['/not-json', 'invalid_json'],
    // {"a":"C0 AF"}: not repaired into {"a":"\uFFFD\uFFFD"}
    ['/not-utf8', 'invalid_json'],
    ['/hang', 'timeout'],
  ])('%s → %s', async (path, reason) => {
    expect(await fetch()(`${base}${path}`)).toMatchObject({ ok: false, reason });
  });

  it('without the switch, the same loopback server is refused', async () => {
    expect(await createSafeJsonFetcher()(`${base}/ok`)).toMatchObject({ ok: false, reason: 'scheme' });
    expect(await createSafeJsonFetcher()(base.replace('http:', 'https:') + '/ok')).toMatchObject({
      ok: false,
      reason: 'blocked_address',
    });
  });

  it('validates its options', () => {
    expect(() => createSafeJsonFetcher({ timeoutMs: 0 })).toThrow(TypeError);
    expect(() => createSafeJsonFetcher({ maxBytes: -1 })).toThrow(TypeError);
  });
});
