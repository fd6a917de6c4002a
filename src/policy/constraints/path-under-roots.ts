import { fail, PASS, type CheckResult } from './check-result.js';

/**
 * `kind: path` — the argument is an absolute POSIX path inside one of the allowed roots (threat model #10,
 * CVE-2025-53110). The decision is taken on the raw text, and the raw text is what the gateway forwards
 * (threat model #8: never check one string and send another). So nothing is normalised: a path is admitted only
 * when it is already in the one canonical form that every resolver reads the same way, and everything else is
 * refused rather than repaired.
 *
 * Canonical form: `/` followed by segments joined by single `/`, optionally ending in one `/`. A segment is made
 * of the repertoire below and is not `.`, `..` or any other run of dots and spaces (Windows trims trailing dots
 * and spaces, so `.. ` is `..` there), does not end in `.` or a space, and does not start with `~` (home
 * expansion). The repertoire is an allowlist, not a list of bad characters:
 * - ASCII letters, digits, space and `! # & ' ( ) + , - . = @ [ ] ^ _ { } ~`. Not: controls and NUL; `\` (a
 *   separator on Windows); `%` (a decoder would read `%2e%2e` as `..`); `;` (path parameters: some servers read
 *   `..;/x` as `../x`); `:` (drive letters `C:`, NTFS streams `a:b`); `" * < > ? | $` and backquote (shell and
 *   glob characters, reserved on Windows).
 * - Other scripts: letters (`\p{L}`) and decimal digits (`\p{Nd}`), each followed by any combining marks
 *   (`\p{M}`), so NFC (`é`) and NFD (`e` + U+0301) names both pass. No letter, digit or mark turns into an ASCII
 *   character outside the repertoire under NFC, NFD, NFKC or NFKD, and a mark may not follow `.` or `/`
 *   (`.\u0301.` is `..` to anything that folds accents). Not: format characters (zero-width, bidi controls),
 *   lone surrogates, other spaces, punctuation and symbols (`．` U+FF0E, `∕` U+2215, `／` U+FF0F), private use,
 *   unassigned code points.
 * The segments are then compared one by one with each root's, so `/data/ok_evil` is not under `/data/ok`.
 * Comparison is by code point and case-sensitive: on a case-insensitive filesystem a differently-cased path is
 * refused, never admitted.
 *
 * Not checked, because a pure check cannot see the filesystem: **symbolic links** (CVE-2025-53109). A link
 * inside a root that points outside it passes here; the upstream must resolve real paths (server-filesystem
 * does) or the sandbox must hold no links that leave it.
 */
export type PathRefusal =
  | 'not_a_string'
  | 'empty'
  | 'too_long'
  | 'nul_byte'
  | 'control_character'
  | 'backslash'
  | 'encoded_character'
  | 'path_parameter'
  | 'drive_or_stream'
  | 'disallowed_character'
  | 'lone_surrogate'
  | 'bidi_control'
  | 'format_character'
  | 'combining_mark'
  | 'unicode_lookalike'
  | 'home_directory'
  | 'relative'
  | 'unc_path'
  | 'empty_segment'
  | 'dot_segment'
  | 'dot_dot'
  | 'trailing_dot_or_space'
  | 'outside_roots';

export const MAX_PATH_LENGTH = 4096;

/** An allowed root, split into segments once (see `parsePathRoot`). */
export interface PathRoot {
  readonly text: string;
  readonly segments: readonly string[];
}

/** The whole value in the ASCII repertoire (plus `/`): the common case, one linear scan. */
const ASCII_REPERTOIRE = /^[A-Za-z0-9 !#&'()+,\-./=@[\]^_{}~]*$/;
/**
 * The whole value in the full repertoire. The two alternatives never start on the same character and marks
 * only follow the second, so matching is linear (no backtracking between alternatives).
 */
const REPERTOIRE = /^(?:[ !#&'()+,\-./=@[\]^_{}~]|[\p{L}\p{Nd}]\p{M}*)*$/u;
const LETTER_OR_DIGIT = /^[\p{L}\p{Nd}]$/u;
const MARK = /^\p{M}$/u;
const BIDI_CONTROL = /^\p{Bidi_Control}$/u;
const FORMAT = /^\p{Cf}$/u;
const LONE_SURROGATE = /^\p{Cs}$/u;
const ONLY_DOTS_AND_SPACES = /^[. ]+$/;
/** Look like a slash without NFKC turning them into one. */
const SLASH_LOOKALIKES = new Set(['\u2215', '\u2044', '\u29f8', '\u29f9']);

/**
 * Checks `value` and, when it passes, returns its segments (a trailing `/` adds none). The segments are the
 * value's own text split at `/`: nothing is dropped, decoded or rewritten.
 */
export function parsePath(value: unknown): { ok: true; segments: string[] } | { ok: false; reason: PathRefusal } {
  if (typeof value !== 'string') return fail('not_a_string');
  if (value.length === 0) return fail('empty');
  if (value.length > MAX_PATH_LENGTH) return fail('too_long');
  if (!ASCII_REPERTOIRE.test(value) && !REPERTOIRE.test(value)) return fail(firstRefusedCharacter(value));
  if (!value.startsWith('/')) return fail(value.startsWith('~') ? 'home_directory' : 'relative');
  if (value.startsWith('//')) return fail('unc_path');
  const segments = value.split('/');
  segments.shift();
  // `/dir/` names the same directory as `/dir` for every resolver; the empty last segment carries no name.
  if (segments[segments.length - 1] === '') segments.pop();
  for (const segment of segments) {
    const refusal = refuseSegment(segment);
    if (refusal !== undefined) return fail(refusal);
  }
  return { ok: true, segments };
}

/** An allowed root must itself pass the checks: `/srv/sandbox/` is `/srv/sandbox`; `/srv//sandbox` is refused. */
export function parsePathRoot(text: string): { ok: true; root: PathRoot } | { ok: false; reason: PathRefusal } {
  const n = parsePath(text);
  if (!n.ok) return n;
  return { ok: true, root: Object.freeze({ text: `/${n.segments.join('/')}`, segments: Object.freeze(n.segments) }) };
}

export function checkPathUnderRoots(value: unknown, roots: readonly PathRoot[]): CheckResult<PathRefusal> {
  const n = parsePath(value);
  if (!n.ok) return n;
  for (const root of roots) if (isUnder(n.segments, root.segments)) return PASS;
  return fail('outside_roots');
}

function refuseSegment(segment: string): PathRefusal | undefined {
  if (segment === '') return 'empty_segment';
  if (ONLY_DOTS_AND_SPACES.test(segment)) {
    const dots = segment.split('.').length - 1;
    return dots >= 2 ? 'dot_dot' : dots === 1 ? 'dot_segment' : 'trailing_dot_or_space';
  }
  const last = segment.charCodeAt(segment.length - 1);
  if (last === 0x2e || last === 0x20) return 'trailing_dot_or_space';
  if (segment.charCodeAt(0) === 0x7e) return 'home_directory';
  return undefined;
}

function isUnder(segments: readonly string[], root: readonly string[]): boolean {
  if (segments.length < root.length) return false;
  for (let i = 0; i < root.length; i++) if (segments[i] !== root[i]) return false;
  return true;
}

/** Why the first character outside the repertoire is refused (only on the refusal path: names the audit reason). */
function firstRefusedCharacter(value: string): PathRefusal {
  let previous = '/';
  for (const ch of value) {
    const reason = refuseCharacter(ch, previous);
    if (reason !== undefined) return reason;
    previous = ch;
  }
  return 'disallowed_character'; // unreachable: the repertoire refused something
}

function refuseCharacter(ch: string, previous: string): PathRefusal | undefined {
  const code = ch.codePointAt(0)!;
  if (code < 0x80) {
    if (ASCII_REPERTOIRE.test(ch)) return undefined;
    if (code === 0) return 'nul_byte';
    if (code < 0x20 || code === 0x7f) return 'control_character';
    if (ch === '\\') return 'backslash';
    if (ch === '%') return 'encoded_character';
    if (ch === ';') return 'path_parameter';
    if (ch === ':') return 'drive_or_stream';
    return 'disallowed_character';
  }
  if (LETTER_OR_DIGIT.test(ch)) return undefined;
  if (MARK.test(ch)) return LETTER_OR_DIGIT.test(previous) || MARK.test(previous) ? undefined : 'combining_mark';
  if (LONE_SURROGATE.test(ch)) return 'lone_surrogate';
  if (BIDI_CONTROL.test(ch)) return 'bidi_control';
  if (FORMAT.test(ch)) return 'format_character';
  if (code <= 0x9f) return 'control_character';
  const folded = ch.normalize('NFKC');
  const looksLikeSeparator = folded.includes('.') || folded.includes('/') || folded.includes('\\');
  if (SLASH_LOOKALIKES.has(ch) || looksLikeSeparator) return 'unicode_lookalike';
  return 'disallowed_character';
}
