/**
 * Built-in redaction of every audit record, applied before it is hashed and written: on top of the policy's
 * `redact` fields (arguments only), anything that looks like a credential is replaced wherever it appears —
 * values under keys such as `password` or `authorization`, and token-shaped text (Bearer …, JWTs, `sk-…`,
 * `ghp_…`, AWS key ids, PEM private keys, `user:pass@` in URLs) inside any string. The copy is bounded
 * (depth, string length, items), so one huge argument cannot make a huge record.
 */

import { normaliseKey, type RedactEntry } from '../lib/redact-entry.js';

export { parseRedactEntry, type RedactEntry } from '../lib/redact-entry.js';

export const REDACTED = '[REDACTED]';

const MAX_DEPTH = 12;
const MAX_STRING = 4096;
const MAX_ITEMS = 256;

/** Key names (compared lower-case without `-`, `_`, `.`, spaces) whose values are always replaced. */
const SENSITIVE_KEY_PARTS = ['password', 'passwd', 'passphrase', 'secret', 'authorization', 'apikey', 'cookie', 'privatekey', 'credential', 'signature'];
const SENSITIVE_KEYS = new Set(['pwd', 'auth', 'jwt', 'bearer', 'otp', 'pin', 'sessionid', 'xapikey']);

/** Token-shaped text. Each is replaced by its `keep` prefix (when any) and `[REDACTED]`. */
const SECRET_PATTERNS: readonly { re: RegExp; keep?: string }[] = [
  { re: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g },
  { re: /\b(Bearer|Basic|Digest|DPoP)\s+[A-Za-z0-9\-._~+/]{8,}=*/gi, keep: '$1 ' },
  // JWS (3 parts) and JWE (5 parts): a base64url JSON header starts with `eyJ` ('{"').
  { re: /\beyJ[A-Za-z0-9_-]{6,}(?:\.[A-Za-z0-9_-]*){1,4}/g },
  { re: /\b(?:sk|pk|rk)-(?:[A-Za-z0-9]+-)*[A-Za-z0-9_-]{16,}/g },
  { re: /\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{12,}/g },
  { re: /\bgh[pousr]_[A-Za-z0-9]{20,}/g },
  { re: /\bgithub_pat_[A-Za-z0-9_]{20,}/g },
  { re: /\bglpat-[A-Za-z0-9_-]{16,}/g },
  { re: /\bxox[abposr]-[A-Za-z0-9-]{10,}/g },
  { re: /\bAIza[0-9A-Za-z_-]{30,}/g },
  { re: /\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b/g },
  // A credential in a URL's userinfo, and secret-named query parameters.
  { re: /(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+:[^/\s@]+@/gi, keep: '$1' },
  { re: /([?&;](?:access_token|refresh_token|id_token|token|api_key|apikey|key|secret|client_secret|password|sig|signature)=)[^&#\s"]+/gi, keep: '$1' },
];

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export type Redactor = (value: unknown) => unknown;

/** A redactor with the built-in rules and the extra `audit.redact` entries (already parsed and checked). */
export function createRedactor(extra: readonly RedactEntry[] = []): Redactor {
  const keys = new Set(extra.filter((e) => e.kind === 'key').map((e) => e.name));
  const patterns: readonly { re: RegExp; keep?: string }[] = [...SECRET_PATTERNS, ...extra.flatMap((e) => (e.kind === 'pattern' ? [{ re: e.re }] : []))];
  const isSensitiveKey = (key: string): boolean => {
    const k = normaliseKey(key);
    return keys.has(k) || SENSITIVE_KEYS.has(k) || k.endsWith('token') || SENSITIVE_KEY_PARTS.some((p) => k.includes(p));
  };
  const text = (s: string): string => {
    // A lone surrogate would not survive UTF-8 (it becomes U+FFFD on disk) and would break the record's hash.
    let out = s.replace(LONE_SURROGATE, '\uFFFD');
    for (const { re, keep } of patterns) {
      re.lastIndex = 0;
      out = out.replace(re, keep !== undefined ? `${keep}${REDACTED}` : REDACTED);
    }
    // Cut after redacting: a token cut in half would no longer match its pattern.
    return out.length > MAX_STRING ? `${out.slice(0, MAX_STRING)}…(+${out.length - MAX_STRING} chars)` : out;
  };
  const walk = (value: unknown, depth: number): unknown => {
    if (typeof value === 'string') return text(value);
    if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? String(value) : value;
    if (depth >= MAX_DEPTH) return '[too deep]';
    if (Array.isArray(value)) {
      const items = value.slice(0, MAX_ITEMS).map((v) => walk(v, depth + 1));
      if (value.length > MAX_ITEMS) items.push(`…(+${value.length - MAX_ITEMS} items)`);
      return items;
    }
    const out: Record<string, unknown> = {};
    let n = 0;
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined) continue;
      if (++n > MAX_ITEMS) {
        out['…'] = `+${Object.keys(value).length - MAX_ITEMS} keys`;
        break;
      }
      // defineProperty: a key named `__proto__` stays a plain member of the copy.
      Object.defineProperty(out, text(k), { value: isSensitiveKey(k) && v !== null && v !== '' ? REDACTED : walk(v, depth + 1), enumerable: true, writable: true, configurable: true });
    }
    return out;
  };
  return (value) => walk(value, 0);
}
