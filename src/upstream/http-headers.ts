import type { ValueOrSecret } from '../config/types.js';

/**
 * Outbound headers for an HTTP upstream: the configured ones (a legacy server's static key, revealed here)
 * and nothing from the client — no Authorization, no cookie, no session id of ours (MCP authorization
 * §Access Token Privilege Restriction; threat model #1, #17).
 */
export function configuredHeaders(headers: Readonly<Record<string, ValueOrSecret>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = typeof value === 'string' ? value : value.reveal();
  return out;
}

/**
 * Headers the transport owns: a call's own headers never set them (the channel writes them from what it sends).
 */
const PROTOCOL_HEADERS = new Set([
  'accept',
  'content-type',
  'content-length',
  'host',
  'connection',
  'transfer-encoding',
  'traceparent',
  'tracestate',
  'last-event-id',
]);

/**
 * One request's headers: the channel's (configured plus protocol) with a call's own headers merged in — the caller's
 * outbound credential (src/outbound/). A call's header replaces a configured one only for `authorization` (a
 * per-user token over the gateway's own service key); every other configured header, every `mcp-*` header and the
 * protocol's own headers stay as the channel set them. `configured` holds the configured names in lower case.
 */
export function withCallHeaders(
  headers: Record<string, string>,
  call: Readonly<Record<string, string>> | undefined,
  configured: ReadonlySet<string>,
): Record<string, string> {
  if (call === undefined) return headers;
  for (const [raw, value] of Object.entries(call)) {
    const name = raw.toLowerCase();
    if (PROTOCOL_HEADERS.has(name) || name.startsWith('mcp-')) continue;
    if (configured.has(name) && name !== 'authorization') continue;
    // Header names are case-insensitive: drop a configured spelling before adding ours, so only one is sent.
    for (const k of Object.keys(headers)) if (k.toLowerCase() === name) delete headers[k];
    headers[name] = value;
  }
  return headers;
}

/**
 * Read a fetch body as bytes, refusing more than `max` (threat model #18: a 200 MB reply). Bytes, not text:
 * the caller decodes them strictly, once (inbound.ts) — `Response.text()` would repair bad UTF-8.
 */
export async function readCapped(
  body: ReadableStream<Uint8Array> | null,
  max: number,
): Promise<{ ok: true; bytes: Uint8Array } | { ok: false; bytes: number }> {
  if (!body) return { ok: true, bytes: new Uint8Array(0) };
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > max) {
      await reader.cancel().catch(() => undefined);
      return { ok: false, bytes };
    }
    chunks.push(value);
  }
  return { ok: true, bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) };
}
