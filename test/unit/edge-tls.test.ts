/**
 * The pieces of edge TLS that need no listener: `httpsOptions`, reading a certificate identity, parsing
 * forwarded certificate headers and the reader's sanitising. Certificates come from `openssl`.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secretValue } from '../../src/config/secrets.js';
import type { ServerConfig, TlsConfig } from '../../src/config/types.js';
import {
  certIdentity,
  clientCertReader,
  parseForwardedCert,
  splitAltNames,
  type ForwardedCertRejection,
} from '../../src/edge/client-cert.js';
import { httpsOptions } from '../../src/edge/tls.js';
import { derOf, makeTestPki, opensslIdentity, type TestCert, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
beforeAll(() => {
  pki = makeTestPki(mkdtempSync(join(tmpdir(), 'gatehouse-pki-')));
});
afterAll(() => {
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

const rfc9440 = (c: TestCert): string => `:${derOf(c.certFile).toString('base64')}:`;

describe('httpsOptions', () => {
  const base = (): TlsConfig => ({
    certFile: pki.server.certFile,
    key: secretValue('file:server.key', pki.server.key),
    clientCaFile: pki.ca.certFile,
    clientCertificates: 'none',
    minVersion: 'TLSv1.2',
  });

  it('none: server certificate and key, no CA at all, no certificate requested', () => {
    const o = httpsOptions(base());
    expect(String(o.cert)).toBe(pki.server.cert);
    expect(o.key).toBe(pki.server.key);
    expect(o.ca).toBeUndefined();
    expect(o.requestCert).toBe(false);
    expect(o.minVersion).toBe('TLSv1.2');
    expect(o.ciphers).toBeUndefined();
  });

  it('request: the configured CA only, asked for but not enforced by TLS', () => {
    const o = httpsOptions({ ...base(), clientCertificates: 'request', minVersion: 'TLSv1.3' });
    expect(String(o.ca)).toBe(pki.ca.cert);
    expect(o.requestCert).toBe(true);
    expect(o.rejectUnauthorized).toBe(false);
    expect(o.minVersion).toBe('TLSv1.3');
  });

  it('require: enforced by TLS', () => {
    const o = httpsOptions({ ...base(), clientCertificates: 'require' });
    expect(String(o.ca)).toBe(pki.ca.cert);
    expect(o.requestCert).toBe(true);
    expect(o.rejectUnauthorized).toBe(true);
  });

  it('refuses to ask for client certificates without a CA file (Node would fall back to its public roots)', () => {
    const { clientCaFile: _, ...noCa } = base();
    expect(() => httpsOptions({ ...noCa, clientCertificates: 'require' })).toThrow(/clientCaFile is required/);
    expect(() => httpsOptions({ ...noCa, clientCertificates: 'request' })).toThrow(/clientCaFile is required/);
    const empty = join(pki.dir, 'empty-ca.pem');
    writeFileSync(empty, '\n');
    expect(() => httpsOptions({ ...base(), clientCaFile: empty, clientCertificates: 'require' })).toThrow(
      /no PEM certificate/,
    );
  });
});

describe('certIdentity', () => {
  it('agrees with openssl on subject, SANs and the RFC 8705 thumbprint', () => {
    for (const c of [pki.client, pki.otherClient, pki.server]) {
      expect(certIdentity(new X509Certificate(c.cert))).toEqual(opensslIdentity(c.certFile));
    }
  });

  it('keeps a SAN that contains ", " as one entry (no SAN injection)', () => {
    const c = pki.issue(
      'comma',
      '/CN=comma',
      'subjectAltName=@alt\n[alt]\nURI.1 = spiffe://example/a, DNS:evil.example\nDNS.1 = ok.example',
    );
    const id = certIdentity(new X509Certificate(c.cert));
    expect(id.sans).toEqual(['URI:spiffe://example/a, DNS:evil.example', 'DNS:ok.example']);
  });

  it('a certificate without SANs has none', () => {
    expect(certIdentity(new X509Certificate(pki.ca.cert)).sans).toEqual([]);
  });
});

describe('splitAltNames', () => {
  it('splits Node’s format, unquoting JSON-quoted values', () => {
    expect(splitAltNames(undefined)).toEqual([]);
    expect(splitAltNames('')).toEqual([]);
    expect(splitAltNames('DNS:a.example, IP Address:127.0.0.1, email:x@example.com')).toEqual([
      'DNS:a.example',
      'IP Address:127.0.0.1',
      'email:x@example.com',
    ]);
    expect(splitAltNames('URI:"a, b\\"c", DNS:d')).toEqual(['URI:a, b"c', 'DNS:d']);
  });
});

describe('parseForwardedCert', () => {
  const thumb = (x: X509Certificate | undefined): string | undefined => (x ? certIdentity(x).thumbprint : undefined);
  let expected: string;
  beforeAll(() => {
    expected = opensslIdentity(pki.client.certFile).thumbprint;
  });

  it('reads an RFC 9440 byte sequence', () => {
    expect(thumb(parseForwardedCert(rfc9440(pki.client)))).toBe(expected);
    expect(thumb(parseForwardedCert(`  ${rfc9440(pki.client)} `))).toBe(expected);
  });

  it('reads URL-encoded PEM (nginx $ssl_client_escaped_cert)', () => {
    expect(thumb(parseForwardedCert(encodeURIComponent(pki.client.cert)))).toBe(expected);
  });

  it('reads a single-element Envoy XFCC, recomputing the hash from Cert', () => {
    const xfcc = `By=spiffe://example/gatehouse;Hash=${'ab'.repeat(32)};Cert="${encodeURIComponent(pki.client.cert)}";Subject="CN=agent-1,O=Example\\, Inc.";URI=spiffe://example/agent-1`;
    expect(thumb(parseForwardedCert(xfcc))).toBe(expected);
  });

  it('refuses anything ambiguous or malformed', () => {
    const one = encodeURIComponent(pki.client.cert);
    for (const bad of [
      '',
      'hello',
      ':AAAA:',
      ':not base64:',
      derOf(pki.client.certFile).toString('base64'), // bare base64, not a byte sequence
      `${rfc9440(pki.client)}, ${rfc9440(pki.otherClient)}`, // two header copies joined by Node
      encodeURIComponent(pki.client.cert + pki.ca.cert), // a chain
      `${one}, ${one}`,
      `Cert="${one}",Cert="${encodeURIComponent(pki.otherClient.cert)}"`, // two XFCC elements
      'Hash=abcd;Subject="CN=x"', // XFCC without Cert
      `Cert="${encodeURIComponent(pki.client.cert.replace('MII', 'XXX'))}"`,
    ]) {
      expect(parseForwardedCert(bad), bad.slice(0, 60)).toBeUndefined();
    }
  });
});

describe('clientCertReader', () => {
  function request(headers: IncomingHttpHeaders, remoteAddress: string, socketExtra: Record<string, unknown> = {}) {
    const raw = { headers };
    return { headers, raw, socket: { remoteAddress, ...socketExtra } as unknown as Socket };
  }
  const server = (
    extra: Partial<ServerConfig> = {},
  ): Pick<ServerConfig, 'tls' | 'trustedProxies' | 'forwardedClientCertHeader'> => ({
    trustedProxies: ['10.0.0.0/8'],
    forwardedClientCertHeader: 'Client-Cert',
    tls: {
      certFile: pki.server.certFile,
      key: secretValue('x', pki.server.key),
      clientCaFile: pki.ca.certFile,
      clientCertificates: 'request',
      minVersion: 'TLSv1.2',
    },
    ...extra,
  });

  it('uses the header from a trusted proxy and deletes it', () => {
    const read = clientCertReader(server());
    const req = request({ 'client-cert': rfc9440(pki.client), other: 'kept' }, '::ffff:10.1.1.1');
    expect(read(req)?.thumbprint).toBe(opensslIdentity(pki.client.certFile).thumbprint);
    expect(req.headers).toEqual({ other: 'kept' });
  });

  it('ignores and deletes the header from anyone else, reporting why', () => {
    const ignored: ForwardedCertRejection[] = [];
    const read = clientCertReader(server(), { onIgnored: (r) => ignored.push(r) });
    const req = request({ 'client-cert': rfc9440(pki.client) }, '192.0.2.1');
    expect(read(req)).toBeUndefined();
    expect(req.headers['client-cert']).toBeUndefined();
    expect(ignored).toEqual(['untrusted_peer']);
  });

  it('checks the forwarded certificate against clientCaFile and its validity period', () => {
    const ignored: ForwardedCertRejection[] = [];
    const read = clientCertReader(server(), { onIgnored: (r) => ignored.push(r) });
    expect(read(request({ 'client-cert': rfc9440(pki.otherClient) }, '10.0.0.1'))).toBeUndefined();
    expect(read(request({ 'client-cert': rfc9440(pki.selfSigned) }, '10.0.0.1'))).toBeUndefined();
    // The CA's own (public, self-issued) certificate is not a client certificate.
    expect(read(request({ 'client-cert': rfc9440(pki.ca) }, '10.0.0.1'))).toBeUndefined();
    expect(ignored).toEqual(['not_issued_by_ca', 'not_issued_by_ca', 'not_issued_by_ca']);
    const later = clientCertReader(server(), {
      now: () => Date.now() + 10 * 86_400_000,
      onIgnored: (r) => ignored.push(r),
    });
    expect(later(request({ 'client-cert': rfc9440(pki.client) }, '10.0.0.1'))).toBeUndefined();
    expect(ignored.at(-1)).toBe('expired_or_not_yet_valid');
  });

  it('accepts a certificate from any CA in a bundle', () => {
    const bundle = join(pki.dir, 'bundle.pem');
    writeFileSync(bundle, readFileSync(pki.otherCa.certFile, 'utf8') + readFileSync(pki.ca.certFile, 'utf8'));
    const s = server();
    const read = clientCertReader({ ...s, tls: { ...s.tls!, clientCaFile: bundle } });
    expect(read(request({ 'client-cert': rfc9440(pki.client) }, '10.0.0.1'))).toBeDefined();
    expect(read(request({ 'client-cert': rfc9440(pki.otherClient) }, '10.0.0.1'))).toBeDefined();
    expect(read(request({ 'client-cert': rfc9440(pki.selfSigned) }, '10.0.0.1'))).toBeUndefined();
  });

  it('believes a trusted proxy’s header without a CA check when there is no clientCaFile (the proxy verified it)', () => {
    const { tls: _, ...noTls } = server();
    const read = clientCertReader(noTls);
    expect(read(request({ 'client-cert': rfc9440(pki.otherClient) }, '10.0.0.1'))?.thumbprint).toBe(
      opensslIdentity(pki.otherClient.certFile).thumbprint,
    );
  });

  it('uses only the TLS connection when no forwarded header is configured, and only a verified certificate', () => {
    const read = clientCertReader({ trustedProxies: ['10.0.0.0/8'] });
    const cert = new X509Certificate(pki.client.cert);
    const tlsSocket = (authorized: boolean) => ({ encrypted: true, authorized, getPeerX509Certificate: () => cert });
    const headers = { 'client-cert': rfc9440(pki.otherClient) };
    expect(read(request({ ...headers }, '10.0.0.1', tlsSocket(true)))?.thumbprint).toBe(
      opensslIdentity(pki.client.certFile).thumbprint,
    );
    expect(read(request({ ...headers }, '10.0.0.1', tlsSocket(false)))).toBeUndefined();
    expect(read(request({ ...headers }, '10.0.0.1'))).toBeUndefined();
  });
});
