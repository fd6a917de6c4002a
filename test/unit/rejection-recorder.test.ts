/** `RejectionRecorder`: the first refusal per key and window at once, the rest counted into one record when it ends. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AuditEvent } from '../../src/audit/audit-sink.js';
import { RejectionRecorder } from '../../src/edge/rejection-recorder.js';

const event = (remoteAddress: string): AuditEvent => ({
  type: 'http.rejected',
  reason: 'rate_limited',
  status: 429,
  remoteAddress,
});

describe('RejectionRecorder', () => {
  let records: AuditEvent[];
  let recorder: RejectionRecorder;
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    records = [];
    recorder = new RejectionRecorder({ record: (e) => void records.push(e) }, { now: () => Date.now() });
  });
  afterEach(() => vi.useRealTimers());

  it('records the first at once and the rest of the window as one record with count', () => {
    for (let i = 0; i < 50; i++) recorder.record('k', event(`10.0.0.${i}`));
    expect(records).toEqual([event('10.0.0.0')]);
    vi.advanceTimersByTime(1000);
    expect(records).toEqual([event('10.0.0.0'), { ...event('10.0.0.49'), count: 49 }]);
    // A new window starts fresh.
    recorder.record('k', event('10.0.0.1'));
    expect(records).toHaveLength(3);
  });

  it('keeps keys apart, and a single extra refusal carries no count', () => {
    recorder.record('a', event('1.1.1.1'));
    recorder.record('b', event('2.2.2.2'));
    recorder.record('a', event('1.1.1.1'));
    expect(records).toHaveLength(2);
    vi.advanceTimersByTime(1000);
    expect(records[2]).toEqual(event('1.1.1.1'));
  });

  it('once every tracked key is busy (a flood from many addresses), coalesces per reason and still counts every refusal', () => {
    const small = new RejectionRecorder({ record: (e) => void records.push(e) }, { now: () => Date.now(), maxKeys: 2 });
    small.record('a', event('1.1.1.1'));
    small.record('b', event('2.2.2.2'));
    // 100 more addresses within the window: no slot left for them, and recording each would be the flood's
    // amplifier (one hash-chained audit line per request).
    for (let i = 0; i < 100; i++) small.record(`x${i}`, event(`10.0.${i}.1`));
    expect(records).toHaveLength(3);
    vi.advanceTimersByTime(1000);
    expect(records).toHaveLength(4);
    // The summary stands for many addresses: it names none of them.
    expect(records[3]).toEqual({
      type: 'http.rejected',
      reason: 'rate_limited',
      status: 429,
      count: 99,
      detail: 'coalesced over many keys (maxKeys reached)',
    });
    expect(records.reduce((n, r) => n + (r.count ?? 1), 0)).toBe(102);
    // Once the windows have ended, idle keys are forgotten and coalescing per key resumes.
    small.record('d', event('4.4.4.4'));
    small.record('d', event('4.4.4.4'));
    expect(records).toHaveLength(5);
  });

  it('flushes pending counts on close', () => {
    recorder.record('k', event('1.1.1.1'));
    recorder.record('k', event('1.1.1.1'));
    recorder.record('k', event('1.1.1.1'));
    recorder.flushAll();
    expect(records).toEqual([event('1.1.1.1'), { ...event('1.1.1.1'), count: 2 }]);
  });
});
