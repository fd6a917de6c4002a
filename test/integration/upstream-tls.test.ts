/**
 * TLS towards https upstreams (docs/configuration.md "Upstream TLS"): a private CA, mTLS with a client certificate,
 * SPKI pins and a minimum version, with certificates made by openssl in the test and a real HTTPS MCP server (the 1.x
 * SDK, stateless). Every certificate problem fails closed: the upstream stays unhealthy and the log names the reason.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors/config-error.js';
import { spkiPin } from '../../src/upstream/upstream-tls.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { derOf, makeTestPki, type TestPki } from '../helpers/test-pki.js';

interface HttpsUpstream {
  url: string;
  close(): Promise<void>;
}

/** An HTTPS MCP server whose tool `whoami` answers the CN of the client certificate it got, or `anonymous`. */
async function startHttpsUpstream(
  pki: TestPki,
  opts: { requireClientCert?: boolean; maxVersion?: 'TLSv1.2' | 'TLSv1.3' } = {},
): Promise<HttpsUpstream> {
  const server: Server = createServer({
    cert: pki.server.cert,
    key: pki.server.key,
    ...(opts.maxVersion !== undefined ? { maxVersion: opts.maxVersion } : {}),
    ...(opts.requireClientCert === true ? { requestCert: true, rejectUnauthorized: true, ca: pki.ca.cert } : {}),
  });
  server.on('request', (req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.method !== 'POST') {
        res.writeHead(405).end();
        return;
      }
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      const cn = peer?.subject?.CN;
      const mcp = new McpServer({ name: 'https-upstream', version: '1.0.0' });
      mcp.registerTool('whoami', { description: 'The client certificate the server saw' }, () => ({
        content: [{ type: 'text', text: typeof cn === 'string' ? cn : 'anonymous' }],
      }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      await mcp.connect(transport);
      await transport.handleRequest(req, res, JSON.parse(body));
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  return {
    url,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let dir: string;
let pki: TestPki;
let plain: HttpsUpstream;
let mutual: HttpsUpstream;
let tls12: HttpsUpstream;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-upstream-tls-'));
  pki = makeTestPki(dir);
  [plain, mutual, tls12] = await Promise.all([
    startHttpsUpstream(pki),
    startHttpsUpstream(pki, { requireClientCert: true }),
    startHttpsUpstream(pki, { maxVersion: 'TLSv1.2' }),
  ]);
}, 30_000);

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await Promise.all([plain?.close(), mutual?.close(), tls12?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

function upstream(name: string, url: string, tls: Record<string, unknown> | undefined): string {
  return JSON.stringify({
    name,
    transport: 'http',
    url,
    protocol: 'legacy',
    required: false,
    restart: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
    ...(tls !== undefined ? { tls } : {}),
  });
}

async function gateway(upstreams: string[]): Promise<TestGateway> {
  const gw = await startGateway(upstreams, { env: { ...process.env, UPSTREAM_CLIENT_KEY: pki.client.key } });
  gateways.push(gw);
  return gw;
}

function stateOf(gw: TestGateway, name: string): string | undefined {
  return gw.app.upstreams.health().find((h) => h.name === name)?.state;
}

/** The log lines about an upstream that did not come up, as text. */
function failures(gw: TestGateway, name: string): string {
  return JSON.stringify(gw.logs.filter((l) => (l as { upstream?: string }).upstream === name));
}

async function whoami(gw: TestGateway, tool: string): Promise<string> {
  const client = await gw.client();
  try {
    const r = (await client.callTool({ name: tool, arguments: {} })) as { content: { text: string }[] };
    return r.content[0]!.text;
  } finally {
    await client.close();
  }
}

describe('upstream TLS', () => {
  it('trusts a private CA only where configured; other CAs and the public roots fail closed, naming why', async () => {
    const gw = await gateway([
      upstream('private', plain.url, { caFile: pki.ca.certFile }),
      upstream('publicroots', plain.url, undefined),
      upstream('wrongca', plain.url, { caFile: pki.otherCa.certFile }),
      upstream('added', plain.url, { caFile: pki.ca.certFile, caMode: 'add' }),
    ]);
    expect(stateOf(gw, 'private')).toBe('ready');
    expect(stateOf(gw, 'added')).toBe('ready');
    expect(await whoami(gw, 'private__whoami')).toBe('anonymous');
    for (const name of ['publicroots', 'wrongca']) {
      expect(stateOf(gw, name)).toBe('unhealthy');
      expect(failures(gw, name)).toMatch(/certificate|UNABLE_TO_VERIFY|SELF_SIGNED/i);
    }
    // The catalogue holds only what a verified upstream listed.
    expect([...gw.app.router.catalogue.tools.keys()].sort()).toEqual(['added__whoami', 'private__whoami']);
  });

  it('presents the client certificate to an upstream that requires one; without it the handshake fails', async () => {
    const gw = await gateway([
      upstream('mtls', mutual.url, {
        caFile: pki.ca.certFile,
        certFile: pki.client.certFile,
        key: { fromEnv: 'UPSTREAM_CLIENT_KEY' },
      }),
      upstream('nocert', mutual.url, { caFile: pki.ca.certFile }),
    ]);
    expect(await whoami(gw, 'mtls__whoami')).toBe('agent-1');
    expect(stateOf(gw, 'nocert')).toBe('unhealthy');
  });

  it('checks SPKI pins after the chain: the right pin passes, a wrong one fails closed', async () => {
    const right = spkiPin(derOf(pki.server.certFile));
    const wrong = spkiPin(derOf(pki.otherCa.certFile));
    const gw = await gateway([
      upstream('pinned', plain.url, { caFile: pki.ca.certFile, pinnedSpki: [wrong, right] }),
      upstream('mispinned', plain.url, { caFile: pki.ca.certFile, pinnedSpki: [wrong] }),
      // The CA's own key pinned: any certificate it issues passes (RFC 7469 §2.6: any key of the chain).
      upstream('capinned', plain.url, { caFile: pki.ca.certFile, pinnedSpki: [spkiPin(derOf(pki.ca.certFile))] }),
    ]);
    expect(stateOf(gw, 'pinned')).toBe('ready');
    expect(stateOf(gw, 'capinned')).toBe('ready');
    expect(stateOf(gw, 'mispinned')).toBe('unhealthy');
    expect(failures(gw, 'mispinned')).toContain('SPKI pin mismatch');
  });

  it('refuses an upstream below the minimum TLS version', async () => {
    const gw = await gateway([
      upstream('modern', tls12.url, { caFile: pki.ca.certFile, minVersion: 'TLSv1.3' }),
      upstream('ok', tls12.url, { caFile: pki.ca.certFile }),
    ]);
    expect(stateOf(gw, 'ok')).toBe('ready');
    expect(stateOf(gw, 'modern')).toBe('unhealthy');
    expect(failures(gw, 'modern')).toMatch(/protocol|version/i);
  });

  it('rotates the client certificate and key without a restart when the mounted files are swapped', async () => {
    // A Kubernetes Secret volume: tls.crt and tls.key are links into ..data, swapped in one rename.
    const secrets = join(dir, 'client-secret');
    mkdirSync(secrets, { mode: 0o700 });
    let n = 0;
    const publish = (cert: string, key: string): void => {
      const version = `..v${++n}`;
      mkdirSync(join(secrets, version), { mode: 0o700 });
      writeFileSync(join(secrets, version, 'tls.crt'), cert, { mode: 0o600 });
      writeFileSync(join(secrets, version, 'tls.key'), key, { mode: 0o600 });
      symlinkSync(version, join(secrets, '..data_tmp'));
      renameSync(join(secrets, '..data_tmp'), join(secrets, '..data'));
    };
    publish(pki.client.cert, pki.client.key);
    symlinkSync('..data/tls.crt', join(secrets, 'tls.crt'));
    symlinkSync('..data/tls.key', join(secrets, 'tls.key'));
    const gw = await startGateway(
      [
        upstream('mtls', mutual.url, {
          caFile: pki.ca.certFile,
          certFile: join(secrets, 'tls.crt'),
          key: { fromFile: join(secrets, 'tls.key') },
        }),
      ],
      { deps: { secretRotation: { debounceMs: 50, intervalMs: 500 } } },
    );
    gateways.push(gw);
    expect(await whoami(gw, 'mtls__whoami')).toBe('agent-1');
    const next = pki.issue(
      'agent-2',
      '/CN=agent-2',
      'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:agent-2.example',
    );
    publish(next.cert, next.key);
    const rotated = (): number =>
      gw.logs.filter((l) => (l.audit as { type?: string } | undefined)?.type === 'secret.rotated').length;
    // Nothing rotated at start: the files are what the config loaded.
    expect(rotated()).toBe(0);
    for (let i = 0; i < 250 && rotated() < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(rotated()).toBe(2);
    expect(await whoami(gw, 'mtls__whoami')).toBe('agent-2');
    // A certificate without its key (another key in the swap) is refused as a pair: the previous agent keeps serving.
    publish(pki.client.cert, next.key);
    for (let i = 0; i < 250 && rotated() < 3; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await whoami(gw, 'mtls__whoami')).toBe('agent-2');
    expect(JSON.stringify(gw.logs)).toContain('the changed TLS material cannot be used');
    expect(stateOf(gw, 'mtls')).toBe('ready');
  });

  it('refuses, at load, a key that is not the certificate’s, tls on an http url, and a malformed pin', () => {
    const file = join(dir, 'bad-tls.yaml');
    writeFileSync(
      file,
      [
        'server: { host: 127.0.0.1, port: 0 }',
        'upstreams:',
        `  - { name: a, transport: http, url: "${plain.url}", tls: { certFile: "${pki.client.certFile}", key: { fromFile: "${pki.otherClient.keyFile}" } } }`,
        `  - { name: b, transport: http, url: "http://127.0.0.1:1/mcp", tls: { caFile: "${pki.ca.certFile}" } }`,
        `  - { name: c, transport: http, url: "${plain.url}", tls: { pinnedSpki: ["not-a-pin"] } }`,
        '',
      ].join('\n'),
    );
    let message = '';
    try {
      loadConfig(file);
    } catch (err: unknown) {
      if (!(err instanceof ConfigError)) throw err;
      message = err.message;
    }
    expect(message).toContain('/upstreams/0/tls/key');
    expect(message).toContain('does not belong to the certificate');
    expect(message).toContain('/upstreams/1/tls');
    expect(message).toContain('not https');
    expect(message).toContain('/upstreams/2/tls/pinnedSpki/0');
  });
});
