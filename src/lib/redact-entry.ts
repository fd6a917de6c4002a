/**
 * One `audit.redact` entry, shared by the config loader (which reports a bad one as `file:line: path: problem`)
 * and the audit redactor: `/regex/flags` is a pattern replaced inside every string, anything else a key name
 * whose value is replaced (compared as `normaliseKey` folds it).
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

/**
 * Key names as compared: only their letters and digits, lower-case (`X-Api-Key` = `x_api_key` = `api:key` →
 * `xapikey`). A client chooses its argument names, so spelling tricks must not hide a secret-named key: NFKC
 * folds full-width and compatibility forms (`ｐａｓｓｗｏｒｄ`), dropping every non-letter/digit removes zero-width
 * and other format characters (`pass\u200Bword`) and combining marks, and the lookalikes below (Turkish dotless
 * ı, Cyrillic and Greek letters drawn like Latin ones, Unicode TR39 confusables) are read as their Latin twin.
 */
export function normaliseKey(key: string): string {
  // Plain ASCII (nearly every key): NFKC/NFKD change nothing there and no ASCII letter is a lookalike, so only
  // case and the non-alphanumerics are left to fold.
  if (PRINTABLE_ASCII.test(key)) return key.toLowerCase().replace(NOT_ASCII_ALNUM, '');
  const folded = key.normalize('NFKC').toLowerCase().normalize('NFKD');
  let out = '';
  for (const ch of folded.replace(/[^\p{L}\p{N}]/gu, '')) out += LOOKALIKES[ch] ?? ch;
  return out;
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const NOT_ASCII_ALNUM = /[^a-z0-9]/g;

/** Lower-case letters that render like a Latin letter (TR39 confusables, the ones a key name could use). */
const LOOKALIKES: Readonly<Record<string, string>> = {
  ı: 'i',
  і: 'i',
  ι: 'i',
  ӏ: 'l',
  а: 'a',
  α: 'a',
  е: 'e',
  ε: 'e',
  о: 'o',
  ο: 'o',
  р: 'p',
  ρ: 'p',
  с: 'c',
  ϲ: 'c',
  ѕ: 's',
  х: 'x',
  χ: 'x',
  у: 'y',
  γ: 'y',
  к: 'k',
  κ: 'k',
  ԁ: 'd',
  һ: 'h',
  ј: 'j',
  ԛ: 'q',
  ԝ: 'w',
  ν: 'v',
  τ: 't',
  т: 't',
  п: 'n',
  η: 'n',
  в: 'b',
  м: 'm',
};
