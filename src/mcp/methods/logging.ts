/**
 * `logging/setLevel` (MCP server/utilities/logging): the session's minimum level for relayed `notifications/message`,
 * passed on to its per-session upstreams (a shared upstream serves everyone and is never told).
 */
import { GatewayError } from '../../errors/gateway-error.js';
import type { MethodHandler } from '../pipeline.js';
import { LOG_LEVELS, type LogLevel } from '../session.js';

export const setLogLevel: MethodHandler = async (ctx, deps) => {
  const level = ctx.params.level;
  if (typeof level !== 'string' || !(LOG_LEVELS as readonly string[]).includes(level))
    throw new GatewayError('GW_MCP_INVALID_PARAMS', { detail: 'unknown log level' });
  const { session } = ctx;
  // The level is state of a session; a request that stands alone has nowhere to keep it.
  if (session === undefined)
    throw new GatewayError('GW_MCP_METHOD_NOT_FOUND', { detail: 'logging/setLevel needs a session' });
  session.logLevel = level as LogLevel;
  await deps.router.requestSessionUpstreams(session.key, 'logging/setLevel', { level });
  return {};
};
