/**
 * One guarded GET for documents the authorization server fetches on a client's say-so (client ID metadata
 * documents): SSRF protection per MCP security best practices §SSRF and threat model row 12.
 *
 * - https only;
 * - the host is resolved here (`dns.lookup`, all addresses) and refused if ANY address is private, loopback,
 *   link-local, unique-local, multicast, unspecified, CGNAT, documentation/benchmark or a v4-in-v6 form of
 *   those (node:net BlockList; IPv4-mapped IPv6 addresses are matched against the IPv4 rules);
 * - the connection goes to the vetted address (our `lookup` returns it, TLS `servername` stays the host name),
 *   so a second DNS answer (rebinding) cannot swap it;
 * - no redirects (3xx is a failure), one 5 s deadline for DNS + connect + body, 64 KiB cap, JSON content type.
 */
import { BlockList, isIP } from 'node:net';
import { promises as dns, type LookupAddress } from 'node:dns';
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { decodeUtf8 } from '../../lib/utf8.js';

export type SafeFetchFailure =
  | 'invalid_url'
  | 'scheme'
  | 'blocked_address'
  | 'dns_failure'
  | 'network'
  | 'timeout'
  | 'redirect'
  | 'http_status'
  | 'content_type'
  | 'too_large'
  | 'invalid_json';

export type SafeFetchResult =
  | { readonly ok: true; readonly body: unknown; readonly maxAgeSeconds?: number }
  | { readonly ok: false; readonly reason: SafeFetchFailure; readonly detail: string };

export type SafeFetcher = (url: string) => Promise<SafeFetchResult>;

export type RequestFn = (options: https.RequestOptions, callback: (res: IncomingMessage) => void) => ClientRequest;

export interface SafeFetchOptions {
  /** Whole fetch: DNS, connect, headers and body. Default 5000. */
  timeoutMs?: number;
  /** Largest body accepted. Default 64 KiB. */
  maxBytes?: number;
  /** Replaces `dns.promises.lookup(host, { all: true })` (tests). */
  lookup?: (hostname: string) => Promise<readonly LookupAddress[]>;
  /** Replaces `https.request` / `http.request` (tests observe that no connection is attempted). */
  request?: RequestFn;
  /**
   * Weakens the protection. TESTS ONLY.
   * `allowLoopback`: loopback addresses (127.0.0.0/8, ::1) pass the address check, and plain http is
   * allowed when the vetted address is loopback — so tests can serve documents from 127.0.0.1.
   */
  unsafe?: { readonly allowLoopback?: boolean };
}

const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this" network, unspecified
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 96], // unspecified, loopback, IPv4-compatible
  ['64:ff9b::', 96], // NAT64
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard
  ['2001::', 32], // Teredo
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv6');
}
// IPv4-mapped addresses (::ffff:a.b.c.d) are checked against the IPv4 rules by BlockList itself.

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

function family(address: string): 'ipv4' | 'ipv6' | undefined {
  const v = isIP(address);
  return v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : undefined;
}

/** True when an address must never be fetched from. Anything that is not an IP literal is blocked too. */
export function isBlockedAddress(address: string, opts: { allowLoopback?: boolean } = {}): boolean {
  const type = family(address);
  if (type === undefined) return true;
  if (opts.allowLoopback === true && LOOPBACK.check(address, type)) return false;
  return BLOCKED.check(address, type);
}

export function isLoopbackAddress(address: string): boolean {
  const type = family(address);
  return type !== undefined && LOOPBACK.check(address, type);
}

const fail = (reason: SafeFetchFailure, detail: string): SafeFetchResult => ({ ok: false, reason, detail });

export function createSafeJsonFetcher(opts: SafeFetchOptions = {}): SafeFetcher {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const maxBytes = opts.maxBytes ?? 64 * 1024;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1)
    throw new TypeError('"timeoutMs" option must be a positive integer');
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1)
    throw new TypeError('"maxBytes" option must be a positive integer');
  const allowLoopback = opts.unsafe?.allowLoopback === true;
  const lookup = opts.lookup ?? ((hostname: string) => dns.lookup(hostname, { all: true, verbatim: true }));

  return async function safeFetchJson(input: string): Promise<SafeFetchResult> {
    let url: URL;
    try {
      url = new URL(input);
    } catch {
      return fail('invalid_url', 'not a URL');
    }
    if (url.protocol !== 'https:' && !(allowLoopback && url.protocol === 'http:'))
      return fail('scheme', `scheme ${url.protocol}`);
    if (url.username !== '' || url.password !== '') return fail('invalid_url', 'userinfo in URL');
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;

    const deadline = AbortSignal.timeout(timeoutMs);
    // ── resolve and vet ──
    let addresses: readonly LookupAddress[];
    if (isIP(host) !== 0) {
      addresses = [{ address: host, family: isIP(host) }];
    } else {
      try {
        addresses = await raceDeadline(lookup(host), deadline);
      } catch (err) {
        return deadline.aborted
          ? fail('timeout', 'DNS lookup timed out')
          : fail('dns_failure', `lookup failed (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    if (addresses.length === 0) return fail('dns_failure', 'no addresses');
    const blocked = addresses.find((a) => isBlockedAddress(a.address, { allowLoopback }));
    if (blocked !== undefined)
      return fail('blocked_address', `${host} resolves to a blocked address ${blocked.address}`);
    const vetted = addresses[0]!;
    if (url.protocol === 'http:' && !isLoopbackAddress(vetted.address))
      return fail('scheme', 'plain http outside loopback');

    // ── connect to the vetted address only ──
    const request: RequestFn =
      opts.request ?? (url.protocol === 'https:' ? https.request : (http.request as unknown as RequestFn));
    return new Promise<SafeFetchResult>((resolve) => {
      let settled = false;
      const settle = (r: SafeFetchResult): void => {
        if (settled) return;
        settled = true;
        deadline.removeEventListener('abort', onAbort);
        resolve(r);
      };
      let req: ClientRequest | undefined;
      const onAbort = (): void => {
        settle(fail('timeout', `no complete answer within ${timeoutMs} ms`));
        req?.destroy();
      };
      if (deadline.aborted) return onAbort();
      deadline.addEventListener('abort', onAbort, { once: true });

      const options: https.RequestOptions = {
        protocol: url.protocol,
        hostname: host,
        port: url.port === '' ? undefined : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers: { accept: 'application/json', 'user-agent': 'gatehouse-authorization-server' },
        // A fresh connection each time: a pooled socket keyed by host name could bypass the vetting.
        agent: false,
        // Pin: whatever Node asks to resolve, the answer is the address vetted above.
        lookup: ((_hostname: string, lookupOpts: { all?: boolean }, cb: (...args: unknown[]) => void) => {
          if (lookupOpts?.all === true) cb(null, [{ address: vetted.address, family: vetted.family }]);
          else cb(null, vetted.address, vetted.family);
        }) as unknown as https.RequestOptions['lookup'],
        ...(url.protocol === 'https:' ? { servername: isIP(host) === 0 ? host : undefined } : {}),
      };
      try {
        req = request(options, (res) => {
          const status = res.statusCode ?? 0;
          if (status >= 300 && status < 400) {
            res.resume();
            return settle(fail('redirect', `status ${status} (redirects are not followed)`));
          }
          if (status !== 200) {
            res.resume();
            return settle(fail('http_status', `status ${status}`));
          }
          if (!isJsonMediaType(res.headers['content-type'])) {
            res.resume();
            return settle(fail('content_type', `content type ${String(res.headers['content-type']).slice(0, 80)}`));
          }
          const declared = Number(res.headers['content-length']);
          if (Number.isFinite(declared) && declared > maxBytes) {
            res.destroy();
            return settle(fail('too_large', `content-length ${declared}`));
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxBytes) {
              res.destroy();
              settle(fail('too_large', `more than ${maxBytes} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('error', () => settle(fail('network', 'response aborted')));
          res.on('end', () => {
            let body: unknown;
            // Strictly UTF-8 (lib/utf8.ts): a client's metadata repaired with U+FFFD is not the document it published.
            const text = decodeUtf8(Buffer.concat(chunks));
            if (text === undefined) return settle(fail('invalid_json', 'body is not UTF-8'));
            try {
              body = JSON.parse(text);
            } catch {
              return settle(fail('invalid_json', 'body is not JSON'));
            }
            const maxAge = maxAgeOf(res.headers['cache-control']);
            settle(maxAge === undefined ? { ok: true, body } : { ok: true, body, maxAgeSeconds: maxAge });
          });
        });
      } catch (err) {
        return settle(fail('network', `request failed (${(err as Error).name})`));
      }
      req.on('error', (err: NodeJS.ErrnoException) =>
        settle(fail('network', `connection failed (${err.code ?? err.name})`)),
      );
      req.end();
    });
  };
}

function raceDeadline<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('deadline'));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function isJsonMediaType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const essence = header.split(';')[0]!.trim().toLowerCase();
  return essence === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(essence);
}

function maxAgeOf(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  if (/(?:^|,)\s*(?:no-store|no-cache)\b/i.test(header)) return 0;
  const m = /(?:^|,)\s*max-age\s*=\s*"?(\d{1,9})"?/i.exec(header);
  return m === null ? undefined : Number(m[1]);
}
