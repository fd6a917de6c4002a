import { classify, isJsonObject, parseJson, truncate, type JsonRpcMessage } from '../lib/json-rpc.js';
import type { SseDropped } from '../lib/sse.js';
import { decodeUtf8, lossyText } from '../lib/utf8.js';
import type { ChannelWarning } from './channel.js';
import { findResponseId } from './line-splitter.js';

/**
 * One message from an upstream, or why it was dropped. A dropped message that can be attributed to a call of
 * ours carries `responseId`, and that call fails at once (rpc-peer.ts) rather than wait for its deadline
 * (threat model #18).
 */
export type Inbound = { ok: true; message: JsonRpcMessage } | Dropped;

export interface Dropped {
  ok: false;
  reason: string;
  /** The start of what arrived, for the log (bad bytes shown as U+FFFD). */
  sample: string;
  responseId?: number;
}

/** How much of a dropped message is searched for its id at each end (`findResponseId`: top-level ids only). */
const ENDS = 256;
const SAMPLE = 200;

/**
 * Bytes to a JSON-RPC message, each step strict: UTF-8 (never repaired: threat model #8), JSON (bounded depth,
 * no prototype keys), JSON-RPC (lib/json-rpc.ts). The text is decoded once, where the bytes lie.
 */
export function readInbound(bytes: Uint8Array): Inbound {
  const text = decodeUtf8(bytes);
  if (text !== undefined) return readInboundText(text);
  // Only the ends are looked at (lossily, to search them for the id): not a second decode of the whole message.
  const head = lossyText(bytes.subarray(0, ENDS));
  return dropped('not valid UTF-8', head, findResponseId(head, lossyText(bytes.subarray(-ENDS))));
}

/** The same for text already decoded strictly (an SSE event's data). */
export function readInboundText(text: string): Inbound {
  const parsed = parseJson(text);
  if (!parsed.ok) return dropped(parsed.reason, text, findResponseId(text.slice(0, ENDS), text.slice(-ENDS)));
  const c = classify(parsed.value);
  if (c.kind !== 'invalid') return { ok: true, message: c.message };
  // Valid JSON that is not valid JSON-RPC: its id is certain — but only a response's id is one of ours; a
  // request from the upstream (it has a method) numbers from the upstream's own id space.
  const isResponse = isJsonObject(parsed.value) && !Object.hasOwn(parsed.value, 'method');
  return dropped(c.reason, text, isResponse && typeof c.id === 'number' ? c.id : undefined);
}

function dropped(reason: string, text: string, responseId: number | undefined): Dropped {
  const d: Dropped = { ok: false, reason, sample: truncate(text, SAMPLE) };
  if (responseId !== undefined) d.responseId = responseId;
  return d;
}

/** The warning for a dropped message; `responseId` overrides the id found in it (a POST knows its own request). */
export function junk(d: Dropped, responseId = d.responseId): ChannelWarning {
  const w: ChannelWarning = { kind: 'junk', sample: d.sample, reason: d.reason };
  if (responseId !== undefined) w.responseId = responseId;
  return w;
}

/**
 * The warning for an SSE event the parser dropped. Its call: the one whose POST stream carried it (`relatedId`),
 * else the top-level id at either end of its data.
 */
export function droppedEvent(d: SseDropped, relatedId: number | undefined): ChannelWarning {
  const responseId = relatedId ?? findResponseId(d.head, d.tail);
  if (d.reason === 'oversized') {
    const w: ChannelWarning = { kind: 'oversized', bytes: d.bytes };
    if (responseId !== undefined) w.responseId = responseId;
    return w;
  }
  return junk({ ok: false, reason: 'not valid UTF-8', sample: truncate(d.head, SAMPLE) }, responseId);
}
