/**
 * Resource subscriptions of a session (MCP server/resources §Subscriptions): each is held here and by the upstream
 * for the session's life, so it is bounded like sessions are (threat model #9) and refused before the upstream is
 * asked; the session's set follows what the upstream accepted.
 */
import { GatewayError } from '../../errors/gateway-error.js';
import type { JsonObject } from '../../lib/json-rpc.js';
import type { Call, CallStep, Next } from '../call.js';

export const subscriptionsStep: CallStep = {
  name: 'subscriptions',
  run(call, next) {
    const method = call.ctx.message.method;
    // Not async for every other call: an async frame per step shows in the cost of each tools/call.
    if (method !== 'resources/subscribe' && method !== 'resources/unsubscribe') return next(call);
    return subscribing(call, next);
  },
};

async function subscribing(call: Call, next: Next): Promise<JsonObject> {
  const { session, message } = call.ctx;
  const method = message.method;
  if (session === undefined) return next(call);
  const uri = call.target.name;
  const max = call.deps.maxSubscriptions;
  if (method === 'resources/subscribe' && !session.subscriptions.has(uri) && session.subscriptions.size >= max) {
    throw new GatewayError('GW_MCP_SUBSCRIPTION_LIMIT', {
      detail: `session holds ${session.subscriptions.size} subscriptions (sessions.maxSubscriptions ${max})`,
    });
  }
  const result = await next(call);
  if (method === 'resources/subscribe') session.subscriptions.add(uri);
  else session.subscriptions.delete(uri);
  return result;
}
