/**
 * TLS towards an https upstream (docs/configuration.md "Upstream TLS"; threat model #18): a private CA (instead of, or
 * beside, the public roots), a client certificate for mTLS, a minimum version and optional SPKI pins.
 *
 * Node's global fetch takes no per-request CA or client certificate, so an upstream with `tls` is fetched over
 * node:https with its own agent, and the answer is handed on as a web `Response` whose body streams (SSE answers stay
 * streams). Redirects are refused, as the channels ask of fetch (`redirect: 'error'`): a redirect could carry the
 * static key elsewhere. Every certificate problem is an error of the request: the upstream fails closed, and the
 * message — Node's reason, or the pin mismatch — names it in the log.
 */
import { createHash, X509Certificate } from 'node:crypto';
import https from 'node:https';
import { Readable } from 'node:stream';
import tls, { type PeerCertificate } from 'node:tls';
import type { SecretValue, UpstreamTlsConfig } from '../config/types.js';

/** What the channels call: the global fetch, or this upstream's own over its TLS agent. */
export type UpstreamFetch = (url: string | URL, init: RequestInit) => Promise<Response>;

/**
 * The fetch for an upstream: global fetch without `tls`, otherwise one bound to an agent with its settings. The CA
 * bundle, certificate and key are live values (secret-rotation.ts): when one of them changed, the next request
 * builds a new agent — new connections use the new material, requests in flight finish on the old agent's
 * connections, which then close. Material that does not make a TLS context (a key that is not the new
 * certificate's) keeps the previous agent and is reported through `warn` once per change.
 */
export function upstreamFetch(config: UpstreamTlsConfig | undefined, warn?: (detail: string) => void): UpstreamFetch {
  if (config === undefined) return (url, init) => fetch(url, init).catch(withCause);
  const parts = [config.ca, config.cert, config.key].filter((p): p is SecretValue => p !== undefined);
  let seen = generations(parts);
  let agent = new https.Agent(agentOptions(config));
  return (url, init) => {
    const now = generations(parts);
    if (now !== seen) {
      seen = now;
      try {
        const next = new https.Agent(agentOptions(config));
        retire(agent);
        agent = next;
      } catch (err) {
        warn?.(
          `the changed TLS material cannot be used (${err instanceof Error ? err.message : String(err)}); connections keep the previous`,
        );
      }
    }
    return httpsFetch(agent, url, init);
  };
}

/** The generations of the live values, as one comparable string (an integer each; no file access). */
function generations(parts: readonly SecretValue[]): string {
  return parts.map((p) => p.generation).join(',');
}

/**
 * An agent replaced by a newer one: its idle connections close now, its busy ones when their request is done
 * (keepAlive off makes the agent destroy a socket it gets back instead of pooling it).
 */
function retire(agent: https.Agent): void {
  (agent as unknown as { keepAlive: boolean }).keepAlive = false;
  for (const sockets of Object.values(agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
}

/**
 * The agent's options from the current values. A secure context is made first, so that a key that is not the
 * certificate's (or a bundle that holds no certificate) throws here, not in every handshake.
 */
export function agentOptions(config: UpstreamTlsConfig): https.AgentOptions {
  const ca = config.ca?.reveal();
  const pins = new Set(config.pinnedSpki);
  const material = {
    minVersion: config.minVersion,
    ...(ca !== undefined ? { ca: config.caMode === 'add' ? [...tls.rootCertificates, ca] : ca } : {}),
    ...(config.cert !== undefined ? { cert: config.cert.reveal() } : {}),
    ...(config.key !== undefined ? { key: config.key.reveal() } : {}),
  };
  tls.createSecureContext(material);
  return {
    keepAlive: true,
    ...material,
    ...(pins.size > 0
      ? {
          checkServerIdentity: (host: string, cert: PeerCertificate): Error | undefined =>
            tls.checkServerIdentity(host, cert) ?? pinMismatch(cert, pins),
        }
      : {}),
  };
}

/** RFC 7469 §2.6: the chain matches when any certificate in it has a pinned key. Runs after the chain verified. */
function pinMismatch(leaf: PeerCertificate, pins: ReadonlySet<string>): Error | undefined {
  const seen = new Set<PeerCertificate>();
  for (let c: PeerCertificate | undefined = leaf; c !== undefined && !seen.has(c);) {
    seen.add(c);
    if (c.raw !== undefined && pins.has(spkiPin(c.raw))) return undefined;
    const next: PeerCertificate | undefined = (c as { issuerCertificate?: PeerCertificate }).issuerCertificate;
    c = next === c ? undefined : next;
  }
  const err = new Error('SPKI pin mismatch: no certificate of the chain has a pinned public key');
  (err as NodeJS.ErrnoException).code = 'ERR_GATEHOUSE_SPKI_PIN';
  return err;
}

/** pin-sha256 of a DER certificate: base64 SHA-256 of its SubjectPublicKeyInfo. */
export function spkiPin(der: Buffer): string {
  const spki = new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/** One request over `agent`, answered as a web Response with a streaming body. */
function httpsFetch(agent: https.Agent, url: string | URL, init: RequestInit): Promise<Response> {
  const body = typeof init.body === 'string' ? init.body : undefined;
  const headers: Record<string, string> = {};
  new Headers(init.headers).forEach((v, k) => (headers[k] = v));
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  return new Promise<Response>((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: init.method ?? 'GET',
        agent,
        headers,
        ...(init.signal !== undefined && init.signal !== null ? { signal: init.signal } : {}),
      },
      (res) => {
        const status = res.statusCode ?? 502;
        if (status >= 300 && status < 400) {
          res.destroy();
          reject(new TypeError(`upstream answered a redirect (HTTP ${status}); redirects are refused`));
          return;
        }
        const out = new Headers();
        for (const [k, v] of Object.entries(res.headers))
          if (typeof v === 'string') out.set(k, v);
          else if (Array.isArray(v)) for (const x of v) out.append(k, x);
        const stream = status === 204 || status === 304 ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
        resolve(new Response(stream, { status, headers: out }));
      },
    );
    req.on('error', (err) => reject(tlsError(err)));
    req.end(body);
  });
}

/**
 * fetch says only "fetch failed"; why (a refused connection, an unverifiable certificate) is in its cause, and the
 * log line of an upstream that did not come up should say it. An abort stays what it is.
 */
function withCause(err: unknown): never {
  if (err instanceof TypeError && err.message === 'fetch failed' && err.cause instanceof Error)
    throw new TypeError(`fetch failed: ${tlsError(err.cause).message}`, { cause: err.cause });
  throw err;
}

/** Node's TLS errors say what failed (`self-signed certificate in certificate chain`); the code makes it greppable. */
function tlsError(err: Error): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === undefined || err.message.includes(code)) return err;
  return new Error(`${err.message} (${code})`, { cause: err });
}
