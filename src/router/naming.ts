import { createHash } from 'node:crypto';

/** MCP 2025-11-25 server/tools §Tool Names: 1–128 characters of A–Z a–z 0–9 _ - . */
export const TOOL_NAME_RE = /^[A-Za-z0-9._-]{1,128}$/;
const INVALID_CHARS = /[^A-Za-z0-9._-]/g;
const HASH_LENGTH = 8;

export interface NamingOptions {
  separator: string;
  maxNameLength: number;
  /** False when a single upstream is exposed unprefixed. */
  prefixed: boolean;
}

/**
 * The name a client sees for an upstream's tool or prompt: `<upstream><separator><name>`. Upstream names
 * cannot contain `_` or `.`, so the first separator splits the name back unambiguously; the catalogue keeps
 * the mapping anyway, because a name that had to be shortened or cleaned is only reversible through it.
 *
 * A name that is too long, or that carries characters outside the rule, becomes a readable prefix plus a
 * short hash of the original (deterministic: the same tool gets the same name on every replica and restart).
 */
export function exposedName(upstream: string, original: string, opts: NamingOptions): string {
  const cleaned = original.replace(INVALID_CHARS, '_');
  const full = opts.prefixed ? `${upstream}${opts.separator}${cleaned}` : cleaned;
  if (cleaned === original && full.length <= opts.maxNameLength && full.length > 0) return full;
  const hash = createHash('sha256').update(`${upstream}\0${original}`).digest('hex').slice(0, HASH_LENGTH);
  const room = opts.maxNameLength - HASH_LENGTH - 1;
  return `${full.slice(0, room)}-${hash}`;
}
