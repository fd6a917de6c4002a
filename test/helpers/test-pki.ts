/**
 * Real certificates for TLS/mTLS tests, made by the `openssl` CLI (not by our code, so the tests check our
 * reading of certificates against an independent implementation). EC P-256 keys: fast to generate.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCert {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  /** The CA the gateway trusts for client certificates, which also issued the server certificate. */
  ca: TestCert;
  /** CN=localhost, SAN DNS:localhost + IP:127.0.0.1, serverAuth. */
  server: TestCert;
  /** Subject `O=Example\, Inc.`, `CN=agent-1`; SAN URI:spiffe://example/agent-1 + DNS:agent-1.example; clientAuth; issued by `ca`. */
  client: TestCert;
  /** Same names as `client`, self-signed. */
  selfSigned: TestCert;
  /** A CA the gateway does not trust… */
  otherCa: TestCert;
  /** …and a client certificate (CN=agent-1) it issued. */
  otherClient: TestCert;
  /** Issues one more certificate from `ca`; `extensions` is the text of an openssl extension file. */
  issue(name: string, subject: string, extensions: string, days?: number): TestCert;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export function openssl(args: readonly string[], input?: Buffer | string): Buffer {
  return execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Creates the whole set in `dir` (about half a second). */
export function makeTestPki(dir: string): TestPki {
  const file = (name: string): string => join(dir, name);
  const load = (name: string): TestCert => ({
    certFile: file(`${name}.crt`),
    keyFile: file(`${name}.key`),
    cert: readFileSync(file(`${name}.crt`), 'utf8'),
    key: readFileSync(file(`${name}.key`), 'utf8'),
  });
  const selfSigned = (name: string, subject: string, exts: readonly string[]): TestCert => {
    openssl([
      'req',
      '-x509',
      ...EC_KEY,
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.crt`),
      '-subj',
      subject,
      '-days',
      '2',
      ...exts.flatMap((e) => ['-addext', e]),
    ]);
    return load(name);
  };
  const issued = (name: string, issuer: string, subject: string, exts: readonly string[], days = 2): TestCert => {
    openssl(['req', ...EC_KEY, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', subject]);
    writeFileSync(file(`${name}.ext`), `${exts.join('\n')}\n`);
    openssl([
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file(`${issuer}.crt`),
      '-CAkey',
      file(`${issuer}.key`),
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      String(days),
      '-out',
      file(`${name}.crt`),
      '-extfile',
      file(`${name}.ext`),
    ]);
    return load(name);
  };
  const caExts = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];
  const clientExts = [
    'basicConstraints=CA:FALSE',
    'extendedKeyUsage=clientAuth',
    'subjectAltName=URI:spiffe://example/agent-1,DNS:agent-1.example',
  ];

  const ca = selfSigned('ca', '/CN=Gatehouse Test CA', caExts);
  const server = issued('server', 'ca', '/CN=localhost', [
    'basicConstraints=CA:FALSE',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ]);
  const client = issued('client', 'ca', '/O=Example, Inc./CN=agent-1', clientExts);
  const self = selfSigned('self', '/O=Example, Inc./CN=agent-1', clientExts);
  const otherCa = selfSigned('other-ca', '/CN=Some Other CA', caExts);
  const otherClient = issued('other-client', 'other-ca', '/CN=agent-1', clientExts);
  const issue = (name: string, subject: string, extensions: string, days?: number): TestCert =>
    issued(name, 'ca', subject, [extensions], days);
  return { dir, ca, server, client, selfSigned: self, otherCa, otherClient, issue };
}

/** What openssl says the identity of a certificate is: RFC 2253 subject, SAN entries, base64url(SHA-256(DER)). */
export function opensslIdentity(certFile: string): { subject: string; sans: string[]; thumbprint: string } {
  const subject = openssl(['x509', '-in', certFile, '-noout', '-subject', '-nameopt', 'RFC2253'])
    .toString()
    .trim()
    .replace(/^subject=/, '');
  const sanText = openssl(['x509', '-in', certFile, '-noout', '-ext', 'subjectAltName']).toString();
  const sans = (sanText.split('\n')[1] ?? '')
    .trim()
    .split(', ')
    .filter((s) => s !== '');
  const der = openssl(['x509', '-in', certFile, '-outform', 'der']);
  const thumbprint = openssl(['dgst', '-sha256', '-binary'], der).toString('base64url');
  return { subject, sans, thumbprint };
}

/** The DER of a certificate, as openssl writes it. */
export function derOf(certFile: string): Buffer {
  return openssl(['x509', '-in', certFile, '-outform', 'der']);
}
