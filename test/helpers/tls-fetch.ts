/**
 * A `fetch` over `node:https` with our own trust and client certificate, for the SDK client
 * (`StreamableHTTPClientTransport({ fetch })`) and for raw wire checks against an HTTPS/mTLS gateway.
 * (The global fetch cannot take a CA or a client certificate without the `undici` package, which we do not have.)
 */
import https from 'node:https';
import { Readable } from 'node:stream';
import type { SecureVersion } from 'node:tls';

export interface TlsClientOptions {
  /** PEM of the CA that issued the gateway's server certificate. */
  ca: string | Buffer;
  /** Client certificate and key (PEM) to present, if any. */
  cert?: string | Buffer;
  key?: string | Buffer;
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  /** OpenSSL cipher string, e.g. `DEFAULT@SECLEVEL=0` to let a TLS 1.1 client even try. */
  ciphers?: string;
}

export interface TlsFetch {
  (input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** Closes the kept-alive connections. */
  close(): void;
}

export function tlsFetch(opts: TlsClientOptions): TlsFetch {
  const agent = new https.Agent({
    keepAlive: true,
    ca: opts.ca,
    ...(opts.cert !== undefined ? { cert: opts.cert } : {}),
    ...(opts.key !== undefined ? { key: opts.key } : {}),
    ...(opts.minVersion !== undefined ? { minVersion: opts.minVersion } : {}),
    ...(opts.maxVersion !== undefined ? { maxVersion: opts.maxVersion } : {}),
    ...(opts.ciphers !== undefined ? { ciphers: opts.ciphers } : {}),
  });
  const fetchImpl = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const request = input instanceof Request ? input : undefined;
    const url = new URL(request ? request.url : String(input));
    const method = init.method ?? request?.method ?? 'GET';
    const headers = new Headers(request?.headers);
    new Headers(init.headers).forEach((v, k) => headers.set(k, v));
    let body: Buffer | undefined;
    const rawBody = init.body ?? (request && request.body !== null ? await request.arrayBuffer() : undefined);
    if (typeof rawBody === 'string') body = Buffer.from(rawBody);
    else if (rawBody instanceof ArrayBuffer || ArrayBuffer.isView(rawBody)) body = Buffer.from(rawBody as ArrayBuffer);
    else if (rawBody !== undefined && rawBody !== null) throw new TypeError('tlsFetch: unsupported body type');
    const signal = init.signal ?? request?.signal ?? undefined;
    signal?.throwIfAborted();

    return new Promise<Response>((resolve, reject) => {
      const outgoing: Record<string, string> = {};
      headers.forEach((v, k) => (outgoing[k] = v));
      if (body !== undefined) outgoing['content-length'] = String(body.length);
      const req = https.request(url, { method, headers: outgoing, agent }, (res) => {
        const responseHeaders = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (v === undefined) continue;
          for (const item of Array.isArray(v) ? v : [v]) responseHeaders.append(k, item);
        }
        const status = res.statusCode ?? 0;
        const nullBody = status === 204 || status === 205 || status === 304 || method === 'HEAD';
        if (nullBody) res.resume();
        resolve(
          new Response(nullBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
            status,
            statusText: res.statusMessage ?? '',
            headers: responseHeaders,
          }),
        );
      });
      const onAbort = (): void => {
        req.destroy(signal?.reason instanceof Error ? signal.reason : new DOMException('aborted', 'AbortError'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => signal?.removeEventListener('abort', onAbort));
      req.on('error', reject);
      req.end(body);
    });
  };
  return Object.assign(fetchImpl, { close: () => agent.destroy() });
}
