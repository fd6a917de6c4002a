import type { Principal } from '../lib/principal.js';

/**
 * The policy seam (DESIGN.md §1 ④, §4). One pure, synchronous function decides listing and calling alike;
 * the policy issue supplies the compiled engine. Nothing here imports fastify, the SDK or ioredis.
 */
export type TargetKind = 'tool' | 'resource' | 'prompt';

export interface DecisionInput {
  principal: Principal;
  method: string;
  target?: { kind: TargetKind; name: string; upstream: string };
  args?: Readonly<Record<string, unknown>>;
  now: number;
}

export type DenyReason = 'no_matching_rule' | 'denied_by_rule' | 'insufficient_scope' | 'invalid_arguments' | 'quarantined';

export type Decision =
  | { effect: 'allow'; ruleId: string; policyRevision: string }
  | { effect: 'deny'; reason: DenyReason; ruleId?: string; requiredScopes?: readonly string[]; detail?: string; policyRevision: string };

export interface PolicyEngine {
  readonly revision: string;
  decide(input: DecisionInput): Decision;
}
