import { fail, PASS, type CheckResult } from './check-result.js';

/**
 * `kind: noLeadingDash` — a value that an upstream may put on a command line must not be readable as an
 * option (threat model #11, CVE-2025-68144: `--upload-pack=…`). Refused: a string starting with `-` (also
 * after leading whitespace, which a shell would strip), a negative number (it prints as `-5`), and any array
 * element that is either, at any depth: an upstream that flattens `[["-x"]]` into its argument list sees `-x`.
 * Other types pass; pair this with a `pattern` in the schema fragment when the field's shape is known.
 */
export type DashRefusal = 'leading_dash';

export function checkNoLeadingDash(value: unknown): CheckResult<DashRefusal> {
  return hasLeadingDash(value) ? fail('leading_dash') : PASS;
}

function hasLeadingDash(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasLeadingDash);
  return startsWithDash(value);
}

function startsWithDash(value: unknown): boolean {
  if (typeof value === 'string') return /^\s*-/.test(value);
  if (typeof value === 'number') return value < 0 || Object.is(value, -0);
  return false;
}
