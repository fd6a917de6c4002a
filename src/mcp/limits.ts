/**
 * The rate-limit step of a `tools/call` (docs/architecture.md §4: after the policy allowed it, the last step before
 * forward). One `admit` per call takes a token from every applicable bucket and a lease in every applicable
 * concurrency set — the `limits.rules` of the config that cover the tool, and the policy's own `limits` of the
 * allow decision — all or nothing, through the `RateLimiter` port (memory or Redis). The returned admission is
 * released when the call ends, however it ends.
 *
 * Budgets are keyed by the principal (issuer + subject, the client id), the exposed tool and the upstream —
 * never by session, connection or address — so re-initialising, new connections or a forged
 * `X-Forwarded-For` never reset one.
 *
 * When the store cannot answer, each applicable limit's `onStoreError` decides: any `closed` one refuses the
 * call (GW_MCP_LIMITER_UNAVAILABLE); if all are `open` the call goes through, counted and logged at most once
 * per 30 s.
 */
import { hash as oneShotHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditEvent } from '../audit/audit-sink.js';
import type { LimitDimension, LimitRuleConfig, LimitsConfig, RateLimitSpec, StoreErrorMode } from '../config/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { ErrorCode } from '../errors/codes.js';
import type { Principal } from '../identity/principal.js';
import type { AllowDecision } from '../policy/decision.js';
import { nameGlob, type Glob } from '../policy/glob.js';
import { LimiterUnavailableError, type RateLimiter } from '../stores/rate-limits/rate-limiter.js';

export interface CallLimiterOptions {
  limits: LimitsConfig;
  store: RateLimiter;
  logger: Logger;
  /** For the open-mode log throttle only (the stores keep their own clocks). */
  now?: () => number;
}

export interface LimitedCall {
  principal: Principal;
  /** The exposed tool name and its upstream. */
  tool: string;
  upstream: string;
  decision: AllowDecision;
  /** How long the call may live at most (ms): leases expire this long after they are taken, plus a grace. */
  maxDurationMs: number;
}

/** Given back when the call ends (any outcome); idempotent. */
export interface Admission {
  release(): void;
}

/** A limit as applied to one call: where its budget lives and who named it. */
interface Applied {
  /** The config rule id, or the policy allow rule's id. */
  rule: string;
  onStoreError: StoreErrorMode;
}

/** What one call takes: the store request's buckets and lease sets, and the limit behind each (same index). */
interface Plan {
  readonly rates: readonly { readonly key: string; readonly rate: RateLimitSpec }[];
  readonly leases: readonly { readonly key: string; readonly max: number }[];
  readonly rateOwners: readonly Applied[];
  readonly leaseOwners: readonly Applied[];
  readonly leaseKeys: readonly string[];
}

interface PlanFor {
  readonly upstream: string;
  readonly ruleId: string;
  readonly perMinute: number | undefined;
  readonly burst: number | undefined;
  readonly concurrency: number | undefined;
  readonly plan: Plan;
}

const NOTHING: Admission = Object.freeze({ release: () => undefined });
/** Plans remembered per principal (one per tool). */
const PLAN_MEMO_MAX = 10_000;
/** A lease outlives its call's deadline by this much before it is considered leaked. */
const LEASE_GRACE_MS = 30_000;
const OPEN_LOG_EVERY_MS = 30_000;
/** Policy rules give their rate per minute. */
const MINUTE_MS = 60_000;

export class CallLimiter {
  readonly #limits: LimitsConfig;
  readonly #store: RateLimiter;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #rules: readonly { rule: LimitRuleConfig; tools: readonly Glob[] | undefined }[];
  /** principal → tool → the plan and the other inputs it was built from. */
  readonly #plans = new WeakMap<Principal, Map<string, PlanFor>>();
  #lastOpenLog = -Infinity;
  #openPassed = 0;
  #storeErrors = 0;

  constructor(opts: CallLimiterOptions) {
    this.#limits = opts.limits;
    this.#store = opts.store;
    this.#logger = opts.logger;
    this.#now = opts.now ?? Date.now;
    this.#rules = opts.limits.rules.map((rule) => ({ rule, tools: rule.tools?.map(nameGlob) }));
  }

  /** Calls let through while the store was unreachable (fail-open limits), and store failures seen, since start. */
  get counters(): { openPassed: number; storeErrors: number } {
    return { openPassed: this.#openPassed, storeErrors: this.#storeErrors };
  }

  /** Whether some limit refuses calls while the store is down (then a down store makes the replica unready). */
  get hasFailClosed(): boolean {
    return this.#limits.onStoreError === 'closed' || this.#limits.rules.some((r) => r.onStoreError === 'closed');
  }

  /**
   * Admit one call or throw the refusal (GW_MCP_RATE_LIMITED / GW_MCP_LIMITER_UNAVAILABLE, with
   * `data.retryAfterMs`). On refusal `event` names the limit (`rule`) and says `decision: deny`.
   */
  async admit(call: LimitedCall, event: AuditEvent): Promise<Admission> {
    const { rates, leases, rateOwners, leaseOwners, leaseKeys } = this.#plan(call);
    if (rates.length === 0 && leases.length === 0) return NOTHING;

    // Only a lease set keeps the id (both stores ignore it otherwise).
    const leaseId = leases.length > 0 ? randomUUID() : '-';
    let result;
    try {
      result = await this.#store.admit({
        rates,
        leases,
        leaseId,
        leaseTtlMs: Math.ceil(call.maxDurationMs) + LEASE_GRACE_MS,
      });
    } catch (err) {
      return this.#storeFailed(err, [...rateOwners, ...leaseOwners], event);
    }
    if (!result.ok) {
      const owner = (result.kind === 'rate' ? rateOwners : leaseOwners)[result.index]!;
      event.decision = 'deny';
      event.reason = 'rate_limited';
      event.rule = owner.rule;
      const what = result.kind === 'rate' ? 'rate limit' : 'concurrency limit';
      throw refusal(
        'GW_MCP_RATE_LIMITED',
        `${what} ${owner.rule}: retry in ${result.retryAfterMs} ms`,
        result.retryAfterMs,
      );
    }
    if (leases.length === 0) return NOTHING;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#release(leaseKeys, leaseId, 0);
      },
    };
  }

  /**
   * The buckets and lease sets of a call. They depend only on who calls what where (and the allow rule's
   * limits), so each combination is worked out once — the glob matches, the dimension encodings and the
   * SHA-256 digests — and remembered per principal object (the verified-token cache hands the same frozen
   * principal to every request with one token) and tool. A remembered plan is used only when every other
   * input is the same; otherwise it is rebuilt. The plans are frozen: the stores only read them.
   */
  #plan(call: LimitedCall): Plan {
    const limits = call.decision.limits;
    const rate = limits?.rate;
    let byTool = this.#plans.get(call.principal);
    if (byTool === undefined) this.#plans.set(call.principal, (byTool = new Map()));
    const held = byTool.get(call.tool);
    if (
      held !== undefined &&
      held.upstream === call.upstream &&
      held.ruleId === call.decision.ruleId &&
      held.perMinute === rate?.perMinute &&
      held.burst === rate?.burst &&
      held.concurrency === limits?.concurrency
    )
      return held.plan;
    const plan = this.#buildPlan(call);
    // Bounded: tool names come from the catalogue, but a miss must not grow the map without end.
    if (held === undefined && byTool.size >= PLAN_MEMO_MAX) byTool.clear();
    byTool.set(call.tool, {
      upstream: call.upstream,
      ruleId: call.decision.ruleId,
      perMinute: rate?.perMinute,
      burst: rate?.burst,
      concurrency: limits?.concurrency,
      plan,
    });
    return plan;
  }

  #buildPlan(call: LimitedCall): Plan {
    const rates: { key: string; rate: RateLimitSpec }[] = [];
    const leases: { key: string; max: number }[] = [];
    const rateOwners: Applied[] = [];
    const leaseOwners: Applied[] = [];
    for (const { rule, tools } of this.#rules) {
      if (tools !== undefined && !tools.some((g) => g.matches(call.tool))) continue;
      const scope = `${rule.id}:${digest(rule.per.map((d) => dimension(d, call)))}`;
      const applied = { rule: rule.id, onStoreError: rule.onStoreError };
      if (rule.rate) {
        rates.push({ key: `rate:${scope}`, rate: rule.rate });
        rateOwners.push(applied);
      }
      if (rule.concurrency !== undefined) {
        leases.push({ key: `conc:${scope}`, max: rule.concurrency });
        leaseOwners.push(applied);
      }
    }
    // The policy's limits (merged strictest over the applying allow rules) count per principal and tool.
    const policy = call.decision.limits;
    if (policy?.rate !== undefined || policy?.concurrency !== undefined) {
      // `@` cannot start a config rule id, so these keys never meet a rule's.
      const scope = `@policy:${digest([dimension('subject', call), call.tool])}`;
      const applied = { rule: call.decision.ruleId, onStoreError: this.#limits.onStoreError };
      if (policy.rate) {
        rates.push({
          key: `rate:${scope}`,
          rate: { count: policy.rate.perMinute, periodMs: MINUTE_MS, burst: policy.rate.burst },
        });
        rateOwners.push(applied);
      }
      if (policy.concurrency !== undefined) {
        leases.push({ key: `conc:${scope}`, max: policy.concurrency });
        leaseOwners.push(applied);
      }
    }
    return freezePlan({ rates, leases, rateOwners, leaseOwners, leaseKeys: leases.map((l) => l.key) });
  }

  /**
   * Give leases back, again after a failure: a lease left to its expiry holds its slot for the call's longest
   * life plus 30 s (minutes), so a one-second Redis blip would lock a `concurrency: 1` budget out that long.
   * After the last try the lease still expires on its own (leaseTtlMs).
   */
  #release(keys: readonly string[], leaseId: string, attempt: number): void {
    this.#store.release(keys, leaseId).catch((err: unknown) => {
      const delay = RELEASE_RETRY_MS[attempt];
      const message = err instanceof Error ? err.message : String(err);
      if (delay === undefined) {
        this.#logger.warn({ err: message }, 'limits: lease release failed; it will expire');
        return;
      }
      this.#logger.debug({ err: message, retryInMs: delay }, 'limits: lease release failed; retrying');
      setTimeout(() => this.#release(keys, leaseId, attempt + 1), delay).unref();
    });
  }

  #storeFailed(err: unknown, owners: readonly Applied[], event: AuditEvent): Admission {
    this.#storeErrors++;
    const message = err instanceof Error ? err.message : String(err);
    if (!(err instanceof LimiterUnavailableError)) this.#logger.error({ err }, 'limits: store failed unexpectedly');
    const closed = owners.find((o) => o.onStoreError === 'closed');
    if (closed !== undefined) {
      event.decision = 'deny';
      event.reason = 'limiter_unavailable';
      event.rule = closed.rule;
      throw refusal('GW_MCP_LIMITER_UNAVAILABLE', `limit ${closed.rule} fails closed: ${message}`, STORE_RETRY_MS);
    }
    this.#openPassed++;
    event.detail = `limits store unavailable; allowed by onStoreError open (${owners.map((o) => o.rule).join(', ')})`;
    const now = this.#now();
    if (now - this.#lastOpenLog >= OPEN_LOG_EVERY_MS) {
      this.#lastOpenLog = now;
      this.#logger.warn(
        { err: message, allowedSoFar: this.#openPassed },
        'limits store unavailable: calls under fail-open limits pass unlimited',
      );
    }
    return NOTHING;
  }
}

/** Pauses before the retries of a failed lease release (the Redis client reconnects within ~2 s). */
const RELEASE_RETRY_MS = [1000, 3000, 10_000];

/** What a client refused by a down store is told to wait before retrying. */
const STORE_RETRY_MS = 1000;

function refusal(
  code: Extract<ErrorCode, 'GW_MCP_RATE_LIMITED' | 'GW_MCP_LIMITER_UNAVAILABLE'>,
  detail: string,
  retryAfterMs: number,
): GatewayError {
  return new GatewayError(code, { detail, data: { retryAfterMs } });
}

/**
 * The audit `errorCode` of the limit refusals is the contract's short name (`rate_limited`,
 * `limiter_unavailable`) that metrics count; every other code is recorded as it is.
 */
export function auditErrorCode(code: ErrorCode): string {
  return code === 'GW_MCP_RATE_LIMITED'
    ? 'rate_limited'
    : code === 'GW_MCP_LIMITER_UNAVAILABLE'
      ? 'limiter_unavailable'
      : code;
}

/** One coordinate of a budget. The subject is issuer + subject: the same `sub` from two issuers is two people. */
function dimension(d: LimitDimension, call: LimitedCall): string {
  switch (d) {
    case 'subject':
      return JSON.stringify(['s', call.principal.issuer ?? '', call.principal.subject]);
    case 'client':
      // Principals without a client id (no such claim) share the "no client" budget.
      return JSON.stringify(['c', call.principal.clientId ?? '']);
    case 'tool':
      return JSON.stringify(['t', call.tool]);
    case 'upstream':
      return JSON.stringify(['u', call.upstream]);
  }
}

/** Freezes a plan's lists and their items (one level: the items hold strings and numbers only). */
function freezePlan(plan: Plan): Plan {
  for (const list of [plan.rates, plan.leases, plan.rateOwners, plan.leaseOwners, plan.leaseKeys]) {
    for (const item of list) Object.freeze(item);
    Object.freeze(list);
  }
  return Object.freeze(plan);
}

/** User-controlled parts of a key are hashed: bounded length, no separator games. */
function digest(parts: readonly string[]): string {
  // crypto.hash: the one-shot form (same digest, no Hash object per call).
  return oneShotHash('sha256', JSON.stringify(parts), 'base64url').slice(0, 32);
}
