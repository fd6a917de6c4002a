/**
 * The pure half of `Mcp-Param-*` (MCP 2026-07-28 basic/transports/streamable-http §Custom Headers from Tool
 * Parameters): which input-schema properties a tool marks with `x-mcp-header`, and the header value of an argument.
 * Shared by the front door, which checks a client's mirrored headers (mcp/param-headers.ts), and the upstream
 * channel, which mirrors them itself as a client of a 2026 upstream (upstream/http-channel.ts).
 */
import { encodeHeaderValue } from './header-value.js';
import { isJsonObject, type JsonObject } from './json-rpc.js';

/** One annotated parameter: its header name (lower case; header names are case-insensitive) and property path. */
export interface ParamHeader {
  readonly header: string;
  readonly path: readonly string[];
}

/** Per definition (catalogue definitions are immutable and shared): the schema is walked once, not per call. */
const known = new WeakMap<JsonObject, readonly ParamHeader[]>();

/** The annotations of a tool definition's input schema, cached per definition object. */
export function annotationsOf(definition: JsonObject | undefined): readonly ParamHeader[] {
  if (definition === undefined) return [];
  let found = known.get(definition);
  if (found === undefined) {
    found = paramHeadersOf(definition.inputSchema);
    known.set(definition, found);
  }
  return found;
}

/**
 * The annotations of an input schema, reached through `properties` only (the revision allows no other position:
 * not under `items`, combinators, conditionals or `$ref`).
 */
export function paramHeadersOf(inputSchema: unknown, path: readonly string[] = []): ParamHeader[] {
  if (!isJsonObject(inputSchema) || !isJsonObject(inputSchema.properties)) return [];
  const out: ParamHeader[] = [];
  for (const [name, schema] of Object.entries(inputSchema.properties)) {
    if (!isJsonObject(schema)) continue;
    const at = [...path, name];
    const header = schema['x-mcp-header'];
    if (typeof header === 'string' && header !== '') out.push({ header: header.toLowerCase(), path: at });
    out.push(...paramHeadersOf(schema, at));
  }
  return out;
}

/** The instance value at an exact property path, or undefined when any step is missing. */
export function valueAt(args: JsonObject, path: readonly string[]): unknown {
  let at: unknown = args;
  for (const key of path) {
    if (!isJsonObject(at) || !Object.hasOwn(at, key)) return undefined;
    at = at[key];
  }
  return at;
}

/**
 * The `Mcp-Param-*` headers a client sends for these arguments (lower-case names → encoded values): strings as they
 * are, integers in decimal, booleans as `true`/`false`; absent or null values send no header, and values no header can
 * carry (other numbers, objects) are left out rather than guessed.
 */
export function paramHeaderValues(annotations: readonly ParamHeader[], args: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (annotations.length === 0 || !isJsonObject(args)) return out;
  for (const { header, path } of annotations) {
    const value = valueAt(args, path);
    let text: string | undefined;
    if (typeof value === 'string') text = value;
    else if (typeof value === 'boolean') text = String(value);
    else if (typeof value === 'number' && Number.isSafeInteger(value)) text = String(value);
    if (text !== undefined) out[`mcp-param-${header}`] = encodeHeaderValue(text);
  }
  return out;
}
