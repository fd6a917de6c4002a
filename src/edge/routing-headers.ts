/**
 * The routing headers of MCP 2026-07-28 (basic/transports/streamable-http §Request Metadata): `MCP-Protocol-Version`,
 * `Mcp-Method` and, for `tools/call`, `resources/read` and `prompts/get`, `Mcp-Name` mirror the body so that a proxy
 * can route without parsing it. The gateway parses the body anyway and routes on it; a header that disagrees with it
 * is refused (HTTP 400, -32020) before anything is decided, so that no component in front of the gateway can have
 * acted on a value the gateway did not check (threat model #8, parser differentials).
 *
 * A value that is not plain visible ASCII — non-ASCII, control characters, leading or trailing whitespace, or text
 * that looks like the sentinel itself — travels as `=?base64?{Base64 of its UTF-8}?=` (prefix and suffix exact and
 * case-sensitive). Decoding is strict: canonical padded Base64, well-formed UTF-8, or the value is refused.
 */
import { Buffer } from 'node:buffer';
import { GatewayError } from '../errors/gateway-error.js';
import type { JsonRpcRequest } from '../lib/json-rpc.js';
import { decodeUtf8 } from '../lib/utf8.js';

const PREFIX = '=?base64?';
const SUFFIX = '?=';
/** Canonical, padded Base64 (RFC 4648 §4): what the specification's encoders write. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** A plain value: visible ASCII, space and tab inside, no whitespace at either end. */
const PLAIN = /^(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?$/;

/** The methods whose target is mirrored in `Mcp-Name`, and the body field it mirrors. */
const NAMED: Readonly<Record<string, 'name' | 'uri'>> = Object.freeze({
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
});

function looksEncoded(value: string): boolean {
  return value.startsWith(PREFIX) && value.endsWith(SUFFIX) && value.length >= PREFIX.length + SUFFIX.length;
}

/** A header value for `value`: itself when it is plain, else its `=?base64?…?=` form. */
export function encodeHeaderValue(value: string): string {
  if (PLAIN.test(value) && value !== '' && !looksEncoded(value)) return value;
  return `${PREFIX}${Buffer.from(value, 'utf8').toString('base64')}${SUFFIX}`;
}

/**
 * The text a header value stands for, or undefined when it is not a valid one (bad Base64, not UTF-8, characters a
 * plain value may not hold). Optional whitespace around the value is not part of it (RFC 9110 §5.5).
 */
export function decodeHeaderValue(raw: string): string | undefined {
  const value = raw.replace(/^[ \t]+|[ \t]+$/g, '');
  if (looksEncoded(value)) {
    const b64 = value.slice(PREFIX.length, value.length - SUFFIX.length);
    if (!BASE64.test(b64)) return undefined;
    return decodeUtf8(Buffer.from(b64, 'base64'));
  }
  return PLAIN.test(value) ? value : undefined;
}

/** The routing headers of one request, as received (absent: undefined; repeated headers are refused earlier). */
export interface RoutingHeaders {
  readonly protocolVersion: string | undefined;
  readonly method: string | undefined;
  readonly name: string | undefined;
}

/**
 * Refuses (GW_MCP_HEADER_MISMATCH) a 2026-07-28 request whose routing headers are missing, invalid, or say something
 * else than its body: `protocolVersion` is the version the body's `_meta` claims. The detail says which header and
 * why, for audit; the client gets the generic message.
 */
export function checkRoutingHeaders(headers: RoutingHeaders, message: JsonRpcRequest, protocolVersion: string): void {
  expectHeader('MCP-Protocol-Version', headers.protocolVersion, protocolVersion);
  expectHeader('Mcp-Method', headers.method, message.method);
  const field = Object.hasOwn(NAMED, message.method) ? NAMED[message.method] : undefined;
  if (field === undefined) return;
  const target = message.params?.[field];
  // A body without a usable target is the method's own invalid-params error, decided later; the header is still
  // required and must be valid.
  if (typeof target !== 'string') {
    if (headers.name === undefined) throw mismatch('Mcp-Name header missing');
    if (decodeHeaderValue(headers.name) === undefined) throw mismatch('Mcp-Name header is not a valid header value');
    return;
  }
  expectHeader('Mcp-Name', headers.name, target);
}

function expectHeader(header: string, raw: string | undefined, body: string): void {
  if (raw === undefined) throw mismatch(`${header} header missing`);
  const value = decodeHeaderValue(raw);
  if (value === undefined) throw mismatch(`${header} header is not a valid header value`);
  if (value !== body) throw mismatch(`${header} header ${clip(value)} does not match the body's ${clip(body)}`);
}

function mismatch(detail: string): GatewayError {
  return new GatewayError('GW_MCP_HEADER_MISMATCH', { detail });
}

function clip(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}
