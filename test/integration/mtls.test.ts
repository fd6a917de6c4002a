/**
 * HTTPS and client certificates at the edge (docs/architecture.md §6; threat model #4, #20), with real certificates
 * made by `openssl`: TLS refuses what `clientCertificates: require` refuses, `request` mode treats an unverified
 * certificate as absent, the identity auth sees is the one openssl computes, and a forwarded certificate header
 * is believed only from a trusted proxy — and never reaches auth as a header.
 */
import { rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthRequest, AuthResult, Authenticator, CertIdentity } from '../../src/auth/authenticator.js';
import { secretValue } from '../../src/config/secrets.js';
import type { GatehouseConfig, ServerConfig, TlsConfig } from '../../src/config/types.js';
import { initializeBody, post, startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';
import { derOf, makeTestPki, opensslIdentity, type TestCert, type TestPki } from '../helpers/test-pki.js';
import { tlsFetch, type TlsClientOptions } from '../helpers/tls-fetch.js';

/** Lets every request through and remembers what auth was shown. */
class CapturingAuthenticator implements Authenticator {
  readonly seen: AuthRequest[] = [];
  authenticate(req: AuthRequest): AuthResult {
    this.seen.push({
      ...req,
      headers: { ...req.headers },
      ...(req.rawHeaders ? { rawHeaders: [...req.rawHeaders] } : {}),
    });
    return {
      ok: true,
      principal: {
        subject: 'agent',
        scopes: new Set(),
        groups: [],
        anonymous: false,
        ...(req.clientCert ? { certThumbprint: req.clientCert.thumbprint } : {}),
      },
    };
  }
  last(): AuthRequest {
    const r = this.seen.at(-1);
    if (!r) throw new Error('the authenticator saw no request');
    return r;
  }
}

let pki: TestPki;
let clientId: CertIdentity;
let otherClientId: CertIdentity;

beforeAll(() => {
  pki = makeTestPki(mkdtempSync(join(tmpdir(), 'gatehouse-pki-')));
  clientId = opensslIdentity(pki.client.certFile);
  otherClientId = opensslIdentity(pki.otherClient.certFile);
});
afterAll(() => {
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

interface Setup {
  tls?: Partial<TlsConfig> | false;
  trustedProxies?: string[];
  forwardedClientCertHeader?: string;
}

async function gateway(setup: Setup): Promise<{ gw: TestGateway; auth: CapturingAuthenticator }> {
  const auth = new CapturingAuthenticator();
  const tlsConfig: TlsConfig | undefined =
    setup.tls === false
      ? undefined
      : {
          certFile: pki.server.certFile,
          key: secretValue(`file:${pki.server.keyFile}`, pki.server.key),
          clientCaFile: pki.ca.certFile,
          clientCertificates: 'require',
          minVersion: 'TLSv1.2',
          ...setup.tls,
        };
  // Built from the types (the loader's `server.tls` is tested with the config); everything else from YAML.
  const configure = (c: GatehouseConfig): GatehouseConfig => {
    const server: ServerConfig = {
      ...c.server,
      ...(tlsConfig ? { tls: tlsConfig } : {}),
      trustedProxies: setup.trustedProxies ?? [],
      ...(setup.forwardedClientCertHeader !== undefined
        ? { forwardedClientCertHeader: setup.forwardedClientCertHeader }
        : {}),
    };
    return { ...c, server };
  };
  const gw = await startGateway([stdioFixtureYaml('fx')], { deps: { authenticator: auth }, configure });
  return { gw, auth };
}

/** Client TLS options: trusts the test CA; presents `cert` if given. */
function clientTls(cert?: TestCert, extra: Partial<TlsClientOptions> = {}): TlsClientOptions {
  return { ca: pki.ca.cert, ...(cert ? { cert: cert.cert, key: cert.key } : {}), ...extra };
}

/** A raw initialize POST over HTTPS. */
async function initialize(
  url: string,
  opts: TlsClientOptions,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  const f = tlsFetch(opts);
  try {
    const res = await f(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: initializeBody(),
    });
    return { status: res.status, text: await res.text() };
  } finally {
    f.close();
  }
}

/** Auth saw no copy of the header, parsed or raw. */
function expectNoHeader(seen: AuthRequest, name: string): void {
  expect(seen.headers[name]).toBeUndefined();
  expect((seen.rawHeaders ?? []).map((h) => h.toLowerCase())).not.toContain(name);
}

/** RFC 9440 §2.1: `Client-Cert: :<base64 of the DER>:`. */
function rfc9440(cert: TestCert): string {
  return `:${derOf(cert.certFile).toString('base64')}:`;
}

/** A raw TLS handshake; resolves with the negotiated protocol or rejects with the TLS error. */
function handshake(port: number, opts: tls.ConnectionOptions): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...opts }, () => {
      const protocol = socket.getProtocol();
      socket.end();
      resolve(protocol);
    });
    socket.on('error', reject);
  });
}

const portOf = (url: string): number => Number(new URL(url).port);

/**
 * The connection fails before any HTTP exchange: a TLS alert (no certificate: `handshake failure` in TLS 1.2,
 * `certificate required` in 1.3) or Node's server dropping the connection after a failed verification.
 */
async function expectRefused(attempt: Promise<unknown>): Promise<void> {
  const err = await attempt.then(
    () => undefined,
    (e: NodeJS.ErrnoException) => e,
  );
  expect(err, 'the request should have failed at the TLS layer').toBeDefined();
  expect(err?.code).toMatch(/^(EPROTO|ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED|ECONNRESET)$/);
}

describe('mTLS: clientCertificates require', () => {
  let gw: TestGateway;
  let auth: CapturingAuthenticator;
  beforeAll(async () => {
    // A proxy is configured, but the test client (127.0.0.1) is not it.
    ({ gw, auth } = await gateway({
      tls: { clientCertificates: 'require' },
      trustedProxies: ['10.0.0.0/8'],
      forwardedClientCertHeader: 'Client-Cert',
    }));
  });
  afterAll(async () => gw?.close());

  it('listens on https', () => {
    expect(gw.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/mcp$/);
  });

  it('refuses a client with no certificate at the TLS layer', async () => {
    const before = auth.seen.length;
    await expectRefused(initialize(gw.url, clientTls()));
    await expectRefused(initialize(gw.url, clientTls(undefined, { maxVersion: 'TLSv1.2' })));
    expect(auth.seen.length).toBe(before);
  });

  it('refuses a self-signed client certificate', async () => {
    const before = auth.seen.length;
    await expectRefused(initialize(gw.url, clientTls(pki.selfSigned)));
    await expectRefused(initialize(gw.url, clientTls(pki.selfSigned, { maxVersion: 'TLSv1.2' })));
    expect(auth.seen.length).toBe(before);
  });

  it('refuses a certificate from a CA it was not configured with', async () => {
    const before = auth.seen.length;
    await expectRefused(initialize(gw.url, clientTls(pki.otherClient)));
    await expectRefused(initialize(gw.url, clientTls(pki.otherClient, { maxVersion: 'TLSv1.2' })));
    expect(auth.seen.length).toBe(before);
  });

  it('accepts a certificate from the configured CA, and auth sees the identity openssl computes', async () => {
    const r = await initialize(gw.url, clientTls(pki.client));
    expect(r.status).toBe(200);
    const seen = auth.last();
    expect(seen.clientCert).toEqual(clientId);
    // Independently: the subject and SANs as openssl prints them, the RFC 8705 thumbprint of openssl's DER.
    expect(seen.clientCert?.subject).toBe('CN=agent-1,O=Example\\, Inc.');
    expect(seen.clientCert?.sans).toEqual(['URI:spiffe://example/agent-1', 'DNS:agent-1.example']);
    expect(seen.clientCert?.thumbprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('serves the official SDK client over mTLS', async () => {
    const fetch = tlsFetch(clientTls(pki.client));
    try {
      const client = await gw.client({ transport: { fetch } });
      const tools = await client.listTools();
      expect(tools.tools.map((t) => t.name)).toContain('fx__echo');
      const r = await client.callTool({ name: 'fx__echo', arguments: { text: 'over mtls' } });
      expect(r.content).toEqual([{ type: 'text', text: 'over mtls' }]);
      expect(auth.last().clientCert?.thumbprint).toBe(clientId.thumbprint);
      await client.close();
    } finally {
      fetch.close();
    }
  });

  it('ignores a forwarded certificate header from a peer that is not a trusted proxy, and strips it', async () => {
    const r = await initialize(gw.url, clientTls(pki.client), { 'client-cert': rfc9440(pki.otherClient) });
    expect(r.status).toBe(200);
    const seen = auth.last();
    expect(seen.clientCert?.thumbprint).toBe(clientId.thumbprint);
    expectNoHeader(seen, 'client-cert');
    expect(
      gw.logs.some((l) => l.msg === 'forwarded client certificate ignored' && l['reason'] === 'untrusted_peer'),
    ).toBe(true);
  });

  it('refuses a TLS 1.1 client (minVersion TLSv1.2)', async () => {
    // SECLEVEL=0 lets the client even offer TLS 1.1 (OpenSSL 3 disables it locally); the server must refuse.
    const err = await handshake(portOf(gw.url), {
      ca: pki.ca.cert,
      cert: pki.client.cert,
      key: pki.client.key,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    }).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
  });

  it('negotiates TLS 1.2 and 1.3 with a good certificate', async () => {
    const port = portOf(gw.url);
    const base = { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key };
    await expect(handshake(port, { ...base, maxVersion: 'TLSv1.2' })).resolves.toBe('TLSv1.2');
    await expect(handshake(port, base)).resolves.toBe('TLSv1.3');
  });
});

describe('mTLS: minVersion TLSv1.3', () => {
  it('refuses a TLS 1.2 client', async () => {
    const { gw } = await gateway({ tls: { clientCertificates: 'none', minVersion: 'TLSv1.3' } });
    try {
      const port = portOf(gw.url);
      await expect(handshake(port, { ca: pki.ca.cert, maxVersion: 'TLSv1.2' })).rejects.toMatchObject({
        code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
      });
      await expect(handshake(port, { ca: pki.ca.cert })).resolves.toBe('TLSv1.3');
    } finally {
      await gw.close();
    }
  });
});

describe('TLS without client certificates (clientCertificates none)', () => {
  it('serves https and never reports a client certificate, even when one is offered', async () => {
    const { gw, auth } = await gateway({ tls: { clientCertificates: 'none' } });
    try {
      expect((await initialize(gw.url, clientTls())).status).toBe(200);
      expect(auth.last().clientCert).toBeUndefined();
      expect((await initialize(gw.url, clientTls(pki.client))).status).toBe(200);
      expect(auth.last().clientCert).toBeUndefined();
    } finally {
      await gw.close();
    }
  });
});

describe('mTLS: clientCertificates request', () => {
  let gw: TestGateway;
  let auth: CapturingAuthenticator;
  beforeAll(async () => {
    ({ gw, auth } = await gateway({
      tls: { clientCertificates: 'request' },
      trustedProxies: ['10.0.0.0/8', '::1'],
      forwardedClientCertHeader: 'Client-Cert',
    }));
  });
  afterAll(async () => gw?.close());

  it('lets a client without a certificate through, with no clientCert', async () => {
    const r = await initialize(gw.url, clientTls());
    expect(r.status).toBe(200);
    expect(auth.last().clientCert).toBeUndefined();
    expect('clientCert' in auth.last()).toBe(false);
  });

  it('treats a certificate from another CA as absent', async () => {
    const r = await initialize(gw.url, clientTls(pki.otherClient));
    expect(r.status).toBe(200);
    expect(auth.last().clientCert).toBeUndefined();
  });

  it('treats a self-signed certificate as absent', async () => {
    const r = await initialize(gw.url, clientTls(pki.selfSigned));
    expect(r.status).toBe(200);
    expect(auth.last().clientCert).toBeUndefined();
  });

  it('reports a certificate from the configured CA', async () => {
    const r = await initialize(gw.url, clientTls(pki.client));
    expect(r.status).toBe(200);
    expect(auth.last().clientCert).toEqual(clientId);
  });

  it('does not let a client without a certificate claim one through the forwarded header', async () => {
    const r = await initialize(gw.url, clientTls(), { 'client-cert': rfc9440(pki.client) });
    expect(r.status).toBe(200);
    expect(auth.last().clientCert).toBeUndefined();
    expectNoHeader(auth.last(), 'client-cert');
  });
});

describe('forwarded client certificate from a trusted proxy', () => {
  let gw: TestGateway;
  let auth: CapturingAuthenticator;
  beforeAll(async () => {
    ({ gw, auth } = await gateway({
      tls: { clientCertificates: 'request' },
      trustedProxies: ['10.0.0.0/8', '127.0.0.1'],
      forwardedClientCertHeader: 'Client-Cert',
    }));
  });
  afterAll(async () => gw?.close());

  it('uses a valid RFC 9440 Client-Cert value, and auth never sees the header', async () => {
    const r = await initialize(gw.url, clientTls(), { 'client-cert': rfc9440(pki.client) });
    expect(r.status).toBe(200);
    expect(auth.last().clientCert).toEqual(clientId);
    expectNoHeader(auth.last(), 'client-cert');
  });

  it('uses a URL-encoded PEM (nginx $ssl_client_escaped_cert)', async () => {
    const r = await initialize(gw.url, clientTls(), { 'client-cert': encodeURIComponent(pki.client.cert) });
    expect(r.status).toBe(200);
    expect(auth.last().clientCert).toEqual(clientId);
  });

  it('ignores a forwarded certificate the configured CA did not issue', async () => {
    for (const cert of [pki.otherClient, pki.selfSigned]) {
      const r = await initialize(gw.url, clientTls(), { 'client-cert': rfc9440(cert) });
      expect(r.status).toBe(200);
      expect(auth.last().clientCert).toBeUndefined();
      expectNoHeader(auth.last(), 'client-cert');
    }
    expect(
      gw.logs.some((l) => l.msg === 'forwarded client certificate ignored' && l['reason'] === 'not_issued_by_ca'),
    ).toBe(true);
  });

  it('ignores a malformed value', async () => {
    for (const value of [':not base64!:', ':AAAA:', `${rfc9440(pki.client)}, ${rfc9440(pki.client)}`, 'hello']) {
      const r = await initialize(gw.url, clientTls(), { 'client-cert': value });
      expect(r.status).toBe(200);
      expect(auth.last().clientCert).toBeUndefined();
    }
  });

  it("does not take the proxy's own TLS certificate for the client's", async () => {
    const r = await initialize(gw.url, clientTls(pki.client));
    expect(r.status).toBe(200);
    expect(auth.last().clientCert).toBeUndefined();
  });
});

describe('behind a TLS-terminating ingress (plain HTTP to the gateway)', () => {
  it('believes the forwarded certificate from a trusted proxy (the proxy verified it), and only from there', async () => {
    const { gw, auth } = await gateway({
      tls: false,
      trustedProxies: ['127.0.0.0/8'],
      forwardedClientCertHeader: 'X-Client-Cert',
    });
    try {
      expect(gw.url).toMatch(/^http:\/\//);
      const r = await post(gw.url, initializeBody(), { 'x-client-cert': rfc9440(pki.otherClient) });
      expect(r.status).toBe(200);
      // Without server.tls.clientCaFile there is nothing to check the issuer against: the proxy is responsible.
      expect(auth.last().clientCert).toEqual(otherClientId);
      expectNoHeader(auth.last(), 'x-client-cert');
    } finally {
      await gw.close();
    }
    const untrusted = await gateway({
      tls: false,
      trustedProxies: ['10.0.0.0/8', '::1'],
      forwardedClientCertHeader: 'X-Client-Cert',
    });
    try {
      const r = await post(untrusted.gw.url, initializeBody(), { 'x-client-cert': rfc9440(pki.client) });
      expect(r.status).toBe(200);
      expect(untrusted.auth.last().clientCert).toBeUndefined();
      expectNoHeader(untrusted.auth.last(), 'x-client-cert');
    } finally {
      await untrusted.gw.close();
    }
  });
});

describe('server.tls from gatehouse.yaml', () => {
  it('loads the listener and client CA through the config loader', async () => {
    const auth = new CapturingAuthenticator();
    const gw = await startGateway([stdioFixtureYaml('fx')], {
      deps: { authenticator: auth },
      server: {
        tls: {
          certFile: pki.server.certFile,
          key: { fromFile: pki.server.keyFile },
          clientCaFile: pki.ca.certFile,
          clientCertificates: 'require',
          minVersion: 'TLSv1.2',
        },
        trustedProxies: ['10.0.0.0/8'],
        forwardedClientCertHeader: 'Client-Cert',
      },
    });
    try {
      expect(gw.url).toMatch(/^https:/);
      await expectRefused(initialize(gw.url, clientTls()));
      await expectRefused(initialize(gw.url, clientTls(pki.otherClient)));
      const r = await initialize(gw.url, clientTls(pki.client), { 'client-cert': rfc9440(pki.otherClient) });
      expect(r.status).toBe(200);
      expect(auth.last().clientCert).toEqual(clientId);
      expectNoHeader(auth.last(), 'client-cert');
    } finally {
      await gw.close();
    }
  });
});

describe('certificate-bound tokens over real TLS (RFC 8705 §3)', () => {
  it('accepts a cnf-bound token only over the certificate it is bound to', async () => {
    const second = pki.issue('client-2', '/CN=agent-2', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth');
    const gw = await startGateway([stdioFixtureYaml('fx')], {
      top: 'auth:\n  mode: dev\n',
      server: {
        tls: {
          certFile: pki.server.certFile,
          key: { fromFile: pki.server.keyFile },
          clientCaFile: pki.ca.certFile,
          clientCertificates: 'request',
        },
      },
    });
    try {
      const bound = await gw.token({
        sub: 'agent-1',
        scopes: ['a'],
        extra: { cnf: { 'x5t#S256': clientId.thumbprint } },
      });
      const auth = { authorization: `Bearer ${bound}` };
      expect((await initialize(gw.url, clientTls(pki.client), auth)).status).toBe(200);
      // The same token over another certificate of the same CA, or over none: a stolen token is useless.
      expect((await initialize(gw.url, clientTls(second), auth)).status).toBe(401);
      expect((await initialize(gw.url, clientTls(), auth)).status).toBe(401);
      expect(gw.app.authFailures.snapshot()).toMatchObject({ certificate_mismatch: 1, certificate_required: 1 });
    } finally {
      await gw.close();
    }
  });
});
