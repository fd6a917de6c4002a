/**
 * The step chain of a targeted call (src/mcp/call.ts): steps run in the order of their list, each may stop the call
 * or answer it without the steps after it, and the list's order is the one docs/architecture.md §4 gives.
 */
import { describe, expect, it } from 'vitest';
import { CALL_STEPS, chain, type Call, type CallStep } from '../../src/mcp/call.js';

const call = {} as Call;

function recording(name: string, seen: string[], answer?: string): CallStep {
  return {
    name,
    run: (c, next) => {
      seen.push(name);
      return answer !== undefined ? Promise.resolve({ answer }) : next(c);
    },
  };
}

describe('call steps', () => {
  it('run in list order, and the first step that answers ends the call', async () => {
    const seen: string[] = [];
    const run = chain([recording('a', seen), recording('b', seen, 'from b'), recording('c', seen)]);
    expect(await run(call)).toEqual({ answer: 'from b' });
    expect(seen).toEqual(['a', 'b']);
    // The chain is built once and serves every call.
    expect(await run(call)).toEqual({ answer: 'from b' });
    expect(seen).toEqual(['a', 'b', 'a', 'b']);
  });

  it('fail the call, never hang it, when no step answers', async () => {
    const seen: string[] = [];
    await expect(chain([recording('a', seen)])(call)).rejects.toMatchObject({ code: 'GW_INTERNAL' });
  });

  it('let a step refuse before the later ones run', async () => {
    const seen: string[] = [];
    const refuse: CallStep = {
      name: 'refuse',
      run: () => {
        throw new Error('denied');
      },
    };
    expect(() => chain([refuse, recording('later', seen)])(call)).toThrow('denied');
    expect(seen).toEqual([]);
  });

  it('are decide, param headers, subscriptions, limits, idempotency, cache, consent, input required, credentials, output, forward: nothing reaches the limiter or the upstream undecided, and no credential is fetched for a call that was refused', () => {
    expect(CALL_STEPS.map((s) => s.name)).toEqual([
      'decide',
      'param-headers',
      'subscriptions',
      'limits',
      'idempotency',
      'cache',
      'consent',
      'input-required',
      'credentials',
      // Wraps forward: it judges what forward returns (output validation), after everything that could refuse.
      'output',
      'forward',
    ]);
  });
});
