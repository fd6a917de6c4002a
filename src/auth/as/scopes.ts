/**
 * Scopes: parsing (RFC 6749 §3.3), and what a user may be granted from their IdP claims
 * (`auth.builtin.scopeMapping`). Pure.
 */
import type { BuiltinAsConfig } from '../../config/types.js';

/** RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** Parses a space-separated scope; undefined when malformed. Duplicates collapse; order is kept. */
export function parseScope(value: string): string[] | undefined {
  if (value.length > 2000) return undefined;
  const tokens = value.split(' ').filter((t) => t !== '');
  if (!tokens.every((t) => SCOPE_TOKEN.test(t))) return undefined;
  return [...new Set(tokens)];
}

/**
 * Scopes the user's claims earn: the union of the `scopes` of every mapping entry whose claim has the
 * value (a string claim equal to it, or an array claim containing it). Unknown or odd-typed claims earn nothing.
 */
export function scopesFromClaims(
  claims: Readonly<Record<string, unknown>>,
  mapping: BuiltinAsConfig['scopeMapping'],
): Set<string> {
  const out = new Set<string>();
  for (const rule of mapping) {
    const v = Object.hasOwn(claims, rule.claim) ? claims[rule.claim] : undefined;
    const hit =
      typeof v === 'string'
        ? v === rule.value
        : Array.isArray(v)
          ? v.some((x) => x === rule.value)
          : typeof v === 'boolean' || typeof v === 'number'
            ? String(v) === rule.value
            : false;
    if (hit) for (const s of rule.scopes) out.add(s);
  }
  return out;
}

/** Groups carried into access tokens are bounded: a token travels in every request header. */
export const MAX_GROUPS = 50;
export const MAX_GROUPS_CHARS = 4096;

/** Groups as a list of strings (bounded in count and total length), from a claim that may be a string or an array. */
export function groupsFromClaim(value: unknown): string[] {
  const all = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
  const out: string[] = [];
  let chars = 0;
  for (const g of all) {
    if (typeof g !== 'string' || g === '' || g.length > 256) continue;
    if (out.length >= MAX_GROUPS || chars + g.length > MAX_GROUPS_CHARS) break;
    out.push(g);
    chars += g.length;
  }
  return out;
}
