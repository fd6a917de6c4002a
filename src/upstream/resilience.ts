import type { UpstreamResilienceConfig } from '../config/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { Cancellation } from '../lib/cancellation.js';
import type { JsonObject } from '../lib/json-rpc.js';
import { CircuitBreaker, type BreakerSnapshot, type BreakerState } from './breaker.js';
import { CallGate } from './call-gate.js';
import { backoffDelay, globToRegExp, isIdempotent, isTransient } from './retry-policy.js';
import type { CallOptions } from './rpc-peer.js';

/** Below this much time left, another attempt could not finish: the last error stands. */
const MIN_ATTEMPT_MS = 50;

export interface ResilienceSnapshot {
  /** Absent when `breaker.enabled` is false. */
  breaker?: BreakerSnapshot;
  inFlight: number;
  queued: number;
}

export interface ResilienceOptions {
  /** With the upstream's own timeouts when known: a timeout under a shorter deadline is not the upstream's failure. */
  config: UpstreamResilienceConfig & { readonly timeoutMs?: number; readonly maxTotalTimeoutMs?: number };
  /** `upstream <name>`, for details. */
  label: string;
  onBreaker?: (to: BreakerState, from: BreakerState) => void;
  /** Debug line per retry (the detail of the failure that caused it). */
  onRetry?: (method: string, attempt: number, delayMs: number, err: GatewayError) => void;
  now?: () => number;
}

/** How one attempt reaches the upstream: `notReady` says why it cannot right now (restarting), else undefined. */
export interface AttemptTarget {
  notReady(): string | undefined;
  /** Before a retry: wait (at most `maxMs`) for an upstream that is restarting to be ready again. */
  whenReady?(maxMs: number, cancel?: Cancellation): Promise<void>;
  send(opts: CallOptions): Promise<JsonObject>;
}

/**
 * Everything between a routed call and the upstream's JSON-RPC peer: the circuit breaker (fail fast while the
 * upstream is failing), the call gate (bounded in-flight calls and queue), and retries of idempotent reads after
 * a transport failure — all within the call's overall deadline (`maxTotalTimeoutMs`, queue wait included).
 *
 * What the breaker counts: timeouts, transport errors and crashes count as failures; any answer — a result or
 * a JSON-RPC error such as invalid params, and so also a tool result with `isError` — is a success, because the
 * upstream is alive and speaking the protocol. Calls refused locally (busy, not ready yet), oversized replies
 * and client cancellations count as neither.
 */
export class Resilience {
  readonly breaker: CircuitBreaker | undefined;
  readonly gate: CallGate;
  private readonly matchers: readonly RegExp[];
  private readonly now: () => number;

  constructor(private readonly opts: ResilienceOptions) {
    const { config } = opts;
    this.now = opts.now ?? Date.now;
    this.breaker = config.breaker.enabled ? new CircuitBreaker(config.breaker, this.now, opts.onBreaker) : undefined;
    this.gate = new CallGate(config, opts.label);
    this.matchers = config.retry.tools.map(globToRegExp);
  }

  snapshot(): ResilienceSnapshot {
    const s: ResilienceSnapshot = { inFlight: this.gate.inFlight, queued: this.gate.queued };
    if (this.breaker) s.breaker = this.breaker.snapshot();
    return s;
  }

  async call(
    method: string,
    params: JsonObject | undefined,
    opts: CallOptions,
    target: AttemptTarget,
  ): Promise<JsonObject> {
    const deadline = this.now() + opts.maxTotalTimeoutMs;
    const { retry } = this.opts.config;
    const attempts = retry.attempts > 1 && isIdempotent(method, params, this.matchers) ? retry.attempts : 1;
    // Nothing to retry: the attempt is the call (one async frame less on every tools/call).
    if (attempts === 1) return this.once(method, opts, deadline, target);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(method, opts, deadline, target);
      } catch (err) {
        if (!(err instanceof GatewayError) || attempt >= attempts || !isTransient(err) || opts.cancel?.aborted)
          throw err;
        const delay = backoffDelay(retry.backoffMs, attempt);
        if (deadline - this.now() < delay + MIN_ATTEMPT_MS) throw err;
        this.opts.onRetry?.(method, attempt + 1, delay, err);
        if (!(await pause(delay, opts.cancel)))
          throw new GatewayError('GW_MCP_REQUEST_CANCELLED', {
            detail: `${this.opts.label}: ${method} cancelled while waiting to retry`,
            cause: err,
          });
        // A crashed stdio upstream is being restarted: the retry waits for it (within the deadline) rather than fail at once.
        if (target.whenReady && target.notReady() !== undefined)
          await target.whenReady(deadline - this.now() - MIN_ATTEMPT_MS, opts.cancel);
        if (opts.cancel?.aborted)
          throw new GatewayError('GW_MCP_REQUEST_CANCELLED', {
            detail: `${this.opts.label}: ${method} cancelled while waiting to retry`,
            cause: err,
          });
      }
    }
  }

  private async once(method: string, opts: CallOptions, deadline: number, target: AttemptTarget): Promise<JsonObject> {
    const why = target.notReady();
    if (why !== undefined)
      throw new GatewayError('GW_UPSTREAM_UNAVAILABLE', { detail: `${this.opts.label} is ${why}` });
    const admission = this.breaker?.admit() ?? { ok: true, probe: false };
    if (!admission.ok) {
      throw new GatewayError('GW_UPSTREAM_CIRCUIT_OPEN', {
        detail: `${this.opts.label}: circuit breaker open after ${this.breaker?.snapshot().consecutiveFailures ?? 0} consecutive failures; ${method} refused`,
        data: { retryAfterMs: admission.retryAfterMs },
      });
    }
    const { probe } = admission;
    let release = this.gate.tryAcquire();
    if (release === undefined) {
      try {
        release = await this.gate.acquire(opts.cancel, deadline - this.now());
      } catch (err) {
        this.breaker?.release(probe);
        throw err;
      }
    }
    const remaining = deadline - this.now();
    const lost = target.notReady(); // it may have gone down while this call was queued: not its failure to count
    if (remaining <= 0 || lost !== undefined) {
      release();
      this.breaker?.release(probe);
      if (lost !== undefined)
        throw new GatewayError('GW_UPSTREAM_UNAVAILABLE', { detail: `${this.opts.label} is ${lost}` });
      throw new GatewayError('GW_UPSTREAM_TIMEOUT', {
        detail: `${this.opts.label}: ${method} spent its whole deadline waiting`,
      });
    }
    // Usually nothing was spent yet (no queue, first try): the caller's options go as they are, without a copy.
    const attemptOpts: CallOptions =
      remaining >= opts.maxTotalTimeoutMs
        ? opts
        : { ...opts, timeoutMs: Math.min(opts.timeoutMs, remaining), maxTotalTimeoutMs: remaining };
    try {
      const result = await target.send(attemptOpts);
      this.breaker?.success(probe);
      return result;
    } catch (err) {
      this.judge(err, probe, this.shortened(opts));
      throw err;
    } finally {
      release();
    }
  }

  /**
   * Whether the caller gave this call less time than the upstream's own timeout (a policy rule's `timeoutMs`).
   * Its timeout then says nothing about the upstream — counted, one principal's tight policy would open the
   * breaker for everybody. (Time spent in the queue is not excluded: a queue that eats the deadline is the
   * upstream being slow for everyone.)
   */
  private shortened(call: CallOptions): boolean {
    const { timeoutMs, maxTotalTimeoutMs } = this.opts.config;
    if (timeoutMs === undefined) return false;
    return Math.min(call.timeoutMs, call.maxTotalTimeoutMs) < Math.min(timeoutMs, maxTotalTimeoutMs ?? Infinity);
  }

  /** Tell the breaker what a failed attempt says about the upstream. */
  private judge(err: unknown, probe: boolean, shortened: boolean): void {
    const breaker = this.breaker;
    if (!breaker) return;
    if (!(err instanceof GatewayError)) {
      breaker.failure(probe);
      return;
    }
    if (err.code === 'GW_UPSTREAM_TIMEOUT' && shortened) breaker.release(probe);
    else if (isTransient(err)) breaker.failure(probe);
    else if (err.code === 'GW_MCP_REQUEST_CANCELLED' || err.code === 'GW_UPSTREAM_RESPONSE_TOO_LARGE')
      breaker.release(probe);
    else breaker.success(probe); // a JSON-RPC error answer: the upstream is alive
  }
}

/** Resolves true after `ms`, or false as soon as `cancel` fires. */
function pause(ms: number, cancel: Cancellation | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (cancel?.aborted) {
      resolve(false);
      return;
    }
    const timer = setTimeout(() => {
      remove();
      resolve(true);
    }, ms);
    const remove =
      cancel?.onAbort(() => {
        clearTimeout(timer);
        resolve(false);
      }) ?? noop;
  });
}

function noop(): void {}
