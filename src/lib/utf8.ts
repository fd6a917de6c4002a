import { TextDecoder } from 'node:util';

/**
 * Bytes to text, strictly: a byte sequence that is not well-formed UTF-8 (RFC 3629 §3: overlong forms like
 * `C0 AF`, surrogates, bytes like `FF`) is refused, never repaired with U+FFFD. A repaired text is a different
 * text from the one the sender wrote — what the gateway checked would not be what the peer meant, and
 * `"a\uFFFD"` could stand for many inputs (threat model #8). One pass over the bytes: validation is part of
 * the decode, and no copy of the bytes is made.
 *
 * `ignoreBOM: true` keeps a leading U+FEFF in the text rather than dropping it silently: JSON has no BOM
 * (RFC 8259 §8.1), so it fails to parse like any other stray character.
 */
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The text of `bytes`, or undefined when they are not well-formed UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strict.decode(bytes);
  } catch {
    return undefined;
  }
}

/** A decoder for text that arrives in pieces (a multi-byte character may be split between them). */
export function strictStreamDecoder(): TextDecoder {
  return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
}

/**
 * For diagnostics only (a log sample, the search for a dropped message's id): the bytes with every bad sequence
 * replaced by U+FFFD. Never a value the gateway acts on or forwards.
 */
export function lossyText(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

/**
 * An `application/x-www-form-urlencoded` body (WHATWG URL §5.1), strictly: a percent-encoded sequence that is
 * not UTF-8 (`%C0%AF`) or a malformed escape (`%zz`) refuses the whole form, where `URLSearchParams` would
 * repair the first with U+FFFD and keep the second as it is. `decodeURIComponent` is that strict check; the
 * separators `&` and `=` are ASCII, so checking the whole text checks each name and value.
 */
export function strictFormParams(text: string): URLSearchParams | undefined {
  if (text.includes('%')) {
    try {
      decodeURIComponent(text);
    } catch {
      return undefined;
    }
  }
  return new URLSearchParams(text);
}
