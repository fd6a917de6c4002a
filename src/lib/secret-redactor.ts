/**
 * Known-secret redaction (threat model #17, OWASP MCP01). The gateway knows every secret it injects into an
 * upstream or holds itself (header keys, secret environment variables of stdio children, its own keys); a legacy
 * upstream that echoes one back — in a result, an error, a log notification, a stderr line — must not hand it
 * to every client, log line and audit record. This is the pure part: the forms a secret takes on the way back
 * (`secretForms`) and one redactor over all of them, built once at start-up and then frozen.
 *
 * Cost: nothing when no secret is configured (`isActive` false: callers skip the walk). Otherwise one regular
 * expression over each string (object keys included), and a copy only of the objects on the path to a string
 * that held a secret.
 */
import { Buffer } from 'node:buffer';

/**
 * Shorter values cannot be redacted without shredding ordinary text (a 3-character secret matches everywhere),
 * so the config loader refuses them and `createSecretRedactor` throws on them.
 */
export const MIN_SECRET_LENGTH = 8;

export const REDACTED_SECRET = '[REDACTED]';
/**
 * What replaces a secret's base64 form: letters only, as long as what it replaces, so a base64 blob stays valid
 * base64 (clients check a resource `blob` against the alphabet, and would refuse the whole result otherwise).
 */
const BASE64_FILLER = 'REDACTED';

/** The mark `truncate()` (lib/json-rpc.ts) leaves where it cut a text. */
const CUT_MARK = '…';
/** The shortest cut-off start of a form that `sample` still removes: three characters say nothing of a key. */
const MIN_CUT_TAIL = 4;

export interface SecretRedactor {
  /** False when no secret is known: every method returns its input, and callers may skip the call. */
  readonly isActive: boolean;
  /**
   * `text` with every form of every secret replaced by `[REDACTED]` — a base64 form by as many letters of
   * `REDACTED…`, so a blob stays valid base64 — and `text` itself when it held none.
   */
  text(text: string): string;
  /**
   * A sample that `truncate()` may have cut (a junk line, a stderr line): as `text`, and a cut-off start of a
   * form left at the cut is removed as well — it is part of a secret even though the whole form is not there.
   */
  sample(text: string): string;
  /**
   * A parsed JSON value with every string — object keys too — redacted. The same reference when nothing held
   * a secret; otherwise a copy of the objects and arrays on the way to what changed (the rest is shared).
   */
  json<T>(value: T): T;
}

/**
 * Every form in which `secret` can come back inside a parsed message, a log line or a sample:
 * - raw;
 * - JSON-escaped, as a string that holds JSON text would carry it (RFC 8259 §7): `JSON.stringify`'s escapes,
 *   with non-ASCII as `\uXXXX` in either hex case (Python's `ensure_ascii`), with `/` as `\/` (PHP) or not;
 * - URL-encoded (RFC 3986 §2.1): `encodeURIComponent` and form encoding (`application/x-www-form-urlencoded`,
 *   `+` for a space), each with upper- and lower-case hex;
 * - base64 and base64url (RFC 4648 §4, §5) of its UTF-8 bytes at each of the three byte alignments: the secret
 *   anywhere inside a longer blob (a resource `blob`, a `Basic` header) always yields one of three substrings
 *   that depend on its bytes alone — the characters that straddle a neighbouring byte are left out.
 * Not recognised: two encodings stacked (base64 of a URL-encoded key), base64 broken into lines, `\u` escapes
 * of plain ASCII letters. Forms are returned without duplicates.
 */
export function secretForms(secret: string): string[] {
  return [...new Set([...textForms(secret), ...base64Forms(secret)])];
}

/** The raw, JSON and URL forms of `secretForms`. */
function textForms(secret: string): Set<string> {
  const forms = new Set<string>([secret]);
  const json = JSON.stringify(secret).slice(1, -1);
  const ascii = json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const asciiUpper = ascii.replace(/\\u([0-9a-f]{4})/g, (_, hex: string) => `\\u${hex.toUpperCase()}`);
  for (const form of [json, ascii, asciiUpper]) {
    forms.add(form);
    forms.add(form.replaceAll('/', '\\/'));
  }
  for (const form of urlForms(secret)) {
    forms.add(form);
    forms.add(form.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()));
  }
  return forms;
}

/** The base64 and base64url forms of `secretForms`: one substring per byte alignment and alphabet. */
export function base64Forms(secret: string): string[] {
  const forms = new Set<string>();
  const bytes = Buffer.from(secret, 'utf8');
  for (let align = 0; align < 3; align++) {
    const base64 = Buffer.concat([Buffer.alloc(align), bytes]).toString('base64');
    // Character i carries bits 6i..6i+5; the secret's bits are 8·align .. 8·(align+n)-1.
    const inner = base64.slice(Math.ceil((8 * align) / 6), Math.floor((8 * (align + bytes.length)) / 6));
    forms.add(inner);
    forms.add(inner.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return [...forms];
}

/** `encodeURIComponent` and form encoding, each with `%20` and with `+` for a space (upper-case hex). */
function urlForms(secret: string): string[] {
  let component: string;
  try {
    component = encodeURIComponent(secret);
  } catch {
    return []; // a lone surrogate: no URL encoder would produce anything from it either
  }
  const form = new URLSearchParams({ s: secret }).toString().slice(2);
  return [component, component.replaceAll('%20', '+'), form, form.replaceAll('+', '%20')];
}

/** The redactor when no secret is configured. */
export const NO_SECRETS: SecretRedactor = Object.freeze({
  isActive: false,
  text: (text: string) => text,
  sample: (text: string) => text,
  json: <T>(value: T) => value,
});

/**
 * One redactor for all `secrets` (their values, each at least `MIN_SECRET_LENGTH` characters). Throws a
 * TypeError for a shorter one: the loader refuses those with a message that names where the secret came from.
 */
export function createSecretRedactor(secrets: Iterable<string>): SecretRedactor {
  const forms = new Set<string>();
  /** Forms other than base64: a span holding one is marked `[REDACTED]`; base64 alone is filled (BASE64_FILLER). */
  const plainForms = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) {
      throw new TypeError(`a secret to redact must have at least ${MIN_SECRET_LENGTH} characters`);
    }
    for (const form of textForms(secret)) {
      plainForms.add(form);
      forms.add(form);
    }
    for (const form of base64Forms(secret)) forms.add(form);
  }
  if (forms.size === 0) return NO_SECRETS;
  // Longest first: where two forms start at one position, the alternation takes the longer.
  const sorted = [...forms].sort((a, b) => b.length - a.length);
  const alternation = sorted.map(escapeRegExp).join('|');
  const shortest = sorted[sorted.length - 1]!.length;
  /** Whether a string holds any form: the one scan that strings without a secret cost. */
  const holds = new RegExp(alternation);
  /** Every position where a form starts, overlaps included (a lookahead consumes nothing). */
  const starts = new RegExp(`(?=(${alternation}))`, 'g');

  const text = (s: string): string => {
    if (s.length < shortest || !holds.test(s)) return s;
    // Overlapping matches (two secrets sharing characters, two forms of one) are merged into one span, so no
    // piece of either survives between two marks.
    let out = '';
    let copied = 0;
    let from = -1;
    let to = -1;
    /** Whether the span holds a form other than base64: then it is marked `[REDACTED]`, else filled. */
    let plain = false;
    const mark = (): string => (plain ? REDACTED_SECRET : filler(to - from));
    starts.lastIndex = 0;
    for (let m = starts.exec(s); m !== null; m = starts.exec(s)) {
      const end = m.index + m[1]!.length;
      if (m.index > to) {
        // A span of its own: the previous one is complete.
        if (from >= 0) {
          out += `${s.slice(copied, from)}${mark()}`;
          copied = to;
        }
        from = m.index;
        to = end;
        plain = false;
      } else if (end > to) to = end;
      plain ||= plainForms.has(m[1]!);
      starts.lastIndex = m.index + 1;
    }
    return `${out}${s.slice(copied, from)}${mark()}${s.slice(to)}`;
  };

  const sample = (s: string): string => {
    const redacted = text(s);
    if (!redacted.endsWith(CUT_MARK)) return redacted;
    const body = redacted.slice(0, -CUT_MARK.length);
    const cut = cutFormStart(body, sorted);
    return cut === body.length ? redacted : `${body.slice(0, cut)}${REDACTED_SECRET}${CUT_MARK}`;
  };

  const walk = (value: unknown): unknown => {
    if (typeof value === 'string') return text(value);
    if (typeof value !== 'object' || value === null) return value;
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        const redacted = walk(item);
        if (redacted !== item) copy ??= value.slice();
        if (copy !== undefined) copy[i] = redacted;
      }
      return copy ?? value;
    }
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    let copy: Record<string, unknown> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const item = record[key];
      const redactedKey = text(key);
      const redacted = walk(item);
      if (copy === undefined && (redacted !== item || redactedKey !== key)) {
        copy = {};
        for (let j = 0; j < i; j++) define(copy, keys[j]!, record[keys[j]!]);
      }
      if (copy !== undefined) define(copy, redactedKey, redacted);
    }
    return copy ?? value;
  };

  return Object.freeze({
    isActive: true,
    text,
    sample,
    json: <T>(value: T): T => walk(value) as T,
  });
}

/** `length` letters of `REDACTED…`: valid in base64 and base64url alike. */
function filler(length: number): string {
  return BASE64_FILLER.repeat(Math.ceil(length / BASE64_FILLER.length)).slice(0, length);
}

/** Where the longest start (≥ MIN_CUT_TAIL characters) of a form that `body` ends with begins; its length if none. */
function cutFormStart(body: string, forms: readonly string[]): number {
  let best = body.length;
  for (const form of forms) {
    const head = form.slice(0, MIN_CUT_TAIL);
    // Only the last form.length - 1 characters can hold a proper start of the form.
    const floor = Math.max(0, body.length - form.length + 1);
    for (let at = body.lastIndexOf(head); at >= floor; at = body.lastIndexOf(head, at - 1)) {
      if (at < best && form.startsWith(body.slice(at))) best = at;
      if (at === 0) break;
    }
  }
  return best;
}

/** Sets a member as data, so a key such as `__proto__` stays an ordinary member of the copy. */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key !== '__proto__') target[key] = value;
  else Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

/** A redactor that can learn more secrets: `add` is called when a secret file rotated (its new value). */
export interface GrowingSecretRedactor extends SecretRedactor {
  /** Redacts these too from now on; the values known before stay redacted (an old key may still come back). */
  add(secrets: Iterable<string>): void;
}

/**
 * `createSecretRedactor` over `initial`, rebuilt with the union when `add` brings a value it does not know yet
 * (rare: once per rotation). Reads go to the current redactor, so whoever holds this object sees the new values.
 */
export function growingSecretRedactor(initial: Iterable<string>): GrowingSecretRedactor {
  const known = new Set(initial);
  let inner = createSecretRedactor(known);
  return {
    get isActive() {
      return inner.isActive;
    },
    text: (s) => inner.text(s),
    sample: (s) => inner.sample(s),
    json: (v) => inner.json(v),
    add(secrets) {
      const before = known.size;
      for (const s of secrets) known.add(s);
      if (known.size !== before) inner = createSecretRedactor(known);
    },
  };
}
