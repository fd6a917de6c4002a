/** The last step of a call (docs/architecture.md §4): the router sends it to the target's upstream. */
import { GatewayError } from '../../errors/gateway-error.js';
import { isJsonObject, type JsonObject } from '../../lib/json-rpc.js';
import type { CallStep } from '../call.js';
import { isModernVersion } from '../protocol-versions.js';
import { forwardContext } from '../request-context.js';
import { withoutRequestEnvelope } from '../request-meta.js';

export const forwardStep: CallStep = {
  name: 'forward',
  run(call) {
    const { ctx } = call;
    // The client's 2026 envelope is never forwarded (request-meta.ts): a 2025 upstream session has none, and a
    // 2026-07-28 upstream gets the one the gateway builds (upstream/era.ts).
    const params = withoutRequestEnvelope(call.upstreamParams ?? ctx.params);
    const fwd = forwardContext(ctx, call.ask, call.outbound?.headers);
    const sent = call.deps.router.forward(call.target, ctx.message.method, params, fwd);
    if (!isModernVersion(ctx.protocolVersion)) return sent;
    const own = ctx.clientCapabilities;
    return sent.catch((err: unknown) => Promise.reject(missingCapability(err, own)));
  },
};

/**
 * A 2026-07-28 upstream's -32021 (GW_UPSTREAM_CAPABILITY_REQUIRED) to a 2026 client (docs/protocol-2026-07-28.md
 * §2.7): when this request's own `_meta` lacked what the upstream needs, the client hears -32021 (400) naming it;
 * when the client declared it and the policy kept it from that upstream, it is an input the policy does not allow.
 */
function missingCapability(err: unknown, own: JsonObject): unknown {
  if (!(err instanceof GatewayError) || err.code !== 'GW_UPSTREAM_CAPABILITY_REQUIRED') return err;
  const required = err.data?.requiredCapabilities;
  if (!isJsonObject(required)) return err;
  const lacking = Object.keys(required).filter((k) => own[k] === undefined);
  if (lacking.length === 0)
    return new GatewayError('GW_MCP_INPUT_DENIED', { detail: err.detail ?? err.code, cause: err });
  return new GatewayError('GW_MCP_CLIENT_CAPABILITY_MISSING', {
    detail: err.detail ?? err.code,
    data: { requiredCapabilities: Object.fromEntries(lacking.map((k) => [k, required[k]!])) },
    cause: err,
  });
}
