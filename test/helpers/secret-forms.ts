/**
 * How a leaked secret can look in output, written here from the RFCs (not taken from the redactor under test):
 * the tests of threat model #17 search every output for these.
 */
import { Buffer } from 'node:buffer';

export type TextEncoding = 'raw' | 'json' | 'json-ascii' | 'json-slash' | 'uri' | 'uri-lower' | 'form';
export const TEXT_ENCODINGS: readonly TextEncoding[] = [
  'raw',
  'json',
  'json-ascii',
  'json-slash',
  'uri',
  'uri-lower',
  'form',
];

/** `secret` as an encoder writes it: RFC 8259 §7 (also \u for non-ASCII, and \/), RFC 3986 §2.1, form encoding. */
export function encodeSecret(secret: string, encoding: TextEncoding): string {
  const json = JSON.stringify(secret).slice(1, -1);
  switch (encoding) {
    case 'raw':
      return secret;
    case 'json':
      return json;
    case 'json-ascii':
      return json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    case 'json-slash':
      return json.replaceAll('/', '\\/');
    case 'uri':
      return encodeURIComponent(secret);
    case 'uri-lower':
      return encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase());
    case 'form':
      return new URLSearchParams({ k: secret }).toString().slice(2);
  }
}

/** Every text encoding of `secret`. */
export function encodedSecrets(secret: string): string[] {
  return TEXT_ENCODINGS.map((e) => encodeSecret(secret, e));
}

/** Whether any run of base64 characters in `text`, read from any offset, decodes to bytes that hold `secret`. */
export function base64Holds(text: string, secret: string): boolean {
  const needle = Buffer.from(secret, 'utf8');
  for (const run of text.match(/[A-Za-z0-9+/_-]+/g) ?? []) {
    for (let offset = 0; offset < 4; offset++) {
      const std = run.slice(offset).replaceAll('-', '+').replaceAll('_', '/');
      if (Buffer.from(std, 'base64').includes(needle)) return true;
    }
  }
  return false;
}
