/**
 * The client certificate a request came with (docs/architecture.md §6, threat model #4 and #20), as a `CertIdentity`:
 * subject DN, subjectAltNames and the RFC 8705 thumbprint `x5t#S256` = base64url(SHA-256(DER)).
 *
 * Two sources, never mixed:
 * 1. **This TLS connection** — only when Node verified the certificate against `server.tls.clientCaFile`
 *    (`socket.authorized === true`). In `clientCertificates: request` mode an unverified certificate is
 *    treated exactly like no certificate.
 * 2. **A TLS-terminating proxy** — only when the peer address is in `server.trustedProxies` and
 *    `server.forwardedClientCertHeader` names the header. Accepted forms:
 *    - RFC 9440 `Client-Cert`: a structured-field byte sequence, `:<base64 DER>:`;
 *    - URL-encoded PEM (nginx `$ssl_client_escaped_cert`, ingress-nginx `ssl-client-cert`);
 *    - Envoy `X-Forwarded-Client-Cert` with exactly one element carrying `Cert="<URL-encoded PEM>"` (the
 *      thumbprint is always recomputed from the certificate; XFCC's hex `Hash` is never used).
 *    The proxy is responsible for verifying the client certificate (chain, expiry, revocation) and for
 *    forwarding it only when verification succeeded — configure it to do so. As cheap defence in depth, when
 *    `server.tls.clientCaFile` is set a forwarded certificate must also be directly issued (and signed) by one
 *    of its CAs (no intermediates), not be a CA itself, and be within its validity period, or it is ignored.
 *    From a trusted proxy the forwarded header is the whole truth: the proxy's own TLS client certificate (an
 *    authenticated hop) is not the client's identity, and no header means no client certificate.
 *
 * The forwarded header is deleted from the request's headers (parsed and raw) in every case, so nothing after
 * the edge can read a copy a client forged (RFC 9440 §4: sanitise incoming copies).
 */
import { X509Certificate, createHash } from 'node:crypto';
import fs from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { CertIdentity } from '../auth/authenticator.js';
import type { ServerConfig } from '../config/types.js';
import { trustedProxyMatcher } from './trusted-proxies.js';

/** What the reader needs of a request: fastify's `FastifyRequest` fits, and so does a bare `IncomingMessage`. */
export interface CertSourceRequest {
  readonly headers: IncomingHttpHeaders;
  readonly socket: Socket;
  /** Fastify's underlying request; its headers and Node's raw name/value list are sanitised too. */
  readonly raw?: { readonly headers: IncomingHttpHeaders; readonly rawHeaders?: string[] };
}

export type ClientCertOf = (request: CertSourceRequest) => CertIdentity | undefined;

/** Why a forwarded certificate was not used; for the operator's log, never the wire. */
export type ForwardedCertRejection = 'untrusted_peer' | 'malformed' | 'not_issued_by_ca' | 'expired_or_not_yet_valid';

export interface ClientCertReaderOptions {
  /** Called when a forwarded header was present but not used. */
  onIgnored?: (reason: ForwardedCertRejection, remoteAddress: string | undefined) => void;
  /** For tests of the validity check. Default `Date.now`. */
  now?: () => number;
}

/** Builds `clientCertOf` for a server config; reads `clientCaFile` once, now. */
export function clientCertReader(
  server: Pick<ServerConfig, 'tls' | 'trustedProxies' | 'forwardedClientCertHeader'>,
  opts: ClientCertReaderOptions = {},
): ClientCertOf {
  const header = server.forwardedClientCertHeader?.trim().toLowerCase() || undefined;
  const isTrustedProxy = trustedProxyMatcher(server.trustedProxies);
  const cas =
    header !== undefined && server.tls?.clientCaFile !== undefined ? readCaBundle(server.tls.clientCaFile) : undefined;
  const now = opts.now ?? Date.now;

  return (request) => {
    const socket = request.socket;
    let forwarded: string | undefined;
    if (header !== undefined) {
      forwarded = single(request.headers[header]);
      const present = request.headers[header] !== undefined;
      stripHeader(request, header);
      if (isTrustedProxy(socket.remoteAddress)) {
        if (forwarded === undefined) {
          if (present) opts.onIgnored?.('malformed', socket.remoteAddress);
          return undefined;
        }
        const cert = parseForwardedCert(forwarded);
        if (cert === undefined) {
          opts.onIgnored?.('malformed', socket.remoteAddress);
          return undefined;
        }
        if (cas !== undefined && !cas.some((ca) => issuedBy(cert, ca))) {
          opts.onIgnored?.('not_issued_by_ca', socket.remoteAddress);
          return undefined;
        }
        const t = now();
        if (!(Date.parse(cert.validFrom) <= t && t <= Date.parse(cert.validTo))) {
          opts.onIgnored?.('expired_or_not_yet_valid', socket.remoteAddress);
          return undefined;
        }
        return certIdentity(cert);
      }
      if (present) opts.onIgnored?.('untrusted_peer', socket.remoteAddress);
    }
    return tlsPeerIdentity(socket);
  };
}

/** The certificate of this TLS connection, if Node verified it against the configured client CA. */
export function tlsPeerIdentity(socket: Socket): CertIdentity | undefined {
  if (!isTlsSocket(socket) || socket.authorized !== true) return undefined;
  const cert = socket.getPeerX509Certificate();
  return cert === undefined ? undefined : certIdentity(cert);
}

/** Subject (RFC 4514 order: most specific first, `CN=agent-1,O=Example`), SAN entries and `x5t#S256`. */
export function certIdentity(cert: X509Certificate): CertIdentity {
  return Object.freeze({
    subject: rfc4514Subject(cert.subject),
    sans: Object.freeze(splitAltNames(cert.subjectAltName)),
    thumbprint: thumbprintOf(cert.raw),
  });
}

/** RFC 8705 §3.1: base64url(SHA-256(DER)). */
export function thumbprintOf(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('base64url');
}

/**
 * Parses a forwarded client-certificate header value: RFC 9440 byte sequence, URL-encoded PEM, or a
 * single-element Envoy XFCC. Returns undefined for anything else (including several certificates).
 */
export function parseForwardedCert(value: string): X509Certificate | undefined {
  const text = value.trim();
  try {
    const sf = /^:([A-Za-z0-9+/]+={0,2}):$/.exec(text);
    if (sf?.[1] !== undefined) return new X509Certificate(Buffer.from(sf[1], 'base64'));
    const pem = /^Cert=|[;,]\s*Cert=/i.test(text) ? xfccCert(text) : decodePem(text);
    if (pem === undefined) return undefined;
    // Exactly one certificate: a chain here would be ambiguous about whose identity it is.
    if (pem.split('-----BEGIN CERTIFICATE-----').length !== 2) return undefined;
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

/** `Node` prints `subject` one RDN a line, in certificate order, with RFC 2253 escaping; RFC 4514 reverses it. */
function rfc4514Subject(subject: string): string {
  return subject
    .split('\n')
    .filter((rdn) => rdn !== '')
    .reverse()
    .join(',');
}

/**
 * Node's `subjectAltName`: entries joined by `, `; an entry whose value contains a comma, quote or other
 * special character is printed as `TYPE:"<JSON string>"` (CVE-2021-44532), so a SAN cannot inject another.
 */
export function splitAltNames(san: string | undefined): string[] {
  if (san === undefined || san === '') return [];
  const out: string[] = [];
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(':', i);
    if (colon === -1) break;
    const type = san.slice(i, colon);
    let value: string;
    let next: number;
    if (san[colon + 1] === '"') {
      // A JSON string: find its closing quote, honouring backslash escapes.
      let j = colon + 2;
      while (j < san.length && san[j] !== '"') j += san[j] === '\\' ? 2 : 1;
      value = JSON.parse(san.slice(colon + 1, j + 1)) as string;
      next = j + 1;
    } else {
      const end = san.indexOf(', ', colon + 1);
      next = end === -1 ? san.length : end;
      value = san.slice(colon + 1, next);
    }
    out.push(`${type}:${value}`);
    i = san.startsWith(', ', next) ? next + 2 : san.length;
  }
  return out;
}

function readCaBundle(file: string): X509Certificate[] {
  const text = fs.readFileSync(file, 'utf8');
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error('server.tls.clientCaFile holds no PEM certificate');
  return blocks.map((pem) => new X509Certificate(pem));
}

/**
 * Directly issued by `ca` (names and key identifiers match) and signed by its key. A CA certificate is never
 * a client's (this also refuses the CA's own, public, self-issued certificate).
 */
function issuedBy(cert: X509Certificate, ca: X509Certificate): boolean {
  try {
    return ca.ca && !cert.ca && cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

function decodePem(text: string): string | undefined {
  let pem: string;
  try {
    // Percent-decoding only: a `+` is base64, never a space.
    pem = decodeURIComponent(text);
  } catch {
    return undefined;
  }
  pem = pem.trim();
  return pem.startsWith('-----BEGIN CERTIFICATE-----') && pem.endsWith('-----END CERTIFICATE-----') ? pem : undefined;
}

/** Envoy XFCC: `By=…;Hash=…;Cert="<URL-encoded PEM>";Subject="…";URI=…`. One element only (no `,` outside quotes). */
function xfccCert(text: string): string | undefined {
  const elements = splitOutsideQuotes(text, ',');
  if (elements.length !== 1 || elements[0] === undefined) return undefined;
  for (const pair of splitOutsideQuotes(elements[0], ';')) {
    const eq = pair.indexOf('=');
    if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== 'cert') continue;
    let v = pair.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    return decodePem(v);
  }
  return undefined;
}

function splitOutsideQuotes(text: string, sep: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (c === sep && !quoted) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** Deletes every copy of `name` (lower case) from the parsed headers and from Node's raw list. */
function stripHeader(request: CertSourceRequest, name: string): void {
  delete request.headers[name];
  if (request.raw === undefined) return;
  delete request.raw.headers[name];
  const raw = request.raw.rawHeaders;
  if (raw === undefined) return;
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]?.toLowerCase() === name) raw.splice(i, 2);
}

function single(v: string | string[] | undefined): string | undefined {
  // Several copies of the header are ambiguous: none is believed.
  return Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v;
}

function isTlsSocket(socket: Socket): socket is TLSSocket {
  return (
    (socket as Partial<TLSSocket>).encrypted === true &&
    typeof (socket as Partial<TLSSocket>).getPeerX509Certificate === 'function'
  );
}
