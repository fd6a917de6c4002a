/**
 * The policy step (docs/architecture.md §4): the pure `decide` for the request's principal and target, recorded on the
 * audit event, a deny turned into the answer the client gets:
 *   no_matching_rule, denied_by_rule, quarantined → `hidden()`: exactly the answer for a target that does not exist;
 *   insufficient_scope → GW_AUTH_INSUFFICIENT_SCOPE (the edge answers 403 with the scopes to step up to);
 *   invalid_arguments → GW_MCP_INVALID_PARAMS with the generic message; the violation goes to audit only.
 */
import type { AuditEvent } from '../../audit/audit-sink.js';
import { GatewayError } from '../../errors/gateway-error.js';
import type { Principal } from '../../identity/principal.js';
import type { JsonObject } from '../../lib/json-rpc.js';
import type { AllowDecision, Decision, DecisionInput, PolicyEngine, TargetKind } from '../../policy/decision.js';
import { redactArguments } from '../../policy/field-path.js';
import { PERMIT_ALL_RULE_ID } from '../../policy/permit-all.js';
import type { RequestContext } from '../request-context.js';
import type { CallStep } from '../call.js';

/** The policy step of a targeted call: decides, and sets the call's deadline from the allow's `limits.timeoutMs`. */
export const decideStep: CallStep = {
  name: 'decide',
  run(call, next) {
    const { ctx, target } = call;
    const allowed = decide(
      call.deps,
      ctx,
      { kind: target.kind === 'template' ? 'resource' : target.kind, name: target.name, upstream: target.upstream },
      call.args,
      call.hidden,
      target.quarantined,
    );
    call.decision = allowed;
    const timeoutMs = allowed.limits?.timeoutMs;
    if (timeoutMs !== undefined) ctx.deadlineMs = timeoutMs;
    return next(call);
  },
};

/** One decision for the request's principal, recorded on its audit event; a deny is thrown as the client's answer. */
export function decide(
  deps: { readonly policy: PolicyEngine; readonly now: () => number },
  ctx: RequestContext,
  target: DecisionInput['target'],
  args: JsonObject | undefined,
  hidden: (detail: string) => GatewayError,
  quarantined = false,
): AllowDecision {
  const event = ctx.event;
  // Assigned, not spread: a conditional spread allocates an object per member on every call.
  const input: DecisionInput = { principal: ctx.principal, method: ctx.message.method, now: deps.now() };
  if (target !== undefined) input.target = target;
  if (args !== undefined) input.args = args;
  if (quarantined) input.quarantined = true;
  const d = deps.policy.decide(input);
  recordDecision(event, d);
  if (d.effect === 'allow') {
    // Never the arguments as sent: only with the fields the policy marks `redact` replaced. Without a policy
    // (permit-all, auth.mode none) nothing says which fields are secret, so none are recorded.
    if (args !== undefined && d.ruleId !== PERMIT_ALL_RULE_ID) event.arguments = redactArguments(args, d.redact ?? []);
    return d;
  }
  throw denial(d, hidden);
}

/** Whether a listing shows this item: the call's decision without the argument step (the same function decides both). */
export function shows(
  policy: PolicyEngine,
  principal: Principal,
  method: string,
  kind: TargetKind,
  name: string,
  upstream: string,
  now: number,
  quarantined = false,
): boolean {
  const input: DecisionInput = { principal, method, now, target: { kind, name, upstream }, argumentsUnchecked: true };
  if (quarantined) input.quarantined = true;
  return policy.decide(input).effect === 'allow';
}

/** The decision on the audit record: effect, rule, policy revision, and a deny's reason (docs/architecture.md §4). */
export function recordDecision(event: AuditEvent, d: Decision): void {
  event.decision = d.effect;
  event.rule = d.ruleId ?? '';
  event.policyRevision = d.policyRevision;
  if (d.effect !== 'allow') event.reason = d.reason;
}

/** A target that does not exist is a deny of its own kind in the record; the client's answer stays "unknown". */
export function unknownTarget(
  event: AuditEvent,
  reason: 'unknown_tool' | 'unknown_resource' | 'unknown_prompt',
  err: GatewayError,
): GatewayError {
  event.decision = 'deny';
  event.reason = reason;
  return err;
}

/** An untargeted method the policy refuses (it allows every listing method today): as if it did not exist. */
export function hiddenMethod(method: string): (detail: string) => GatewayError {
  return (detail) => new GatewayError('GW_MCP_METHOD_NOT_FOUND', { detail: `${method.slice(0, 64)}: ${detail}` });
}

/** A policy deny as the client sees it; the detail is for audit only. */
function denial(d: Exclude<Decision, { effect: 'allow' }>, hidden: (detail: string) => GatewayError): GatewayError {
  const rule = d.ruleId !== undefined ? ` by rule ${d.ruleId}` : '';
  switch (d.reason) {
    case 'insufficient_scope': {
      const requiredScopes = [...(d.requiredScopes ?? [])];
      return new GatewayError('GW_AUTH_INSUFFICIENT_SCOPE', {
        detail: `denied insufficient_scope${rule}: needs ${requiredScopes.join(' ')}`,
        data: { requiredScopes },
      });
    }
    case 'invalid_arguments': {
      const v = d.violation;
      const where = v !== undefined ? `: rule ${v.ruleId} field ${v.field || '/'} constraint ${v.constraint}` : rule;
      return new GatewayError('GW_MCP_INVALID_PARAMS', { detail: `denied invalid_arguments${where}` });
    }
    default:
      return hidden(`denied ${d.reason}${rule}`);
  }
}
