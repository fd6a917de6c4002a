/**
 * Calls parked on a 2025 upstream while a 2026 client answers (src/mcp/parked-calls.ts): turns, re-asking, the cap,
 * expiry and cancellation. The clock is vitest's.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Cancellation } from '../../src/lib/cancellation.js';
import type { JsonObject } from '../../src/lib/json-rpc.js';
import { MAX_PARKED_CALLS, PARKED_TTL_MS, ParkedCalls } from '../../src/mcp/parked-calls.js';

function deferred(): { promise: Promise<JsonObject>; resolve: (v: JsonObject) => void } {
  let resolve!: (v: JsonObject) => void;
  const promise = new Promise<JsonObject>((r) => (resolve = r));
  return { promise, resolve };
}

const question = (n: number) => ({ jsonrpc: '2.0' as const, id: n, method: 'elicitation/create', params: { n } });

describe('parked calls', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('turns: questions first, answers upstream, then the result', async () => {
    const calls = new ParkedCalls();
    const upstream = deferred();
    const cancel = new Cancellation();
    const { handle, call } = calls.open(upstream.promise, cancel)!;
    const answered = call.ask(question(1));
    const turn = await call.next(new Cancellation());
    expect(turn).toEqual({
      kind: 'input',
      inputRequests: { 'input-1': { method: 'elicitation/create', params: { n: 1 } } },
    });
    // An answer to a key never asked is ignored; the asked one is delivered.
    call.answer({ 'input-1': { action: 'accept' }, other: { action: 'accept' } });
    expect(await answered).toEqual({ action: 'accept' });
    upstream.resolve({ content: [] });
    expect(await call.next(new Cancellation())).toEqual({ kind: 'result', result: { content: [] } });
    expect(calls.get(handle)).toBe(call);
    calls.drop(handle);
    expect(calls.get(handle)).toBeUndefined();
  });

  it('asks again what the retry did not answer', async () => {
    const calls = new ParkedCalls();
    const { call } = calls.open(deferred().promise, new Cancellation())!;
    void call.ask(question(1));
    await call.next(new Cancellation());
    call.answer({});
    expect(await call.next(new Cancellation())).toMatchObject({ kind: 'input', inputRequests: { 'input-1': {} } });
  });

  it('expires: the questions fail upstream, the upstream call is cancelled, the handle is gone', async () => {
    const calls = new ParkedCalls();
    const cancel = new Cancellation();
    const { handle, call } = calls.open(deferred().promise, cancel)!;
    const answered = call.ask(question(1));
    answered.catch(() => undefined);
    await call.next(new Cancellation());
    vi.advanceTimersByTime(PARKED_TTL_MS + 1);
    await expect(answered).rejects.toMatchObject({ code: 'GW_MCP_REQUEST_CANCELLED' });
    expect(cancel.aborted).toBe(true);
    expect(calls.get(handle)).toBeUndefined();
  });

  it('a retry closed by its client cancels the upstream call', async () => {
    const calls = new ParkedCalls();
    const cancel = new Cancellation();
    const upstream = deferred();
    const { call } = calls.open(upstream.promise, cancel)!;
    void call.ask(question(1)).catch(() => undefined);
    await call.next(new Cancellation());
    call.answer({});
    const retry = new Cancellation();
    const waiting = call.next(retry);
    // The retry is answered with the open question at once; a later wait is what a closed stream cancels.
    await waiting;
    const later = new Cancellation();
    const pending = call.next(later);
    later.abort();
    expect(cancel.aborted).toBe(true);
    upstream.resolve({});
    await expect(pending).resolves.toMatchObject({ kind: 'result' });
  });

  it('refuses to park more than the cap', () => {
    const calls = new ParkedCalls();
    for (let i = 0; i < MAX_PARKED_CALLS; i++) expect(calls.open(deferred().promise, new Cancellation())).toBeDefined();
    expect(calls.open(deferred().promise, new Cancellation())).toBeUndefined();
    calls.closeAll();
    expect(calls.size).toBe(0);
  });
});
