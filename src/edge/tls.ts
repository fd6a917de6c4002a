/**
 * `server.tls`: HTTPS for the listener and, optionally, client certificates (mTLS, docs/architecture.md §6). mTLS is an
 * extra layer on top of the Bearer flow, never a replacement for it (MCP authorization; checklist §9).
 *
 * - `clientCertificates: none`    — no certificate is asked for; no `ca` is passed at all.
 * - `clientCertificates: request` — asked for, not required: a handshake without one (or with one that does not
 *   chain to `clientCaFile`) still succeeds, and the edge treats such a certificate as absent
 *   (`socket.authorized` is false; see client-cert.ts).
 * - `clientCertificates: require` — TLS itself refuses a handshake without a certificate issued by `clientCaFile`.
 *
 * Client certificates are checked against `clientCaFile` ONLY: without an explicit `ca`, Node would trust its
 * bundled public roots, and any certificate a public CA ever issued would pass (threat model, "Node").
 */
import fs from 'node:fs';
import type https from 'node:https';
import type { TlsConfig } from '../config/types.js';

/** Options for `https.createServer` / `Fastify({ https })`. Reads the files now: call once, at start. */
export function httpsOptions(tls: TlsConfig): https.ServerOptions {
  const options: https.ServerOptions = {
    cert: fs.readFileSync(tls.certFile),
    key: tls.key.reveal(),
    minVersion: tls.minVersion,
    // Ciphers, curves and signature algorithms: Node's defaults (TLS 1.2+ AEAD suites first), deliberately.
  };
  if (tls.clientCertificates === 'none') {
    options.requestCert = false;
    options.rejectUnauthorized = false;
    return options;
  }
  if (tls.clientCaFile === undefined) {
    // The loader refuses this too; without a CA file Node's public roots would decide who is a client.
    throw new Error(`server.tls.clientCaFile is required when clientCertificates is "${tls.clientCertificates}"`);
  }
  const ca = fs.readFileSync(tls.clientCaFile);
  if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new Error('server.tls.clientCaFile holds no PEM certificate');
  options.ca = ca;
  options.requestCert = true;
  options.rejectUnauthorized = tls.clientCertificates === 'require';
  return options;
}
