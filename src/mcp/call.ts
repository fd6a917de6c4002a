/**
 * A targeted call and its steps (docs/architecture.md §4): decide (pure policy) → subscriptions → limits → forward. A
 * new step (a cache, an approval) is one file in steps/ named in `CALL_STEPS`.
 */
import { GatewayError } from '../errors/gateway-error.js';
import type { JsonObject } from '../lib/json-rpc.js';
import type { AllowDecision } from '../policy/decision.js';
import type { Target } from '../router/router.js';
import type { PipelineDeps } from './pipeline.js';
import type { RequestContext } from './request-context.js';
import { decideStep } from './steps/decide.js';
import { forwardStep } from './steps/forward.js';
import { limitsStep } from './steps/limits.js';
import { subscriptionsStep } from './steps/subscriptions.js';

/** One targeted call on its way through the steps. */
export interface Call {
  readonly ctx: RequestContext;
  readonly deps: PipelineDeps;
  readonly target: Target;
  /** What the policy checks: the tool's or prompt's arguments (none for resources). */
  readonly args: JsonObject | undefined;
  /** The answer for a target the policy hides: exactly the answer for one that does not exist. */
  readonly hidden: (detail: string) => GatewayError;
  /** Set by the decide step. */
  decision?: AllowDecision;
}

/** A step of a targeted call: does its part, then `next()` (or answers without it, as forward does). */
export interface CallStep {
  readonly name: string;
  run(call: Call, next: () => Promise<JsonObject>): Promise<JsonObject>;
}

/** The steps of every targeted call, in order. The last one answers. */
export const CALL_STEPS: readonly CallStep[] = [decideStep, subscriptionsStep, limitsStep, forwardStep];

/** Runs a resolved call through the steps. */
export function runCall(call: Call, steps: readonly CallStep[] = CALL_STEPS): Promise<JsonObject> {
  const at = (i: number): Promise<JsonObject> => {
    const step = steps[i];
    if (step === undefined) return Promise.reject(new GatewayError('GW_INTERNAL', { detail: 'no step answered' }));
    return step.run(call, () => at(i + 1));
  };
  return at(0);
}
