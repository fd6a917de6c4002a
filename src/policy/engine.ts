import type { ConfigError } from '../errors/config-error.js';
import type { Principal } from '../identity/principal.js';
import { tryLoadPolicyDir } from './compile.js';
import { decide, visible } from './decide.js';
import type { Decision, DecisionInput, PolicyEngine } from './decision.js';
import type { CompiledPolicy } from './model.js';
import { possibleUpstreamRequests, type UpstreamRequest } from './upstream-requests.js';
import { listingKey, visibleTargets, type ListTarget } from './visibility.js';

/**
 * The compiled policy behind the `PolicyEngine` seam, swappable as a whole (docs/architecture.md §8: "swapped
 * atomically on change"). A request reads `current` once per decision; a reload replaces it between two decisions,
 * never during one. Loading and watching files is the caller's job (see `tryLoadPolicyDir`): on a failed reload the
 * caller keeps this engine as it is and reports the `ConfigError`.
 */
export class CompiledPolicyEngine implements PolicyEngine {
  #current: CompiledPolicy;

  constructor(policy: CompiledPolicy) {
    this.#current = policy;
  }

  get revision(): string {
    return this.#current.revision;
  }

  get policy(): CompiledPolicy {
    return this.#current;
  }

  decide(input: DecisionInput): Decision {
    return decide(input, this.#current);
  }

  /** Whether a listing shows the target: `decide` without the argument step (see `visible` in decide.ts). */
  visible(input: DecisionInput): boolean {
    return visible(input, this.#current);
  }

  /** See `PolicyEngine.listingKey`: the policy revision and the rules that hold for the principal (visibility.ts). */
  listingKey(principal: Principal): string {
    return listingKey(principal, this.#current);
  }

  /** See `PolicyEngine.describes`: some rule of the policy in force has `describe`. */
  get describes(): boolean {
    return this.#current.rules.some((r) => r.describe !== undefined);
  }

  /** See `PolicyEngine.visibleTargets`: `visible` for a whole list, decided per group of targets with the same candidate rules. */
  visibleTargets(principal: Principal, targets: readonly ListTarget[]): boolean[] {
    return visibleTargets(principal, this.#current, targets);
  }

  /** See `PolicyEngine.possibleUpstreamRequests`: under the policy in force now (read at each upstream connect). */
  possibleUpstreamRequests(upstream: string): ReadonlySet<UpstreamRequest> {
    return possibleUpstreamRequests(this.#current, upstream);
  }

  /** Installs a newly compiled policy; returns the revision it replaced. */
  replace(policy: CompiledPolicy): string {
    const previous = this.#current.revision;
    this.#current = policy;
    return previous;
  }
}

/**
 * One reload of the policy folder (on a file change or SIGHUP): compiles it and, only when that succeeds,
 * swaps it into `engine`. A failure leaves the running policy in place and returns the problems to report.
 */
export function reloadPolicy(
  dir: string,
  engine: CompiledPolicyEngine,
): { ok: true; previous: string; revision: string; changed: boolean } | { ok: false; error: ConfigError } {
  const loaded = tryLoadPolicyDir(dir);
  if (!loaded.ok) return loaded;
  const previous = engine.replace(loaded.policy);
  return { ok: true, previous, revision: loaded.policy.revision, changed: previous !== loaded.policy.revision };
}
