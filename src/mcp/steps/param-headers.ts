/**
 * The `Mcp-Param-*` check of a 2026-07-28 `tools/call` (param-headers.ts), after the policy has decided: a tool the
 * principal may not see answers as unknown whatever its headers say, so the check cannot reveal that it exists.
 */
import type { JsonObject } from '../../lib/json-rpc.js';
import type { CallStep } from '../call.js';
import { checkParamHeaders } from '../param-headers.js';

export const paramHeadersStep: CallStep = {
  name: 'param-headers',
  run(call, next) {
    const headers = call.ctx.paramHeaders;
    if (headers !== undefined && call.target.kind === 'tool')
      checkParamHeaders(call.target.definition, (call.args ?? {}) as JsonObject, headers);
    return next(call);
  },
};
