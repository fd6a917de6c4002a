/**
 * How a target the client cannot reach is answered (docs/architecture.md §5): an unknown target and one the policy
 * hides give the same wire bytes, and an upstream's failure names the exposed tool, never the upstream's words.
 */
import { GatewayError } from '../errors/gateway-error.js';

function clip(s: string): string {
  return s.length > 128 ? `${s.slice(0, 128)}…` : s;
}

/**
 * Exactly the answer for a tool that does not exist (docs/architecture.md §4: hidden looks unknown). The policy passes
 * its own `detail` (for audit only): the wire bytes are the same either way.
 */
export function unknownTool(name: string, detail = `no tool ${clip(name)} in the catalogue`): GatewayError {
  return new GatewayError('GW_MCP_TOOL_UNKNOWN', { publicMessage: `Unknown tool: ${clip(name)}`, detail });
}

/** The prompt twin of `unknownTool`. */
export function unknownPrompt(name: string, detail = `no prompt ${clip(name)}`): GatewayError {
  return new GatewayError('GW_MCP_PROMPT_UNKNOWN', { publicMessage: `Unknown prompt: ${clip(name)}`, detail });
}

/** The resource twin of `unknownTool` (MCP server/resources §Error Handling: -32002 with the URI). */
export function unknownResource(uri: string, detail = `no upstream owns ${uri.slice(0, 200)}`): GatewayError {
  return new GatewayError('GW_MCP_RESOURCE_UNKNOWN', { detail, data: { uri: clip(uri) } });
}

export function unavailable(tool: string, err: unknown): GatewayError {
  return new GatewayError('GW_UPSTREAM_UNAVAILABLE', {
    publicMessage: `Tool ${tool} is temporarily unavailable`,
    detail: errorDetail(err),
    cause: err,
  });
}

/** Upstream failures name the exposed tool in the public message, never the upstream's words. */
export function nameTool(tool: string, err: unknown): GatewayError {
  if (!(err instanceof GatewayError)) return unavailable(tool, err);
  const detail = err.detail ?? err.code;
  switch (err.code) {
    case 'GW_UPSTREAM_UNAVAILABLE':
      return new GatewayError(err.code, {
        publicMessage: `Tool ${tool} is temporarily unavailable`,
        detail,
        cause: err,
      });
    case 'GW_UPSTREAM_TIMEOUT':
      return new GatewayError(err.code, { publicMessage: `Tool ${tool} did not answer in time`, detail, cause: err });
    case 'GW_UPSTREAM_RESPONSE_TOO_LARGE':
      return new GatewayError(err.code, {
        publicMessage: `Tool ${tool} returned a response that is too large`,
        detail,
        cause: err,
      });
    case 'GW_UPSTREAM_REJECTED':
    case 'GW_UPSTREAM_PROTOCOL':
      return new GatewayError(err.code, { publicMessage: `Tool ${tool} failed`, detail, cause: err });
    default:
      return err;
  }
}

export function errorDetail(err: unknown): string {
  if (err instanceof GatewayError) return err.detail ?? err.code;
  return err instanceof Error ? err.message : String(err);
}
