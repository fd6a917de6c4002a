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
