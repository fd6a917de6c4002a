import { fail, PASS, type CheckResult } from './check-result.js';

/**
 * `kind: path` — the argument is an absolute POSIX path inside one of the allowed roots (threat model #10,
 * CVE-2025-53110). The check is textual and strict: rather than guess how the upstream will decode or resolve
 * a path, it refuses everything that could be read two ways.
 *
 * Refused: non-strings; empty or over-long values; NUL and other control characters; backslashes (mixed
 * separators: on Windows `\` is a separator too); percent-encodings of `.`, `/`, `\`, `%` (double encoding),
 * NUL and overlong UTF-8 forms (`%2e%2e/`, `..%2f`, `%252e`, `%c0%ae`); non-ASCII characters that Unicode
 * normalisation (NFKC) turns into `.`, `/` or `\` (`．．／`), and the division and fraction slashes; a leading
 * `~` or any segment starting with `~` (home-directory expansion); relative paths; a leading `//` (a UNC path
 * on Windows, implementation-defined in POSIX); any `..` segment (or a segment of only dots and spaces, which
 * Windows trims to `..`). Doubled separators and `.` segments are normalised away. The remaining segments are
 * compared one by one with each root's, so `/data/ok_evil` is not under `/data/ok`. Comparison is
 * case-sensitive: on a case-insensitive filesystem a differently-cased path is refused, never admitted.
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
  | 'unicode_lookalike'
  | 'home_directory'
  | 'relative'
  | 'unc_path'
  | 'dot_dot'
  | 'outside_roots';

export const MAX_PATH_LENGTH = 4096;

/** An allowed root, split into segments once (see `parsePathRoot`). */
export interface PathRoot {
  readonly text: string;
  readonly segments: readonly string[];
}

const CONTROL = /[\u0000-\u001f\u007f]/;
/** %2e . %2f / %5c \ %25 % %00 NUL, overlong UTF-8 leads (%c0 %c1, %e0%8x/%9x, %f0%8x), IIS %uXXXX. */
const DANGEROUS_ENCODING = /%(?:2e|2f|5c|25|00|c0|c1|u[0-9a-f]{4})|%e0%[89][0-9a-f]|%f0%8[0-9a-f]/i;
const NON_ASCII = /[^\u0000-\u007f]/;
/** Look like a slash without normalising to one. */
const SLASH_LOOKALIKES = new Set(['\u2215', '\u2044', '\u29f8', '\u29f9']);
const DOTS_AND_SPACES = /^[. ]*\.[. ]*\.[. ]*$/;

/** Checks `value` and, when it passes, returns its normalised segments. */
export function normalisePath(value: unknown): { ok: true; segments: string[] } | { ok: false; reason: PathRefusal } {
  if (typeof value !== 'string') return fail('not_a_string');
  if (value.length === 0) return fail('empty');
  if (value.length > MAX_PATH_LENGTH) return fail('too_long');
  if (value.includes('\u0000')) return fail('nul_byte');
  if (CONTROL.test(value)) return fail('control_character');
  if (value.includes('\\')) return fail('backslash');
  if (DANGEROUS_ENCODING.test(value)) return fail('encoded_character');
  if (NON_ASCII.test(value) && hasLookalike(value)) return fail('unicode_lookalike');
  if (value.startsWith('~')) return fail('home_directory');
  if (!value.startsWith('/')) return fail('relative');
  if (value.startsWith('//')) return fail('unc_path');
  const segments: string[] = [];
  for (const segment of value.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..' || DOTS_AND_SPACES.test(segment)) return fail('dot_dot');
    if (segment.startsWith('~')) return fail('home_directory');
    segments.push(segment);
  }
  return { ok: true, segments };
}

/** An allowed root must itself pass the checks; `/srv/sandbox/` and `/srv//sandbox` become `/srv/sandbox`. */
export function parsePathRoot(text: string): { ok: true; root: PathRoot } | { ok: false; reason: PathRefusal } {
  const n = normalisePath(text);
  if (!n.ok) return n;
  return { ok: true, root: Object.freeze({ text: `/${n.segments.join('/')}`, segments: Object.freeze(n.segments) }) };
}

export function checkPathUnderRoots(value: unknown, roots: readonly PathRoot[]): CheckResult<PathRefusal> {
  const n = normalisePath(value);
  if (!n.ok) return n;
  for (const root of roots) if (isUnder(n.segments, root.segments)) return PASS;
  return fail('outside_roots');
}

function isUnder(segments: readonly string[], root: readonly string[]): boolean {
  if (segments.length < root.length) return false;
  for (let i = 0; i < root.length; i++) if (segments[i] !== root[i]) return false;
  return true;
}

function hasLookalike(value: string): boolean {
  for (const ch of value) {
    if (ch.charCodeAt(0) < 0x80) continue;
    if (SLASH_LOOKALIKES.has(ch)) return true;
    const folded = ch.normalize('NFKC');
    if (folded.includes('.') || folded.includes('/') || folded.includes('\\')) return true;
  }
  return false;
}
