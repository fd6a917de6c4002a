/**
 * Characters a reviewer cannot see, and a way to show them. Tool poisoning hides instructions in text a human
 * skims past but a model reads (threat model #13): Unicode tag characters (an invisible copy of ASCII),
 * zero-width characters, bidirectional controls that reorder what is displayed, terminal escapes. Everything
 * that shows tool text to a person (scanner excerpts, approval diffs) goes through `showInvisible`.
 *
 * Pure; no dependencies but the pointer escaping of lib/.
 */
import { escapePointer } from '../../lib/json-pointer.js';

/** U+E0000–U+E007F: tag characters. U+E0020–U+E007E mirror printable ASCII, which is why they smuggle text. */
export const TAG_CHARACTERS = /[\u{E0000}-\u{E007F}]/u;
/** Zero-width and invisible joiners/marks: U+200B–U+200F, U+2060–U+2064, U+FEFF (byte-order mark / ZWNBSP). */
export const ZERO_WIDTH = /[\u200B-\u200F\u2060-\u2064\uFEFF]/u;
/** Bidirectional embeddings, overrides and isolates (the "Trojan Source" characters, CVE-2021-42574). */
export const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/u;
/** Supplementary variation selectors: invisible, attach to anything, and carry a byte each ("emoji smuggling"). */
export const VARIATION_SELECTORS = /[\u{E0100}-\u{E01EF}]/u;
/** C0/C1 controls other than tab, line feed and carriage return (e.g. ESC, which starts terminal escapes). */
export const CONTROL_CHARACTERS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/u;
/** Every other invisible formatting character (General_Category Cf), e.g. U+00AD, U+061C, U+180E. */
export const OTHER_FORMAT =
  /(?![\u200B-\u200F\u2060-\u2064\uFEFF\u202A-\u202E\u2066-\u2069\u{E0000}-\u{E007F}])\p{Cf}/u;

/**
 * What `showInvisible` rewrites: controls, format characters, private use, lone surrogates, line/paragraph
 * separators and the supplementary variation selectors. Visible text (any script, emoji) is left alone.
 */
const SHOWN_ESCAPED = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}\u{E0100}-\u{E01EF}\\]/gu;

/**
 * `text` with every invisible or control character written as `\u{HEX}` (tab, line feed and carriage return
 * as `\t`, `\n`, `\r`) and a literal backslash doubled, so the result shows exactly what is there and an
 * escape in the output cannot be confused with one in the input. `escapeBackslash: false` is for text that
 * is already JSON-escaped (its backslashes are escapes themselves).
 */
export function showInvisible(text: string, opts: { readonly escapeBackslash?: boolean } = {}): string {
  const escapeBackslash = opts.escapeBackslash ?? true;
  return text.replace(SHOWN_ESCAPED, (ch) => {
    switch (ch) {
      case '\\':
        return escapeBackslash ? '\\\\' : ch;
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      default:
        return `\\u{${ch.codePointAt(0)!.toString(16).toUpperCase()}}`;
    }
  });
}

/** True when `showInvisible` would change anything other than backslashes, line feeds and tabs. */
export function hasInvisible(text: string): boolean {
  for (const m of text.matchAll(SHOWN_ESCAPED)) {
    if (m[0] !== '\\' && m[0] !== '\n' && m[0] !== '\t') return true;
  }
  return false;
}

/** The ASCII text that tag characters U+E0020–U+E007E spell (other tag characters are dropped). */
export function decodeTagCharacters(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0xe0020 && cp <= 0xe007e) out += String.fromCharCode(cp - 0xe0000);
  }
  return out;
}

/** At most `max` code points of `text` (never splits a surrogate pair), with `…` when shortened. */
export function clipCodePoints(text: string, max: number): string {
  let count = 0;
  let end = 0;
  for (const ch of text) {
    if (count === max) return `${text.slice(0, end)}…`;
    count++;
    end += ch.length;
  }
  return text;
}

/** The number of code points in `text`. */
export function codePointLength(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** A JSON pointer segment (RFC 6901) as shown in a message: escaped, invisible characters made visible. */
export function shownSegment(part: string): string {
  return showInvisible(escapePointer(part));
}
