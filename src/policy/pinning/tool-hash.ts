/**
 * The pinned form of a tool definition and its hash (docs/architecture.md §8, threat model #14 "rug pull").
 *
 * What is hashed: the tool exactly as its upstream lists it, with
 * - `name` set to the upstream's own (original) name, so renaming the exposed name (a different separator,
 *   a prefix switched on) does not unpin anything, while an upstream renaming its tool does;
 * - `_meta` removed: it is the protocol's free-form extension slot, where servers put volatile bookkeeping
 *   (build ids, UI hints) and which clients do not show to the model as tool text.
 *
 * Everything else stays in: `title`, `description`, `inputSchema`, `outputSchema`, `annotations`, `icons`
 * (icon metadata is displayed, and SVG icons can carry text), `execution`, and any field a future spec
 * revision adds. That is a deny-list on purpose: the gateway relays the whole definition to clients, so a
 * field we did not know about must still pin, or a rug pull could move into it.
 *
 * The hash is SHA-256 over the canonical JSON of that object: object keys sorted recursively by UTF-16 code
 * units, no whitespace, arrays in their order, strings and numbers as `JSON.stringify` writes them. For the
 * JSON that a tool listing can contain (no NaN, no Infinity) this is the RFC 8785 (JCS) serialisation, so
 * another implementation can recompute it. Written `sha256:<64 lowercase hex>`.
 */
import { createHash } from 'node:crypto';
import type { JsonObject } from '../../lib/json-rpc.js';

/** Fields left out of the hash (see the module comment). */
export const UNPINNED_FIELDS: readonly string[] = Object.freeze(['_meta']);

export const TOOL_HASH_RE = /^sha256:[0-9a-f]{64}$/;

/**
 * The object that is hashed: `definition` without `_meta`, with `name` = `originalName`. Works on the
 * upstream's listing entry and on a catalogue `ToolEntry.definition` (whose name is the exposed one) alike.
 */
export function pinnedDefinition(definition: JsonObject, originalName: string): JsonObject {
  // Null prototype: a key named "__proto__" stays data.
  const out = Object.create(null) as JsonObject;
  for (const [key, value] of Object.entries(definition)) {
    if (UNPINNED_FIELDS.includes(key) || key === 'name' || value === undefined) continue;
    out[key] = value;
  }
  out.name = originalName;
  return out;
}

/** `sha256:<hex>` of the canonical JSON of `pinnedDefinition(definition, originalName)`. */
export function toolHash(definition: JsonObject, originalName: string): string {
  return `sha256:${createHash('sha256')
    .update(canonicalJson(pinnedDefinition(definition, originalName)), 'utf8')
    .digest('hex')}`;
}

/**
 * Canonical JSON: keys sorted (UTF-16 code unit order), no whitespace, arrays in order. Written by hand
 * rather than by `JSON.stringify` over a sorted object, because JavaScript enumerates integer-like keys
 * ("10", "9") first and in numeric order whatever the insertion order. Strings and numbers are written by
 * `JSON.stringify`, which is what RFC 8785 specifies. `undefined` properties are skipped, `undefined` array
 * items and non-finite numbers become `null`, as `JSON.stringify` does; a value that JSON cannot hold (a
 * function, a symbol, a bigint) is a caller bug and throws a `TypeError`.
 */
export function canonicalJson(value: unknown): string {
  return write(value, undefined, '', 0);
}

/** The same canonical order pretty-printed with two-space indentation: the form approval diffs compare. */
export function canonicalPretty(value: unknown): string {
  return write(value, '  ', '', 0);
}

/** Listings come from a depth-bounded parser (json-rpc.ts allows 128); this only stops a cyclic object. */
const MAX_DEPTH = 512;

function write(value: unknown, indent: string | undefined, at: string, depth: number): string {
  if (depth > MAX_DEPTH) throw new TypeError('canonicalJson: value is nested too deeply (cyclic?)');
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'object':
      break;
    default:
      throw new TypeError(`canonicalJson: a ${typeof value} is not JSON`);
  }
  const inner = indent === undefined ? '' : at + indent;
  const open = indent === undefined ? '' : `\n${inner}`;
  const sep = indent === undefined ? ',' : `,\n${inner}`;
  const close = indent === undefined ? '' : `\n${at}`;
  const colon = indent === undefined ? ':' : ': ';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[${open}${value.map((v: unknown) => write(v, indent, inner, depth + 1)).join(sep)}${close}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort();
  if (keys.length === 0) return '{}';
  return `{${open}${keys.map((k) => `${JSON.stringify(k)}${colon}${write(record[k], indent, inner, depth + 1)}`).join(sep)}${close}}`;
}
