/**
 * Match a URI against an RFC 6570 template, enough to route `resources/read` to the upstream that owns the
 * template: simple `{var}` stops at `/`, `{+var}` and `{#var}` take the rest, `{?a,b}`/`{&a}` accept a query.
 */
export function templateMatcher(template: string): RegExp | undefined {
  let re = '^';
  let last = 0;
  for (const m of template.matchAll(/\{([^}]*)\}/g)) {
    re += escape(template.slice(last, m.index));
    const expr = m[1] ?? '';
    const op = expr[0];
    if (op === '+' || op === '#') re += '(.*)';
    else if (op === '?' || op === '&') re += '(?:[?&].*)?';
    else if (op === '/' || op === '.' || op === ';') re += '(.*)';
    else if (/^[A-Za-z0-9_%,.*:]+$/.test(expr)) re += '([^/?#]+)';
    else return undefined;
    last = m.index + m[0].length;
  }
  re += `${escape(template.slice(last))}$`;
  try {
    return new RegExp(re);
  } catch {
    return undefined;
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
