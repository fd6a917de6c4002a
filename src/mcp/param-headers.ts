/**
 * `Mcp-Param-*` headers of MCP 2026-07-28 (basic/transports/streamable-http §Custom Headers from Tool Parameters): a
 * tool's input schema may mark a parameter `x-mcp-header: Region`, and a client then mirrors that argument's value
 * into `Mcp-Param-Region` so that a proxy can route on it. The gateway decides on the body; a mirrored header that is
 * missing, not a valid value, or different from the argument is refused (400, -32020) — the same parser-differential
 * rule as the routing headers (threat model #8). A value absent or null in the body expects no header.
 */
import { GatewayError } from '../errors/gateway-error.js';
import { decodeHeaderValue } from '../lib/header-value.js';
import type { JsonObject } from '../lib/json-rpc.js';
import { annotationsOf, valueAt } from '../lib/param-headers.js';

export { paramHeadersOf, type ParamHeader } from '../lib/param-headers.js';

/**
 * Refuses (GW_MCP_HEADER_MISMATCH) a call whose mirrored parameter headers do not say what its arguments say.
 * `headers`: the request's `Mcp-Param-*` headers by lower-case name, as received.
 */
export function checkParamHeaders(
  definition: JsonObject | undefined,
  args: JsonObject,
  headers: ReadonlyMap<string, string>,
): void {
  for (const { header, path } of annotationsOf(definition)) {
    const value = valueAt(args, path);
    if (value === undefined || value === null) continue;
    const raw = headers.get(header);
    const name = `Mcp-Param-${header}`;
    if (raw === undefined) throw mismatch(`${name} header missing for argument ${path.join('.')}`);
    const text = decodeHeaderValue(raw);
    if (text === undefined) throw mismatch(`${name} header is not a valid header value`);
    if (!same(value, text)) throw mismatch(`${name} header does not match argument ${path.join('.')}`);
  }
}

/** Strings as they are, booleans as `true`/`false`, integers numerically (`42` and `42.0` are the same). */
function same(value: unknown, text: string): boolean {
  if (typeof value === 'string') return value === text;
  if (typeof value === 'boolean') return String(value) === text;
  if (typeof value === 'number') return /^-?\d+(?:\.0+)?$/.test(text) && Number(text) === value;
  return false; // objects and arrays cannot be mirrored: a header claiming one is not believed
}

function mismatch(detail: string): GatewayError {
  return new GatewayError('GW_MCP_HEADER_MISMATCH', { detail });
}
