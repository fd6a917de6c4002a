/**
 * One `audit.redact` entry, shared by the config loader (which reports a bad one as `file:line: path: problem`)
 * and the audit redactor: `/regex/flags` is a pattern replaced inside every string, anything else a key name
 * whose value is replaced (compared lower-case, without `-`, `_`, `.` and spaces).
 */
export type RedactEntry = { kind: 'key'; name: string } | { kind: 'pattern'; re: RegExp };

/** Parses one entry; a message for a bad pattern. */
export function parseRedactEntry(entry: string): RedactEntry | { error: string } {
  const m = /^\/(.+)\/([a-z]*)$/s.exec(entry);
  if (m === null) return { kind: 'key', name: normaliseKey(entry) };
  const flags = m[2]!;
  if (/[^imsu]/.test(flags)) return { error: `pattern flags may only be i, m, s, u (got "${flags}")` };
  try {
    return { kind: 'pattern', re: new RegExp(m[1]!, `${flags}g`) };
  } catch (err) {
    return { error: `not a valid regular expression: ${(err as Error).message}` };
  }
}

/** Key names as compared: lower-case, without `-`, `_`, `.` and spaces (`X-Api-Key` = `x_api_key` = `xapikey`). */
export function normaliseKey(key: string): string {
  return key.toLowerCase().replace(/[-_.\s]/g, '');
}
