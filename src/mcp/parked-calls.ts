/**
 * Calls parked on a 2025 upstream while a 2026-07-28 client answers its questions (docs/protocol-2026-07-28.md §3).
 *
 * A 2025 upstream asks its client mid-call with a JSON-RPC request (sampling, elicitation, roots) and waits for the
 * answer on the same call. A 2026 client has no stream to receive such a request: the revision replaced them with an
 * `InputRequiredResult` and a retry (basic/patterns/mrtr). The gateway bridges the two by answering the client with
 * the upstream's questions as `inputRequests` while the upstream call stays open here, and by handing the retry's
 * `inputResponses` to the upstream as the answers. The handle travels inside the sealed `requestState`
 * (request-state.ts), so only the principal it was issued to can resume the call, and only for that request.
 *
 * State lives in this process: a retry that reaches another replica finds nothing and is refused (sticky routing is
 * needed for such upstreams behind several replicas; docs/deployment.md). Bounded in number and in time.
 */
import { randomBytes } from 'node:crypto';
import { GatewayError } from '../errors/gateway-error.js';
import type { Cancellation } from '../lib/cancellation.js';
import type { JsonObject, JsonRpcRequest } from '../lib/json-rpc.js';

/** How long a parked call waits for the client's retry before its questions fail upstream (the relay's own wait). */
export const PARKED_TTL_MS = 120_000;
/** Calls parked at once in this process: each holds an upstream call open. */
export const MAX_PARKED_CALLS = 1024;

interface Question {
  readonly method: string;
  readonly params: JsonObject | undefined;
  asked: boolean;
  readonly resolve: (answer: JsonObject) => void;
  readonly reject: (err: GatewayError) => void;
}

/** What the client is told next: the call's end, or questions to answer. */
export type Turn =
  | { readonly kind: 'result'; readonly result: JsonObject }
  | { readonly kind: 'error'; readonly error: unknown }
  | { readonly kind: 'input'; readonly inputRequests: JsonObject };

export class ParkedCall {
  private readonly questions = new Map<string, Question>();
  private settled: Turn | undefined;
  private wake: (() => void) | undefined;
  private counter = 0;
  private timer: NodeJS.Timeout | undefined;

  /**
   * `cancel` is the upstream call's: the cancellation of the request that started it, which the gateway fires itself
   * when a later request of the same logical call is closed (the first one has ended by then).
   */
  constructor(
    upstreamCall: Promise<JsonObject>,
    private readonly cancel: Cancellation,
    private readonly onExpire: () => void,
  ) {
    upstreamCall.then(
      (result) => this.settle({ kind: 'result', result }),
      (error: unknown) => this.settle({ kind: 'error', error }),
    );
  }

  /** An upstream's request to the client during this call (relay.ts, after the policy allowed it). */
  readonly ask = (request: JsonRpcRequest): Promise<JsonObject> => {
    if (this.settled !== undefined || this.cancel.aborted)
      return Promise.reject(new GatewayError('GW_RELAY_UNROUTABLE', { detail: 'the call has ended' }));
    return new Promise<JsonObject>((resolve, reject) => {
      // Keys are ours, not the upstream's ids: "unique within the scope of the request" (MRTR §inputRequests).
      const key = `input-${++this.counter}`;
      const params = request.params;
      this.questions.set(key, { method: request.method, params, asked: false, resolve, reject });
      this.wake?.();
    });
  };

  /** Waits for the next turn: the call ended, or it asked something not yet put to the client. */
  next(cancel: Cancellation): Promise<Turn> {
    this.stopTimer();
    return new Promise<Turn>((resolve) => {
      const stopCancel = cancel.onAbort(() => this.abort('the client closed the request'));
      const check = (): void => {
        const turn = this.turn();
        if (turn === undefined) return;
        this.wake = undefined;
        stopCancel();
        if (turn.kind === 'input') this.startTimer();
        resolve(turn);
      };
      this.wake = check;
      check();
    });
  }

  /**
   * The client's answers, by key. Questions it left unanswered are asked again in the next turn (MRTR §Error Handling:
   * re-request rather than fail); answers to keys the gateway never asked are ignored.
   */
  answer(responses: JsonObject | undefined): void {
    for (const [key, q] of this.questions) {
      const a = responses?.[key];
      if (a === undefined || typeof a !== 'object' || a === null || Array.isArray(a)) {
        q.asked = false;
        continue;
      }
      this.questions.delete(key);
      q.resolve(a as JsonObject);
    }
  }

  /** Ends the call: pending questions fail upstream and the upstream call is cancelled. */
  abort(detail: string): void {
    this.stopTimer();
    for (const q of this.questions.values()) q.reject(new GatewayError('GW_MCP_REQUEST_CANCELLED', { detail }));
    this.questions.clear();
    this.cancel.abort();
  }

  private turn(): Turn | undefined {
    const fresh = [...this.questions].filter(([, q]) => !q.asked);
    if (fresh.length > 0) {
      const inputRequests: JsonObject = {};
      // Everything still unanswered is put to the client, not only what is new: one result lists all it needs.
      for (const [key, q] of this.questions) {
        q.asked = true;
        inputRequests[key] = q.params === undefined ? { method: q.method } : { method: q.method, params: q.params };
      }
      return { kind: 'input', inputRequests };
    }
    return this.settled;
  }

  private settle(turn: Turn): void {
    this.settled ??= turn;
    // Whatever the upstream still asked is moot now.
    for (const q of this.questions.values())
      q.reject(new GatewayError('GW_RELAY_UNROUTABLE', { detail: 'the call has ended' }));
    this.questions.clear();
    this.wake?.();
  }

  private startTimer(): void {
    this.timer = setTimeout(() => {
      this.abort('the client did not retry in time');
      this.onExpire();
    }, PARKED_TTL_MS);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The parked calls of this process, by a random handle. */
export class ParkedCalls {
  private readonly calls = new Map<string, ParkedCall>();

  get size(): number {
    return this.calls.size;
  }

  /**
   * Parks a call that has just asked its first question, or undefined at the cap (the question is then refused as
   * unroutable, as before this bridge existed).
   */
  open(upstreamCall: Promise<JsonObject>, cancel: Cancellation): { handle: string; call: ParkedCall } | undefined {
    if (this.calls.size >= MAX_PARKED_CALLS) return undefined;
    const handle = randomBytes(16).toString('base64url');
    const call = new ParkedCall(upstreamCall, cancel, () => this.calls.delete(handle));
    this.calls.set(handle, call);
    return { handle, call };
  }

  /** The call for a verified handle; undefined when it ended, expired, or lives on another replica. */
  get(handle: string): ParkedCall | undefined {
    return this.calls.get(handle);
  }

  drop(handle: string): void {
    this.calls.delete(handle);
  }

  /** Shutdown: every parked upstream call is cancelled. */
  closeAll(): void {
    for (const c of this.calls.values()) c.abort('the gateway is shutting down');
    this.calls.clear();
  }
}
