/** `subscriptions/listen` (MCP 2026-07-28 basic/patterns/subscriptions): served by the front door's hub (listen.ts). */
import { GatewayError } from '../../errors/gateway-error.js';
import type { MethodHandler } from '../pipeline.js';

export const listen: MethodHandler = (ctx, deps) => {
  if (deps.listens === undefined)
    throw new GatewayError('GW_MCP_METHOD_UNKNOWN', { detail: 'subscriptions/listen is not served here' });
  return deps.listens.serve(ctx);
};
