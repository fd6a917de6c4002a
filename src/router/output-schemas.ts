/**
 * Validators of the `outputSchema` tools declare (MCP 2025-06-18 server/tools §Output Schema: "Servers MUST provide
 * structured results that conform to this schema"), compiled when the catalogue is built, never per call. The
 * schema is the upstream's text, so it is treated as untrusted input: bounded in size and depth before Ajv sees it,
 * compiled with no remote references (`loadSchema` unset: a `$ref` Ajv cannot resolve fails the compile), and a
 * schema that does not compile leaves its tool *flagged* (a catalogue issue) rather than hidden: its results are
 * then invalid by definition, and the upstream's `outputValidation` mode says what that means.
 *
 * Compiled validators are kept by the schema's JSON (bounded, least recently used first), so a refresh after
 * `list_changed` compiles only the schemas that changed.
 */
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { Ajv } from 'ajv/dist/ajv.js';
import { isJsonObject, type JsonObject } from '../lib/json-rpc.js';

/** What the catalogue keeps for a tool with an `outputSchema`. */
export type OutputCheck =
  | { readonly ok: true; readonly validate: ValidateFunction }
  /** The schema could not be used (too large, too deep, not a schema Ajv compiles): every result fails. */
  | { readonly ok: false; readonly problem: string };

/** An `outputSchema` longer than this (as JSON) is not compiled. */
export const OUTPUT_SCHEMA_MAX_BYTES = 64 * 1024;
/** …or nested deeper than this (objects and arrays). */
export const OUTPUT_SCHEMA_MAX_DEPTH = 32;
/** Compiled validators kept across catalogue builds. */
export const OUTPUT_VALIDATORS_KEPT = 1024;
/** Violations named in one audit detail; the rest are counted. */
const MAX_REPORTED = 5;

/**
 * The dialect a schema's `$schema` names: JSON Schema 2020-12 when it names none (the default MCP 2025-11-25 gives
 * `inputSchema`/`outputSchema`), 2019-09, or draft-07 — which is what many SDKs emit (zod-to-json-schema writes
 * `"$schema": "http://json-schema.org/draft-07/schema#"`), so it must work. Any other `$schema` (draft-04, -06, a
 * custom meta-schema) is read as draft-07 without it, the closest dialect Ajv has built in; a schema that does not
 * fit draft-07 then fails to compile, and the tool is flagged.
 */
type Dialect = '2020-12' | '2019-09' | 'draft-07';

function dialectOf(schema: JsonObject): Dialect {
  const named = schema.$schema;
  if (named === undefined) return '2020-12';
  if (typeof named !== 'string') return 'draft-07';
  const bare = named.replace(/#$/, '').replace(/^http:/, 'https:');
  if (bare === 'https://json-schema.org/draft/2020-12/schema') return '2020-12';
  if (bare === 'https://json-schema.org/draft/2019-09/schema') return '2019-09';
  return 'draft-07';
}

/**
 * `strict: false`: an
 * upstream's schema may carry keywords of its own (`x-*`, annotations Ajv does not know), which must not make it
 * unusable; unknown formats are ignored rather than failing the compile. `allErrors: true` reports up to
 * `MAX_REPORTED` paths; `logger: false` keeps Ajv's warnings about such keywords out of stdout; `addUsedSchema: false`
 * keeps a schema's `$id` out of the instance, so two upstreams' schemas with one `$id` do not collide.
 */
const AJV_OPTIONS = Object.freeze({
  strict: false,
  allErrors: true,
  validateFormats: false,
  logger: false,
  addUsedSchema: false,
} as const);

interface Compilers {
  '2020-12'?: Ajv2020;
  '2019-09'?: Ajv2019;
  'draft-07'?: Ajv;
}

function compilerFor(compilers: Compilers, dialect: Dialect): Ajv | Ajv2019 | Ajv2020 {
  switch (dialect) {
    case '2020-12':
      return (compilers['2020-12'] ??= new Ajv2020({ ...AJV_OPTIONS }));
    case '2019-09':
      return (compilers['2019-09'] ??= new Ajv2019({ ...AJV_OPTIONS }));
    case 'draft-07':
      return (compilers['draft-07'] ??= new Ajv({ ...AJV_OPTIONS }));
  }
}

export class OutputValidators {
  #compilers: Compilers = {};
  readonly #kept = new Map<string, OutputCheck>();
  #compiledSinceFresh = 0;

  /** The check for one tool's `outputSchema`, compiled now or taken from an earlier build. */
  check(schema: unknown): OutputCheck {
    if (!isJsonObject(schema)) return { ok: false, problem: 'outputSchema is not an object' };
    const text = JSON.stringify(schema);
    const hit = this.#kept.get(text);
    if (hit !== undefined) {
      this.#kept.delete(text);
      this.#kept.set(text, hit);
      return hit;
    }
    const made = this.#compile(schema, text);
    this.#kept.set(text, made);
    if (this.#kept.size > OUTPUT_VALIDATORS_KEPT) this.#kept.delete(this.#kept.keys().next().value!);
    return made;
  }

  get size(): number {
    return this.#kept.size;
  }

  #compile(schema: JsonObject, text: string): OutputCheck {
    if (Buffer.byteLength(text) > OUTPUT_SCHEMA_MAX_BYTES)
      return { ok: false, problem: `outputSchema larger than ${OUTPUT_SCHEMA_MAX_BYTES} bytes` };
    if (depth(schema) > OUTPUT_SCHEMA_MAX_DEPTH)
      return { ok: false, problem: `outputSchema nested deeper than ${OUTPUT_SCHEMA_MAX_DEPTH} levels` };
    // Ajv caches every schema it compiled: a fresh instance now and then bounds that memory.
    if (++this.#compiledSinceFresh > OUTPUT_VALIDATORS_KEPT) {
      this.#compilers = {};
      this.#compiledSinceFresh = 1;
    }
    const dialect = dialectOf(schema);
    // A draft-07 schema keeps its `$schema` (Ajv knows that meta-schema); another one it does not know loses it.
    const named = typeof schema.$schema === 'string' && schema.$schema.includes('draft-07');
    const { $schema: _unknown, ...bare } = schema;
    const input = dialect === 'draft-07' && !named ? bare : schema;
    try {
      return { ok: true, validate: compilerFor(this.#compilers, dialect).compile(input) };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return { ok: false, problem: `outputSchema does not compile: ${message.slice(0, 200)}` };
    }
  }
}

/** How deep the objects and arrays of a JSON value nest (iteratively: the value is the upstream's). */
function depth(value: unknown): number {
  let max = 0;
  const stack: { v: unknown; d: number }[] = [{ v: value, d: 1 }];
  while (stack.length > 0) {
    const { v, d } = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (d > max) max = d;
    if (max > OUTPUT_SCHEMA_MAX_DEPTH) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push({ v: child, d: d + 1 });
  }
  return max;
}

/**
 * Why a tool result breaks its declared output (undefined: it does not), for the audit `detail`: instance paths
 * and keywords only, never the values (they are the upstream's data, perhaps personal). `isError` results are
 * not checked (the spec's structured content describes success).
 */
export function outputViolation(check: OutputCheck, result: JsonObject): string | undefined {
  if (result.isError === true) return undefined;
  if (!check.ok) return check.problem;
  const structured = result.structuredContent;
  if (structured === undefined) return 'no structuredContent (the tool declares an outputSchema)';
  if (check.validate(structured)) return undefined;
  return describeErrors(check.validate.errors ?? []);
}

/** `structuredContent/items/0: required (id); …`: where and which keyword, names of missing or extra keys at most. */
export function describeErrors(errors: readonly ErrorObject[]): string {
  if (errors.length === 0) return 'structuredContent does not match the outputSchema';
  const parts = errors.slice(0, MAX_REPORTED).map((e) => {
    const params = e.params as Record<string, unknown>;
    // Key names are the schema's vocabulary (required, additionalProperties), not values; still bounded.
    const key =
      e.keyword === 'required'
        ? params.missingProperty
        : e.keyword === 'additionalProperties'
          ? params.additionalProperty
          : undefined;
    const named = typeof key === 'string' ? ` (${key.slice(0, 64)})` : '';
    return `structuredContent${e.instancePath.slice(0, 200)}: ${e.keyword}${named}`;
  });
  const more = errors.length > MAX_REPORTED ? `; and ${errors.length - MAX_REPORTED} more` : '';
  return `${parts.join('; ')}${more}`;
}
