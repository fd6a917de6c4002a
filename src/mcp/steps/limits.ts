/**
 * The rate-limit step of a `tools/call` (docs/architecture.md §4): after the policy allowed it, the last step before
 * forward. The admission (limits.ts) is released when the call ends, however it ends.
 */
import type { JsonObject } from '../../lib/json-rpc.js';
import type { AllowDecision } from '../../policy/decision.js';
import type { Call, CallStep, Next } from '../call.js';
import type { CallLimiter } from '../limits.js';
import type { PipelineDeps } from '../pipeline.js';

export const limitsStep: CallStep = {
  name: 'limits',
  run(call, next) {
    const { limits } = call.deps;
    if (limits === undefined || call.target.kind !== 'tool' || call.decision === undefined) return next(call);
    return limited(limits, call, call.decision, next);
  },
};

async function limited(limits: CallLimiter, call: Call, decision: AllowDecision, next: Next): Promise<JsonObject> {
  const { target, ctx } = call;
  const admission = await limits.admit(
    {
      principal: ctx.principal,
      tool: target.name,
      upstream: target.upstream,
      decision,
      maxDurationMs: maxCallMs(call.deps, target.upstream, ctx.deadlineMs),
    },
    ctx.event,
  );
  try {
    return await next(call);
  } finally {
    admission.release();
  }
}

/** The longest a call to this upstream can live (its maxTotalTimeoutMs, or the policy's timeoutMs if smaller). */
function maxCallMs(deps: PipelineDeps, upstream: string, timeoutMs: number | undefined): number {
  const max = deps.config.upstreams.find((u) => u.name === upstream)?.maxTotalTimeoutMs ?? 300_000;
  return timeoutMs !== undefined ? Math.min(max, timeoutMs) : max;
}
