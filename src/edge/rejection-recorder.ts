/**
 * Audit records of the edge's refusals (`http.rejected`), coalesced under a flood: per key (a reason, or a rule
 * and an address) the first refusal of each one-second window is recorded at once, the rest of the window are
 * counted and recorded together when it ends, with `count`. A flood of refusals thus costs at most two records per
 * key per second — recording (with its hash chain) cannot become the overload — and the counts stay exact for
 * the metrics derived from audit records.
 */
import type { AuditEvent, AuditSink } from '../audit/audit-sink.js';

interface Slot {
  /** End of the window (epoch ms). */
  until: number;
  /** Refusals after the first one in this window, not recorded yet. */
  suppressed: number;
  /** The latest of them: the summary record carries its fields. */
  last?: AuditEvent;
  timer?: NodeJS.Timeout;
}

export interface RejectionRecorderOptions {
  readonly windowMs?: number;
  /**
   * Keys tracked at once. Beyond it (every key busy: a flood from many addresses) the refusals of a key that has
   * no slot are coalesced per reason and status in one overflow slot, whose summary names no address.
   */
  readonly maxKeys?: number;
  readonly now?: () => number;
}

/** Prefix of the overflow slots' keys (no caller's key starts with a NUL). */
const OVERFLOW = '\u0000overflow|';

export class RejectionRecorder {
  private readonly slots = new Map<string, Slot>();
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(
    private readonly audit: AuditSink,
    opts: RejectionRecorderOptions = {},
  ) {
    this.windowMs = opts.windowMs ?? 1000;
    this.maxKeys = opts.maxKeys ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  record(key: string, event: AuditEvent): void {
    const t = this.now();
    if (!this.slots.has(key) && this.slots.size >= this.maxKeys) {
      this.sweep(t);
      // Recording each refusal one by one would make the audit log the flood's amplifier.
      if (this.slots.size >= this.maxKeys) {
        this.overflow(`${OVERFLOW}${event.reason ?? ''}|${event.status ?? ''}`, t, event);
        return;
      }
    }
    this.coalesce(key, t, event);
  }

  private overflow(key: string, t: number, event: AuditEvent): void {
    const { remoteAddress: _a, clientId: _c, ...anonymous } = event;
    const slot = this.slots.get(key);
    if (slot !== undefined && t < slot.until) {
      slot.suppressed++;
      slot.last = { ...anonymous, detail: 'coalesced over many keys (maxKeys reached)' };
      slot.timer ??= setTimeout(() => this.flush(key), slot.until - t).unref();
      return;
    }
    if (slot !== undefined) this.flush(key);
    // Overflow slots are few (one per reason and status): they may exceed maxKeys.
    this.slots.set(key, { until: t + this.windowMs, suppressed: 0 });
    this.audit.record(event);
  }

  private coalesce(key: string, t: number, event: AuditEvent): void {
    const slot = this.slots.get(key);
    if (slot !== undefined && t < slot.until) {
      slot.suppressed++;
      slot.last = event;
      // Flushed when the window ends, so a burst that stops is still counted.
      slot.timer ??= setTimeout(() => this.flush(key), slot.until - t).unref();
      return;
    }
    // The key's previous window is over: record what it held before this one starts.
    if (slot !== undefined) this.flush(key);
    this.slots.set(key, { until: t + this.windowMs, suppressed: 0 });
    this.audit.record(event);
  }

  /** Records what is pending now (shutdown). */
  flushAll(): void {
    for (const key of [...this.slots.keys()]) this.flush(key);
  }

  private flush(key: string): void {
    const slot = this.slots.get(key);
    if (slot === undefined) return;
    if (slot.timer !== undefined) clearTimeout(slot.timer);
    this.slots.delete(key);
    if (slot.suppressed > 0 && slot.last !== undefined)
      this.audit.record(slot.suppressed > 1 ? { ...slot.last, count: slot.suppressed } : slot.last);
  }

  /** Forgets windows that ended with nothing pending (those with a pending count flush themselves). */
  private sweep(t: number): void {
    for (const [key, slot] of this.slots) if (slot.until <= t && slot.timer === undefined) this.slots.delete(key);
  }
}
