import { GatewayError } from '../errors/gateway-error.js';
import type { Cancellation } from '../lib/cancellation.js';

export interface CallGateOptions {
  /** Calls allowed in flight to the upstream at once; at least 1. */
  readonly maxInFlight: number;
  /** Calls allowed to wait for a slot; 0 refuses at once when all slots are taken. */
  readonly maxQueued: number;
  /** Longest wait for a slot, in milliseconds. */
  readonly queueTimeoutMs: number;
}

interface Waiter {
  grant: () => void;
  fail: (err: GatewayError) => void;
}

/**
 * Bounded concurrency towards one upstream, with a bounded FIFO queue in front of it. A slow upstream then
 * holds at most `maxInFlight` calls and `maxQueued` waiters in the gateway's memory; the excess is refused at
 * once with `GW_UPSTREAM_BUSY` instead of piling up (threat model #18: one upstream must not exhaust the gateway).
 */
export class CallGate {
  private active = 0;
  private readonly waiting: Waiter[] = [];

  constructor(
    private readonly opts: CallGateOptions,
    private readonly label: string,
  ) {
    if (!Number.isInteger(opts.maxInFlight) || opts.maxInFlight < 1)
      throw new TypeError('"maxInFlight" must be a positive integer');
    if (!Number.isInteger(opts.maxQueued) || opts.maxQueued < 0)
      throw new TypeError('"maxQueued" must be a non-negative integer');
  }

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /**
   * A slot at once, when one is free and nobody queues (the usual case): its release function, without the
   * promise and the event-loop turn of `acquire`. Undefined otherwise: then `acquire` waits or refuses.
   */
  tryAcquire(): (() => void) | undefined {
    if (this.active >= this.opts.maxInFlight || this.waiting.length > 0) return undefined;
    this.active++;
    return this.releaser();
  }

  /**
   * A slot: resolves with its release function (call it exactly once). Waits at most `min(queueTimeoutMs,
   * maxWaitMs)`; fails at once when the queue is full, and when `cancel` fires while waiting.
   */
  acquire(cancel?: Cancellation, maxWaitMs = Infinity): Promise<() => void> {
    if (this.active < this.opts.maxInFlight && this.waiting.length === 0) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.opts.maxQueued) {
      return Promise.reject(
        new GatewayError('GW_UPSTREAM_BUSY', {
          detail: `${this.label}: ${this.active} calls in flight (maxInFlight ${this.opts.maxInFlight}) and ${this.waiting.length} queued (maxQueued ${this.opts.maxQueued})`,
        }),
      );
    }
    if (cancel?.aborted)
      return Promise.reject(
        new GatewayError('GW_MCP_REQUEST_CANCELLED', {
          detail: `${this.label}: cancelled before a call slot was free`,
        }),
      );
    return new Promise((resolve, reject) => {
      const waitMs = Math.max(0, Math.min(this.opts.queueTimeoutMs, maxWaitMs));
      const leave = (): void => {
        clearTimeout(timer);
        removeListener();
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
      };
      const waiter: Waiter = {
        grant: () => {
          leave();
          resolve(this.releaser());
        },
        fail: (err) => {
          leave();
          reject(err);
        },
      };
      const timer = setTimeout(
        () =>
          waiter.fail(
            new GatewayError('GW_UPSTREAM_BUSY', {
              detail: `${this.label}: no call slot within ${waitMs} ms (maxInFlight ${this.opts.maxInFlight})`,
            }),
          ),
        waitMs,
      );
      this.waiting.push(waiter);
      // Not aborted yet (checked above), so the listener cannot run before `removeListener` is assigned.
      const removeListener =
        cancel?.onAbort(() =>
          waiter.fail(
            new GatewayError('GW_MCP_REQUEST_CANCELLED', { detail: `${this.label}: cancelled while queued` }),
          ),
        ) ?? noop;
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting[0];
      // The slot passes straight to the next waiter: `active` stays the same.
      if (next) next.grant();
      else this.active--;
    };
  }
}

function noop(): void {}
