/**
 * A targeted call and its steps (docs/architecture.md §4): decide (pure policy) → param headers → subscriptions →
 * limits → idempotency → cache → consent → input required → credentials → output (checks what forward returns) →
 * forward. A new step (an approval) is one file in steps/ named in
 * `CALL_STEPS`.
 */
import { GatewayError } from '../errors/gateway-error.js';
import type { JsonObject, JsonRpcRequest } from '../lib/json-rpc.js';
import type { OutboundCredential } from '../outbound/credential-provider.js';
import type { AllowDecision } from '../policy/decision.js';
import type { Target } from '../router/router.js';
import type { PipelineDeps } from './pipeline.js';
import type { RequestContext } from './request-context.js';
import { cacheStep } from './steps/cache.js';
import { consentStep } from './steps/consent.js';
import { credentialsStep } from './steps/credentials.js';
import { decideStep } from './steps/decide.js';
import { forwardStep } from './steps/forward.js';
import { idempotencyStep } from './steps/idempotency.js';
import { inputRequiredStep } from './steps/input-required.js';
import { limitsStep } from './steps/limits.js';
import { outputStep } from './steps/output.js';
import { paramHeadersStep } from './steps/param-headers.js';
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
  /** The params to send upstream when a step changed them (input-required: the retry's fields); else the request's. */
  upstreamParams?: JsonObject;
  /** Set by the input-required step for a request without a session: how an upstream's question reaches its client. */
  ask?: (request: JsonRpcRequest) => Promise<JsonObject>;
  /**
   * Set by the credentials step for an upstream with `credentials:`: the caller's credential, whose headers go with
   * this call's HTTP request only (forward → CallOptions.headers). Absent: the upstream's configured headers alone.
   */
  outbound?: OutboundCredential;
}

/** The rest of the steps after this one. */
export type Next = (call: Call) => Promise<JsonObject>;

/** A step of a targeted call: does its part, then `next(call)` (or answers without it, as forward does). */
export interface CallStep {
  readonly name: string;
  run(call: Call, next: Next): Promise<JsonObject>;
}

/** The steps of every targeted call, in order. The last one answers. */
export const CALL_STEPS: readonly CallStep[] = [
  decideStep,
  paramHeadersStep,
  subscriptionsStep,
  limitsStep,
  idempotencyStep,
  cacheStep,
  consentStep,
  inputRequiredStep,
  credentialsStep,
  outputStep,
  forwardStep,
];

/**
 * The steps joined into one function, once: each step's `next` is the chain of the steps after it, so a call
 * allocates no closure per step.
 */
export function chain(steps: readonly CallStep[]): Next {
  let next: Next = () => Promise.reject(new GatewayError('GW_INTERNAL', { detail: 'no step answered' }));
  for (let i = steps.length - 1; i >= 0; i--) {
    const step = steps[i]!;
    const after = next;
    next = (call) => step.run(call, after);
  }
  return next;
}

const runSteps = chain(CALL_STEPS);

/** Runs a resolved call through `CALL_STEPS`. */
export function runCall(call: Call): Promise<JsonObject> {
  return runSteps(call);
}
