import type { Decision, DecisionInput, PolicyEngine } from './decision.js';

/**
 * The only engine before policy files exist: allows everything, and exists only for `auth.mode: none`, which
 * the config loader permits on a loopback host alone. The policy issue replaces it with default deny.
 */
export class PermitAllPolicy implements PolicyEngine {
  readonly revision = PERMIT_ALL_RULE_ID;

  decide(input: DecisionInput): Decision {
    // Pinning applies without a policy too: a quarantined tool is hidden and refused.
    if (input.quarantined === true) return { effect: 'deny', reason: 'quarantined', policyRevision: this.revision };
    return { effect: 'allow', ruleId: PERMIT_ALL_RULE_ID, policyRevision: this.revision };
  }

  /** No decision here reads the principal: everyone sees the same lists. */
  listingKey(): string {
    return PERMIT_ALL_RULE_ID;
  }
}

/** The rule id (and revision) of its decisions: with no policy, nothing says which argument is secret. */
export const PERMIT_ALL_RULE_ID = 'permit-all';
