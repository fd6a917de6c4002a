/**
 * Built-in redaction of every audit record, applied before it is hashed and written: on top of the policy's
 * `redact` fields (arguments only), anything that looks like a credential is replaced wherever it appears —
 * values under keys such as `password` or `authorization`, and token-shaped text (Bearer …, JWTs, `sk-…`,
 * `ghp_…`, AWS key ids, PEM private keys, `user:pass@` in URLs) inside any string. The copy is bounded
 * (depth, string length, items), so one huge argument cannot make a huge record.
 */

import { normaliseKey, type RedactEntry } from '../lib/redact-entry.js';
import { NO_SECRETS, type SecretRedactor } from '../lib/secret-redactor.js';
import { canonicalJson, quotedKey, sortedKeys } from './canonical-json.js';

export { parseRedactEntry, type RedactEntry } from '../lib/redact-entry.js';

export const REDACTED = '[REDACTED]';

const MAX_DEPTH = 12;
const MAX_STRING = 4096;
const MAX_ITEMS = 256;

/** Key names (as `normaliseKey` folds them: letters and digits, lower-case) whose values are always replaced. */
const SENSITIVE_KEY_PARTS = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'authorization',
  'apikey',
  'accesskey',
  'cookie',
  'privatekey',
  'signingkey',
  'credential',
  'signature',
  'token',
  'sessionid',
];
const SENSITIVE_KEYS = new Set(['pwd', 'auth', 'jwt', 'bearer', 'otp', 'pin', 'xapikey']);
/** `token` in a name that counts tokens (LLM parameters such as `max_tokens`) or splits text, not a credential. */
const TOKEN_COUNT =
  /tokeni[sz]|(?:max|min|num|total|input|output|prompt|completion|reasoning|cached)tokens?(?:count|limit|used)?$|tokens?(?:count|used|usage|limit|budget)$/;

/** Token-shaped text. Each is replaced by its `keep` prefix (when any) and `[REDACTED]`. Exported for its test. */
export const SECRET_PATTERNS: readonly { re: RegExp; keep?: string }[] = [
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
  // A URL's userinfo (`redis://:pw@`, `https://user:pw@`, `https://<token>@`), and secret-named query parameters.
  { re: /(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s@?#]+@/gi, keep: '$1' },
  {
    re: /([?&;](?:access_token|refresh_token|id_token|token|api_key|apikey|key|secret|client_secret|password|sig|signature)=)[^&#\s"]+/gi,
    keep: '$1',
  },
];

/** The member holding the value in a name/value pair. */
const VALUE_KEYS = new Set(['value', 'val', 'data']);

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * One pass that every string the built-in patterns (or LONE_SURROGATE) could change matches: each pattern above
 * needs one of these literals (case-folded here, so a superset). Most audited strings (ids, names, short
 * arguments) match none, and then the thirteen patterns are not run at all — same result, one scan instead of
 * fourteen. Keep in step with SECRET_PATTERNS (test/unit/audit-fast-paths.test.ts checks it against each pattern).
 */
export const MAY_HOLD_SECRET =
  /[\uD800-\uDFFF]|-----begin |bearer|basic|digest|dpop|eyj|[spr]k[-_]|gh[pousr]_|github_pat_|glpat-|xox[abposr]-|aiza|akia|asia|agpa|aida|aroa|anpa|anva|aipa|:\/\/|[?&;](?:access_token|refresh_token|id_token|token|api_key|apikey|key|secret|client_secret|password|sig|signature)=/i;

/** Key names repeat across records: their verdict and redacted spelling are kept (bounded; long names are not kept). */
const MAX_CACHED_KEYS = 2048;
const MAX_CACHED_KEY_LENGTH = 128;

export type Redactor = ((value: unknown) => unknown) & {
  /**
   * `canonicalJson(redactor(value))` in one pass, without the redacted copy: the audit record's text (what is
   * hashed and written). test/unit/audit-fast-paths.test.ts holds the two equal over generated values.
   */
  json(value: unknown): string;
};

/**
 * A redactor with the built-in rules, the extra `audit.redact` entries (already parsed and checked) and the
 * values of the known secrets (threat model #17: an upstream's error text or a client's argument may hold one).
 */
export function createRedactor(extra: readonly RedactEntry[] = [], secrets: SecretRedactor = NO_SECRETS): Redactor {
  const keys = new Set(extra.filter((e) => e.kind === 'key').map((e) => e.name));
  const patterns: readonly { re: RegExp; keep?: string }[] = [
    ...SECRET_PATTERNS,
    ...extra.flatMap((e) => (e.kind === 'pattern' ? [{ re: e.re }] : [])),
  ];
  const isSensitiveKey = (key: string): boolean => {
    const k = normaliseKey(key);
    if (keys.has(k) || SENSITIVE_KEYS.has(k)) return true;
    return (
      SENSITIVE_KEY_PARTS.some((p) => k.includes(p)) &&
      !(k.includes('token') && TOKEN_COUNT.test(k) && !SENSITIVE_KEY_PARTS.some((p) => p !== 'token' && k.includes(p)))
    );
  };
  const extraPatterns = patterns.slice(SECRET_PATTERNS.length);
  const replaceAll = (out: string, list: readonly { re: RegExp; keep?: string }[]): string => {
    for (const { re, keep } of list) {
      re.lastIndex = 0;
      out = out.replace(re, keep !== undefined ? `${keep}${REDACTED}` : REDACTED);
    }
    return out;
  };
  const text = (s: string): string => {
    // Known secrets first: a pattern below could otherwise replace only part of one.
    let out = secrets.text(s);
    if (MAY_HOLD_SECRET.test(out)) {
      // A lone surrogate would not survive UTF-8 (it becomes U+FFFD on disk) and would break the record's hash.
      out = replaceAll(out.replace(LONE_SURROGATE, '\uFFFD'), SECRET_PATTERNS);
    }
    if (extraPatterns.length > 0) out = replaceAll(out, extraPatterns);
    // Cut after redacting: a token cut in half would no longer match its pattern.
    return out.length > MAX_STRING ? `${out.slice(0, MAX_STRING)}…(+${out.length - MAX_STRING} chars)` : out;
  };
  // Per redactor: the verdict depends on its `audit.redact` keys. Cleared when full, so a client sending endless
  // new names costs only the uncached work, never memory.
  const keyCache = new Map<string, { text: string; sensitive: boolean }>();
  const keyInfo = (k: string): { text: string; sensitive: boolean } => {
    let info = keyCache.get(k);
    if (info !== undefined) return info;
    info = { text: text(k), sensitive: isSensitiveKey(k) };
    if (k.length <= MAX_CACHED_KEY_LENGTH) {
      if (keyCache.size >= MAX_CACHED_KEYS) keyCache.clear();
      keyCache.set(k, info);
    }
    return info;
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
    const record = value as Record<string, unknown>;
    // A header or variable list as name/value pairs (`{ name: 'X-Api-Key', value: '…' }`, HAR, k8s env): the
    // name says the value is secret, just as a key would.
    const named = record.name ?? record.key;
    const secretValue = typeof named === 'string' && keyInfo(named).sensitive;
    let n = 0;
    for (const [k, v] of Object.entries(record)) {
      if (v === undefined) continue;
      if (++n > MAX_ITEMS) {
        out['…'] = `+${Object.keys(value).length - MAX_ITEMS} keys`;
        break;
      }
      const key = keyInfo(k);
      const hidden = (key.sensitive || (secretValue && VALUE_KEYS.has(k))) && v !== null && v !== '';
      const copy = hidden ? REDACTED : walk(v, depth + 1);
      // defineProperty: a key named `__proto__` stays a plain member of the copy (plain assignment is faster otherwise).
      if (key.text === '__proto__')
        Object.defineProperty(out, key.text, { value: copy, enumerable: true, writable: true, configurable: true });
      else out[key.text] = copy;
    }
    return out;
  };
  /** The canonical JSON of `walk(value, depth)`; undefined where canonicalJson drops a member (undefined, functions, symbols). */
  const json = (value: unknown, depth: number): string | undefined => {
    if (typeof value === 'string') return JSON.stringify(text(value));
    if (value === null) return 'null';
    if (typeof value !== 'object') {
      if (typeof value === 'bigint') return JSON.stringify(String(value));
      return value === undefined || typeof value === 'function' || typeof value === 'symbol'
        ? undefined
        : JSON.stringify(value);
    }
    if (depth >= MAX_DEPTH) return '"[too deep]"';
    if (Array.isArray(value)) {
      const n = Math.min(value.length, MAX_ITEMS);
      let out = '[';
      for (let i = 0; i < n; i++) out += `${i === 0 ? '' : ','}${json(value[i], depth + 1) ?? 'null'}`;
      if (value.length > MAX_ITEMS)
        out += `${n === 0 ? '' : ','}${JSON.stringify(`…(+${value.length - MAX_ITEMS} items)`)}`;
      return `${out}]`;
    }
    const record = value as Record<string, unknown>;
    const keys = sortedKeys(record);
    // Rare shapes take the two-step path: too many members (the `…` marker), or a key that redaction rewrites
    // (two keys could then become one, and the redacted spelling sorts differently).
    if (keys.length > MAX_ITEMS) return canonicalJson(walk(value, depth));
    const named = record.name ?? record.key;
    const secretValue = typeof named === 'string' && keyInfo(named).sensitive;
    let out = '{';
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const v = record[k];
      if (v === undefined) continue;
      const key = keyInfo(k);
      if (key.text !== k) return canonicalJson(walk(value, depth));
      const hidden = (key.sensitive || (secretValue && VALUE_KEYS.has(k))) && v !== null && v !== '';
      const member = hidden ? REDACTED_JSON : json(v, depth + 1);
      if (member !== undefined) out += `${out.length === 1 ? '' : ','}${quotedKey(k)}:${member}`;
    }
    return `${out}}`;
  };
  const redactor = (value: unknown): unknown => walk(value, 0);
  redactor.json = (value: unknown): string => json(value, 0) ?? 'null';
  return redactor;
}

const REDACTED_JSON = JSON.stringify(REDACTED);
