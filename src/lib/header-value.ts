/**
 * Header values of MCP 2026-07-28 (basic/transports/streamable-http §Request Metadata): a value that is not plain
 * visible ASCII — non-ASCII, control characters, leading or trailing whitespace, or text that looks like the sentinel
 * itself — travels as `=?base64?{Base64 of its UTF-8}?=` (prefix and suffix exact and case-sensitive). Decoding is
 * strict: canonical padded Base64 and well-formed UTF-8, or the value is refused (threat model #8).
 */
import { Buffer } from 'node:buffer';
import { decodeUtf8 } from './utf8.js';

const PREFIX = '=?base64?';
const SUFFIX = '?=';
/** Canonical, padded Base64 (RFC 4648 §4): what the specification's encoders write. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** A plain value: visible ASCII, space and tab inside, no whitespace at either end. */
const PLAIN = /^(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?$/;

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
