import type { Decision, DecisionInput, PolicyEngine } from './decision.js';

/**
 * The only engine before policy files exist: allows everything, and exists only for `auth.mode: none`, which
 * the config loader permits on a loopback host alone. The policy issue replaces it with default deny.
 */
export class PermitAllPolicy implements PolicyEngine {
  readonly revision = 'permit-all';

  decide(_input: DecisionInput): Decision {
    return { effect: 'allow', ruleId: 'permit-all', policyRevision: this.revision };
  }
}
