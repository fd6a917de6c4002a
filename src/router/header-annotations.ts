/**
 * `x-mcp-header` annotations in a tool's input schema (MCP 2026-07-28 server/tools §x-mcp-header, streamable-http
 * §Custom Headers from Tool Parameters). A client over HTTP must drop a tool whose annotations break the rules, so the
 * gateway, a client of its upstreams, keeps such a tool out of the catalogue rather than hand its own clients a
 * definition they must refuse (or a header they would mirror wrongly).
 *
 * The rules: the value is a non-empty RFC 9110 token, unique (case-insensitively) within the schema; the annotated
 * property is a string, integer or boolean; and it is reached from the root through `properties` only — an annotation
 * under `items`, a combinator, a conditional, `$defs` or anything else makes the whole definition invalid.
 */
import { isJsonObject } from '../lib/json-rpc.js';

/** RFC 9110 §5.6.2 `token`. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_TYPES: ReadonlySet<string> = new Set(['string', 'integer', 'boolean']);

/** Why the annotations of this input schema are invalid, or undefined when they are fine (or there are none). */
export function headerAnnotationProblem(inputSchema: unknown): string | undefined {
  const seen = new Set<string>();
  return visit(inputSchema, true, '', seen);
}

function visit(node: unknown, reachable: boolean, at: string, seen: Set<string>): string | undefined {
  if (Array.isArray(node)) {
    for (const [i, item] of node.entries()) {
      const p = visit(item, false, `${at}/${i}`, seen);
      if (p !== undefined) return p;
    }
    return undefined;
  }
  if (!isJsonObject(node)) return undefined;
  if (Object.hasOwn(node, 'x-mcp-header')) {
    const problem = annotationProblem(node, reachable, seen);
    if (problem !== undefined) return `${at || '/'}: ${problem}`;
  }
  for (const [key, child] of Object.entries(node)) {
    if (key === 'properties' && isJsonObject(child)) {
      // Only the members of a reachable `properties` stay reachable.
      for (const [name, schema] of Object.entries(child)) {
        const p = visit(schema, reachable, `${at}/properties/${name}`, seen);
        if (p !== undefined) return p;
      }
    } else if (key !== 'x-mcp-header') {
      const p = visit(child, false, `${at}/${key}`, seen);
      if (p !== undefined) return p;
    }
  }
  return undefined;
}

function annotationProblem(node: Record<string, unknown>, reachable: boolean, seen: Set<string>): string | undefined {
  if (!reachable) return 'x-mcp-header outside a chain of properties';
  const value = node['x-mcp-header'];
  if (typeof value !== 'string' || !TOKEN.test(value)) return 'x-mcp-header is not a header name token';
  const lower = value.toLowerCase();
  if (seen.has(lower)) return `x-mcp-header ${value} used twice`;
  seen.add(lower);
  const type = node.type;
  const types = Array.isArray(type) ? type.filter((t) => t !== 'null') : [type];
  if (types.length === 0 || !types.every((t) => typeof t === 'string' && HEADER_TYPES.has(t)))
    return `x-mcp-header ${value} on a property that is not a string, integer or boolean`;
  return undefined;
}
