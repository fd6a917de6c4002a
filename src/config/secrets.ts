/**
 * Secret references in `gatehouse.yaml` — `{ fromEnv: NAME }` and `{ fromFile: PATH }` — and the check that
 * refuses credentials written inline. A resolved secret is a `SecretValue` whose every printable form is its
 * source (`[secret env:NAME]`), so logging or serialising the config cannot leak it. Messages produced here
 * name where a secret came from, never what it is.
 */
import fs from 'node:fs';
import path from 'node:path';
import { MIN_SECRET_LENGTH } from '../lib/secret-redactor.js';
import type { SecretValue } from './types.js';

/** The YAML shape of a reference (the schema guarantees exactly one key). */
export type SecretRef = { readonly fromEnv: string } | { readonly fromFile: string };

export interface SecretContext {
  /** Where `fromEnv` looks. */
  readonly env: NodeJS.ProcessEnv;
  /** Folder that relative `fromFile` paths are resolved against: the config file's folder. */
  readonly baseDir: string;
}

export type SecretResult =
  { readonly ok: true; readonly value: SecretValue } | { readonly ok: false; readonly message: string };

/** Secret files are keys and tokens; anything bigger is almost certainly the wrong file. */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

const inspectCustom = Symbol.for('nodejs.util.inspect.custom');

/** Set by Secret's static block: the one way to change a secret's value (replaceSecretValue). */
let replaceValue: (secret: Secret, value: string) => void;

class Secret implements SecretValue {
  // A private field, not a property: JSON.stringify, spread, Object.keys and util.inspect cannot see it. Not
  // readonly: a `fromFile` secret is replaced in place when its file changes (secret-rotation.ts), so everything
  // holding this object reads the new value from memory, with no file access per use.
  #value: string;
  #generation = 0;
  readonly source: string;
  /** False for public material kept in the same live form (a CA bundle, a certificate): not a known secret. */
  readonly redact: boolean;

  constructor(source: string, value: string, redact = true) {
    this.source = source;
    this.#value = value;
    this.redact = redact;
    Object.freeze(this);
  }

  reveal(): string {
    return this.#value;
  }

  get generation(): number {
    return this.#generation;
  }

  toString(): string {
    return `[secret ${this.source}]`;
  }

  toJSON(): string {
    return this.toString();
  }

  [inspectCustom](): string {
    return this.toString();
  }

  static {
    replaceValue = (secret, value) => {
      secret.#value = value;
      secret.#generation += 1;
    };
  }
}

/**
 * A new value for a `fromFile` secret whose file changed: what every holder reads from the next use on, with its
 * `generation` one higher (holders that derive something from it — a TLS context, a cipher key — rebuild when it
 * moves). Only the rotation watcher calls this (src/config/secret-rotation.ts).
 */
export function replaceSecretValue(secret: SecretValue, value: string): void {
  if (!(secret instanceof Secret)) throw new TypeError('replaceSecretValue: not a SecretValue of the loader');
  replaceValue(secret, value);
}

/** Whether the known-secret redactor must know this value (false for a certificate or CA bundle). */
export function isRedactedSecret(value: SecretValue): boolean {
  return value instanceof Secret && value.redact;
}

/** Wraps an already-known secret (tests, or credentials obtained at run time). */
export function secretValue(source: string, value: string): SecretValue {
  return new Secret(source, value);
}

export function isSecretValue(value: unknown): value is SecretValue {
  return value instanceof Secret;
}

export function isSecretRef(value: unknown): value is SecretRef {
  if (typeof value !== 'object' || value === null) return false;
  return (
    typeof (value as { fromEnv?: unknown }).fromEnv === 'string' ||
    typeof (value as { fromFile?: unknown }).fromFile === 'string'
  );
}

/** Reads one reference. Failure messages name the variable or the absolute path, never any content. */
export function resolveSecretRef(ref: SecretRef, ctx: SecretContext): SecretResult {
  if ('fromEnv' in ref) {
    const value = ctx.env[ref.fromEnv];
    // An empty variable is almost always a deployment mistake, not an intentionally empty secret.
    if (value === undefined || value === '')
      return { ok: false, message: `environment variable ${ref.fromEnv} is not set` };
    if (value.length < MIN_SECRET_LENGTH) {
      return { ok: false, message: tooShort(`environment variable ${ref.fromEnv}`, value) };
    }
    return { ok: true, value: new Secret(`env:${ref.fromEnv}`, value) };
  }
  const file = path.resolve(ctx.baseDir, ref.fromFile);
  const read = readSecretFile(file);
  if (!read.ok) return read;
  return { ok: true, value: new Secret(`file:${file}`, read.value) };
}

/**
 * A public PEM file (a CA bundle, a certificate chain) held like a `fromFile` secret, so that it is re-read when
 * the file changes (secret-rotation.ts), but never redacted: it is no secret, and a bundle is large. Read now;
 * the caller checks what it holds.
 */
export function publicFileValue(file: string, text: string): SecretValue {
  return new Secret(`file:${file}`, withoutFinalNewline(text), false);
}

/** Editors add a final newline; exactly one is dropped so a secret may still end in whitespace on purpose. */
function withoutFinalNewline(text: string): string {
  return text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
}

/** Largest file a secret may be; a public PEM bundle may be bigger (key-material.ts). */
export function maxFileBytes(value: SecretValue): number {
  return isRedactedSecret(value) ? MAX_SECRET_FILE_BYTES : MAX_PUBLIC_FILE_BYTES;
}

/** Certificate and CA bundles (as key-material.ts reads them at load). */
const MAX_PUBLIC_FILE_BYTES = 4 * 1024 * 1024;

/**
 * Reads a secret file as the loader does: not a folder, at most `maxBytes`, one trailing newline dropped, not
 * empty, at least MIN_SECRET_LENGTH characters. Messages name the file, never its content. The rotation watcher
 * reads a changed file through the same rules.
 */
export function readSecretFile(
  file: string,
  maxBytes = MAX_SECRET_FILE_BYTES,
  read: (file: string) => { size: number; isDirectory: boolean; text: () => string } = readFs,
): SecretResultText {
  let text: string;
  try {
    const stat = read(file);
    if (stat.isDirectory) return { ok: false, message: `secret file ${file} is a directory` };
    if (stat.size > maxBytes)
      return { ok: false, message: `secret file ${file} is larger than ${Math.round(maxBytes / 1024)} KiB` };
    text = stat.text();
  } catch (err) {
    return { ok: false, message: `secret file ${file} cannot be read (${describeFsError(err)})` };
  }
  // Read at load and re-read on rotation by the same rule, so an unchanged file compares equal.
  const value = withoutFinalNewline(text);
  if (value === '') return { ok: false, message: `secret file ${file} is empty` };
  if (value.length < MIN_SECRET_LENGTH) return { ok: false, message: tooShort(`secret file ${file}`, value) };
  return { ok: true, value };
}

export type SecretResultText =
  { readonly ok: true; readonly value: string } | { readonly ok: false; readonly message: string };

function readFs(file: string): { size: number; isDirectory: boolean; text: () => string } {
  const stat = fs.statSync(file);
  return { size: stat.size, isDirectory: stat.isDirectory(), text: () => fs.readFileSync(file, 'utf8') };
}

/**
 * Every secret is redacted from what upstreams send back (src/lib/secret-redactor.ts, threat model #17); a value
 * this short would match ordinary text everywhere, so it is refused rather than left unredacted.
 */
function tooShort(where: string, value: string): string {
  return (
    `${where} holds ${value.length} character${value.length === 1 ? '' : 's'}: a secret needs at least ` +
    `${MIN_SECRET_LENGTH} so that the gateway can redact it from what upstreams send back`
  );
}

/** A short reason for a failed file operation (`no such file`, `permission denied`, …), for messages. */
export function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a parent is not a folder';
    default:
      return code ?? 'unknown error';
  }
}

// ─── Inline secrets ──────────────────────────────────────────────────────────────────────────────────────

export const INLINE_SECRET_MESSAGE = 'inline secret refused: reference it with { fromEnv: NAME } or { fromFile: PATH }';

/** Header or variable names whose value is a credential by convention. */
const SENSITIVE_NAME = /authorization|api[-_]?key|token|secret|passw|cookie|credential|session/i;

/** Well-known credential shapes. Each names the kind, so the message can say why without quoting the value. */
const CREDENTIAL_SHAPES: readonly { readonly re: RegExp; readonly kind: string }[] = [
  { re: /^(?:bearer|basic)\s+\S/i, kind: 'an HTTP authorization value' },
  { re: /^sk-[A-Za-z0-9_-]{16,}/, kind: 'an API secret key (sk-…)' },
  { re: /^[sr]k_(?:live|test)_[A-Za-z0-9]{10,}/, kind: 'an API secret key (sk_…)' },
  { re: /^gh[pousr]_[A-Za-z0-9]{20,}/, kind: 'a GitHub token' },
  { re: /^github_pat_[A-Za-z0-9_]{20,}/, kind: 'a GitHub token' },
  { re: /^xox[abposr]-[A-Za-z0-9-]{10,}/, kind: 'a Slack token' },
  { re: /AKIA[0-9A-Z]{16}/, kind: 'an AWS access key' },
  { re: /^eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\./, kind: 'a JWT' },
  { re: /-----BEGIN [A-Z ]*PRIVATE KEY-----/, kind: 'a private key' },
  { re: /^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]+@/i, kind: 'a URL with a password' },
];

/**
 * True when a plain value looks like a credential: a known shape, or a long random-looking string.
 * "Random-looking": at least 24 characters of base64/base64url/hex, with letters and digits mixed inside one
 * run of at least 16 characters. Names such as `my-service-name-v2-production` or UUIDs have shorter runs.
 */
export function credentialKind(value: string): string | undefined {
  for (const { re, kind } of CREDENTIAL_SHAPES) if (re.test(value)) return kind;
  if (value.length >= 24 && /^[A-Za-z0-9+/=_-]+$/.test(value) && !value.startsWith('/')) {
    for (const run of value.split(/[-_/]+/)) {
      if (run.length >= 16 && /[A-Za-z]/.test(run) && /[0-9]/.test(run)) return 'a long random token';
    }
  }
  return undefined;
}

export function isSensitiveName(name: string): boolean {
  return SENSITIVE_NAME.test(name);
}

/**
 * Checks a plain (non-reference) header or environment value. Returns the problem message, or undefined when
 * the value may stay inline. The message explains why without repeating the value.
 */
export function inlineSecretProblem(
  kind: 'header' | 'variable' | 'query parameter',
  name: string,
  value: string,
): string | undefined {
  // An empty value carries nothing secret (e.g. clearing a variable for the child).
  if (value === '') return undefined;
  if (isSensitiveName(name)) return `${INLINE_SECRET_MESSAGE} (the ${kind} name "${name}" marks a credential)`;
  const shape = credentialKind(value);
  if (shape !== undefined) return `${INLINE_SECRET_MESSAGE} (the value looks like ${shape})`;
  return undefined;
}
