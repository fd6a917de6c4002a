/**
 * A circuit breaker for one upstream: a pure state machine with the clock injected (no timers, no I/O), so the
 * caller decides what a failure is and the tests drive time by hand.
 *
 *   closed ──(failureThreshold consecutive failures)──▶ open ──(openMs elapsed)──▶ half-open
 *   half-open ──(the one probe succeeds)──▶ closed        half-open ──(the probe fails)──▶ open
 *
 * While open, calls fail at once (the upstream is given `openMs` to recover instead of a queue of doomed calls).
 * Half-open admits exactly ONE probe; everyone else keeps failing fast until the probe has an outcome. A probe
 * that ends with neither (the client cancelled, the local queue refused it) hands the probe slot back.
 * The open → half-open step happens when the clock is next consulted (`admit` or `snapshot`), not on a timer.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive failures (timeouts, transport errors, crashes) that open the breaker; at least 1. */
  readonly failureThreshold: number;
  /** How long the breaker stays open before one probe is let through, in milliseconds. */
  readonly openMs: number;
}

/** Admitted: `probe` says whether this call is the half-open probe (its outcome decides the state). */
export type Admission =
  { readonly ok: true; readonly probe: boolean } | { readonly ok: false; readonly retryAfterMs: number };

export interface BreakerSnapshot {
  state: BreakerState;
  consecutiveFailures: number;
  /** Open only: when a probe will be let through, as milliseconds from now. */
  retryAfterMs?: number;
}

export class CircuitBreaker {
  private stateValue: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probing = false;

  constructor(
    private readonly opts: BreakerOptions,
    private readonly now: () => number = Date.now,
    /** Called on every transition, after the state has changed. */
    private readonly onTransition: (to: BreakerState, from: BreakerState) => void = () => undefined,
  ) {
    if (!Number.isInteger(opts.failureThreshold) || opts.failureThreshold < 1)
      throw new TypeError('"failureThreshold" must be a positive integer');
    if (!Number.isFinite(opts.openMs) || opts.openMs < 0) throw new TypeError('"openMs" must be a non-negative number');
  }

  /** The state now (moves open → half-open once `openMs` has passed). */
  get state(): BreakerState {
    this.tick();
    return this.stateValue;
  }

  snapshot(): BreakerSnapshot {
    this.tick();
    const s: BreakerSnapshot = { state: this.stateValue, consecutiveFailures: this.failures };
    if (this.stateValue === 'open') s.retryAfterMs = Math.max(0, this.openedAt + this.opts.openMs - this.now());
    return s;
  }

  /** May a call go to the upstream now? Every admitted call must end with `success`, `failure` or `release`. */
  admit(): Admission {
    this.tick();
    switch (this.stateValue) {
      case 'closed':
        return ADMIT;
      case 'open':
        return { ok: false, retryAfterMs: Math.max(0, this.openedAt + this.opts.openMs - this.now()) };
      case 'half-open':
        if (this.probing) return { ok: false, retryAfterMs: 0 };
        this.probing = true;
        return PROBE;
    }
  }

  /** The upstream answered (a result, or a JSON-RPC error: it is alive and speaking the protocol). */
  success(probe: boolean): void {
    this.failures = 0;
    if (probe) this.probing = false;
    if (this.stateValue === 'half-open' && probe) this.move('closed');
  }

  /** A timeout, a transport error or a crash. */
  failure(probe: boolean): void {
    if (probe) this.probing = false;
    this.failures++;
    if (this.stateValue === 'half-open' && probe) {
      this.open();
      return;
    }
    if (this.stateValue === 'closed' && this.failures >= this.opts.failureThreshold) this.open();
  }

  /** The call ended without telling anything about the upstream (cancelled by the client, refused locally). */
  release(probe: boolean): void {
    if (probe) this.probing = false;
  }

  private open(): void {
    this.openedAt = this.now();
    this.move('open');
  }

  private tick(): void {
    if (this.stateValue === 'open' && this.now() - this.openedAt >= this.opts.openMs) {
      this.probing = false;
      this.move('half-open');
    }
  }

  private move(to: BreakerState): void {
    const from = this.stateValue;
    if (from === to) return;
    this.stateValue = to;
    this.onTransition(to, from);
  }
}

const ADMIT: Admission = Object.freeze({ ok: true, probe: false });
const PROBE: Admission = Object.freeze({ ok: true, probe: true });
