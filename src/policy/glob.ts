/**
 * Glob matchers for policy patterns, built without turning user text into a regular expression (no escaping to
 * get wrong, no backtracking to exploit). Two dialects:
 *
 * - **name globs** (tools, prompts, subjects, certificate names): `*` matches any run of characters, including
 *   none; every other character is literal. `orders__*`, `*__get-env`, `*`.
 * - **URI globs** (resources): `*` matches any run of characters except `/`; `**` matches any run including `/`.
 *   `file:///srv/docs/*.md` matches `file:///srv/docs/a.md`, not `file:///srv/docs/x/a.md`; `file:///srv/**`
 *   matches both.
 *
 * Matching is case-sensitive and always anchored at both ends. There is no escape for a literal `*`.
 */

export interface Glob {
  readonly source: string;
  /** True when the pattern has no wildcard (then `matches` is string equality). */
  readonly isExact: boolean;
  /** The literal text before the first wildcard and after the last one (used to index patterns). */
  readonly prefix: string;
  readonly suffix: string;
  matches(text: string): boolean;
}

export function nameGlob(source: string): Glob {
  const parts = source.split('*');
  if (parts.length === 1) return exact(source);
  const prefix = parts[0]!;
  const suffix = parts[parts.length - 1]!;
  const middle = parts.slice(1, -1).filter((p) => p.length > 0);
  const minLength = prefix.length + suffix.length;
  return Object.freeze({
    source,
    isExact: false,
    prefix,
    suffix,
    matches(text: string): boolean {
      if (text.length < minLength || !text.startsWith(prefix) || !text.endsWith(suffix)) return false;
      // With `*` as the only wildcard, taking each middle literal at its leftmost place is always right:
      // it leaves the most room for the rest. Linear in the text for a fixed pattern.
      let at = prefix.length;
      const end = text.length - suffix.length;
      for (const part of middle) {
        const found = text.indexOf(part, at);
        if (found < 0 || found + part.length > end) return false;
        at = found + part.length;
      }
      return true;
    },
  });
}

type UriToken = { kind: 'literal'; text: string } | { kind: 'star' } | { kind: 'globstar' };

export function uriGlob(source: string): Glob {
  if (!source.includes('*')) return exact(source);
  const tokens: UriToken[] = [];
  for (const piece of source.split(/(\*\*|\*)/)) {
    if (piece === '') continue;
    const token: UriToken =
      piece === '**' ? { kind: 'globstar' } : piece === '*' ? { kind: 'star' } : { kind: 'literal', text: piece };
    // `***` and `**` `*` in a row mean the same as one `**`.
    const last = tokens[tokens.length - 1];
    if (token.kind !== 'literal' && last !== undefined && last.kind !== 'literal') {
      if (token.kind === 'globstar') tokens[tokens.length - 1] = token;
      continue;
    }
    tokens.push(token);
  }
  const first = tokens[0]!;
  const final = tokens[tokens.length - 1]!;
  const prefix = first.kind === 'literal' ? first.text : '';
  let matches = (text: string): boolean => matchUriTokens(tokens, text);
  // The common shapes, `file:///srv/docs/**` and `file:///srv/docs/*`, need no walk.
  if (tokens.length === 2 && first.kind === 'literal') {
    if (final.kind === 'globstar') matches = (text) => text.startsWith(prefix);
    else if (final.kind === 'star') matches = (text) => text.startsWith(prefix) && !text.includes('/', prefix.length);
  }
  return Object.freeze({
    source,
    isExact: false,
    prefix,
    suffix: final.kind === 'literal' && tokens.length > 1 ? final.text : '',
    matches,
  });
}

/**
 * Walks the tokens over the set of positions reachable so far: O(text length × tokens), whatever the input.
 */
function matchUriTokens(tokens: readonly UriToken[], text: string): boolean {
  const n = text.length;
  let reach = new Uint8Array(n + 1);
  reach[0] = 1;
  for (const token of tokens) {
    const next = new Uint8Array(n + 1);
    let any = false;
    if (token.kind === 'literal') {
      const len = token.text.length;
      for (let p = 0; p + len <= n; p++) {
        if (reach[p] === 1 && text.startsWith(token.text, p)) {
          next[p + len] = 1;
          any = true;
        }
      }
    } else if (token.kind === 'globstar') {
      let p = 0;
      while (p <= n && reach[p] !== 1) p++;
      for (; p <= n; p++) {
        next[p] = 1;
        any = true;
      }
    } else {
      // `*`: extend each reachable position over characters other than '/'.
      let open = false;
      for (let p = 0; p <= n; p++) {
        if (reach[p] === 1) open = true;
        if (open) {
          next[p] = 1;
          any = true;
        }
        if (p < n && text.charCodeAt(p) === 0x2f) open = false;
      }
    }
    if (!any) return false;
    reach = next;
  }
  return reach[n] === 1;
}

function exact(source: string): Glob {
  return Object.freeze({
    source,
    isExact: true,
    prefix: source,
    suffix: '',
    matches: (text: string) => text === source,
  });
}
