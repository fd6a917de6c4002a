/**
 * Resource subscriptions of a session (MCP server/resources §Subscriptions): each is held here and by the upstream
 * for the session's life, so it is bounded like sessions are (threat model #9) and refused before the upstream is
 * asked; the session's set follows what the upstream accepted. At a shared upstream the gateway holds one
 * subscription per URI for every client that needs it (upstream-subscriptions.ts): a session that unsubscribes
 * while another session or a 2026-07-28 listen stream still relies on it only ends its own interest.
 */
import { GatewayError } from '../../errors/gateway-error.js';
import type { JsonObject } from '../../lib/json-rpc.js';
import type { Call, CallStep, Next } from '../call.js';
import { sessionHolder } from '../upstream-subscriptions.js';

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
  const { target } = call;
  const uri = target.name;
  const max = call.deps.maxSubscriptions;
  if (method === 'resources/subscribe' && !session.subscriptions.has(uri) && session.subscriptions.size >= max) {
    throw new GatewayError('GW_MCP_SUBSCRIPTION_LIMIT', {
      detail: `session holds ${session.subscriptions.size} subscriptions (sessions.maxSubscriptions ${max})`,
    });
  }
  const counted = call.deps.upstreamSubscriptions;
  const holder = sessionHolder(session.key);
  if (method === 'resources/unsubscribe' && counted?.othersHold(target.upstream, target.original, holder)) {
    session.subscriptions.delete(uri);
    counted.forget(target.upstream, target.original, holder);
    return {};
  }
  const result = await next(call);
  if (method === 'resources/subscribe') {
    session.subscriptions.add(uri);
    counted?.hold(target, holder);
  } else {
    session.subscriptions.delete(uri);
    counted?.forget(target.upstream, target.original, holder);
  }
  return result;
}
