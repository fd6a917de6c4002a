/**
 * Multi round-trip requests (MCP 2026-07-28 basic/patterns/mrtr; docs/protocol-2026-07-28.md §2.9, §3): the step
 * before forward, for `tools/call`, `prompts/get` and `resources/read`.
 *
 * - A 2026 client: a retry's `requestState` is opened and checked (sealed by the gateway, bound to the principal, the
 *   upstream, the request and its arguments, short-lived: request-state.ts) and the upstream's own state inside it
 *   goes upstream byte for byte; an upstream's `InputRequiredResult` goes to the client with every question decided
 *   like a relayed request and a new sealed state. A 2025 upstream that asks its client mid-call (a server→client
 *   request) has its call parked (parked-calls.ts) and its questions put to the client the same way.
 * - A 2025 client: a 2026 upstream's `InputRequiredResult` becomes server→client requests on the client's session
 *   (the relay), and the gateway retries upstream with the answers until the call completes.
 * The retry's fields never reach an upstream unverified, and never on another method.
 */
import { GatewayError } from '../../errors/gateway-error.js';
import { isJsonObject, type JsonObject, type JsonRpcRequest } from '../../lib/json-rpc.js';
import type { Call, CallStep, Next } from '../call.js';
import {
  checkInputResponses,
  INPUT_METHODS,
  inputRequestsOf,
  isInputRequired,
  MAX_INPUT_ROUNDS,
  withoutInputFields,
} from '../input-required.js';
import type { Turn } from '../parked-calls.js';
import { forwardContext } from '../request-context.js';
import type { StateBinding } from '../request-state.js';

/** A 2026 upstream that answers with state only is polled; not faster than this (MRTR: load shedding, polling). */
const STATE_ONLY_PAUSE_MS = 250;

export const inputRequiredStep: CallStep = {
  name: 'input-required',
  run(call, next) {
    const { ctx } = call;
    if (!INPUT_METHODS.has(ctx.message.method)) {
      const params = withoutInputFields(ctx.params);
      if (params !== ctx.params) call.upstreamParams = params;
      return next(call);
    }
    return ctx.session === undefined ? statelessCall(call, next) : sessionCall(call, next);
  },
};

function bindingOf(call: Call): StateBinding {
  const { target, ctx } = call;
  return { upstream: target.upstream, method: ctx.message.method, name: target.name, args: call.args };
}

/** A 2026-07-28 client: verify a retry, relay the upstream's questions with a sealed state. */
async function statelessCall(call: Call, next: Next): Promise<JsonObject> {
  const { ctx, deps } = call;
  const responses = checkInputResponses(ctx.params.inputResponses);
  const raw = ctx.params.requestState;
  let round = 0;
  let inner: string | undefined;
  if (raw !== undefined) {
    if (typeof raw !== 'string')
      throw new GatewayError('GW_MCP_REQUEST_STATE_INVALID', { detail: 'requestState is not a string' });
    const opened = await deps.requestState.open(raw, ctx.principal, bindingOf(call), deps.now());
    if (!opened.ok)
      throw new GatewayError('GW_MCP_REQUEST_STATE_INVALID', { detail: `requestState refused: ${opened.reason}` });
    round = opened.claims.round;
    inner = opened.claims.inner;
    // The gateway's own question (a consent URL): answered in a browser, nothing of it goes upstream.
    if (opened.claims.own === true) {
      const base = withoutInputFields(ctx.params);
      if (base !== ctx.params) call.upstreamParams = base;
      return next(call).then((result) => answer(call, complete(result), round));
    }
    const handle = opened.claims.parked;
    if (handle !== undefined) {
      const parked = deps.parked.get(handle);
      if (parked === undefined)
        throw new GatewayError('GW_MCP_REQUEST_STATE_INVALID', {
          detail: 'requestState names a parked call that ended, expired or lives on another replica',
        });
      parked.answer(responses);
      return answerTurn(call, await parked.next(ctx.cancel), round, handle);
    }
  }
  const base = withoutInputFields(ctx.params);
  const params: JsonObject =
    responses === undefined && inner === undefined
      ? base
      : {
          ...base,
          ...(responses !== undefined ? { inputResponses: responses } : {}),
          ...(inner !== undefined ? { requestState: inner } : {}),
        };
  if (params !== ctx.params) call.upstreamParams = params;
  // A 2025 upstream may ask this client something mid-call: the first question parks the call and ends this request.
  let parkedHandle: string | undefined;
  let toClient: ((turn: Turn) => void) | undefined;
  const asked = new Promise<Turn>((resolve) => (toClient = resolve));
  call.ask = (request: JsonRpcRequest): Promise<JsonObject> => {
    if (parkedHandle === undefined) {
      const opened = deps.parked.open(upstreamCall, ctx.cancel);
      if (opened === undefined)
        return Promise.reject(new GatewayError('GW_RELAY_UNROUTABLE', { detail: 'too many parked calls' }));
      parkedHandle = opened.handle;
      const answer = opened.call.ask(request);
      void opened.call.next(ctx.cancel).then(toClient);
      return answer;
    }
    return deps.parked.get(parkedHandle)?.ask(request) ?? Promise.reject(new GatewayError('GW_RELAY_UNROUTABLE'));
  };
  const upstreamCall = next(call);
  const first = await Promise.race([upstreamCall.then(complete), asked]);
  if (parkedHandle === undefined) return answer(call, first, round);
  return answerTurn(call, first, round, parkedHandle);
}

function complete(result: JsonObject): Turn {
  return { kind: 'result', result };
}

/** A turn of a parked call as the client's answer: its questions (with a sealed handle), or its end. */
async function answerTurn(call: Call, turn: Turn, round: number, handle: string): Promise<JsonObject> {
  const { ctx, deps } = call;
  if (turn.kind !== 'input') {
    deps.parked.drop(handle);
    return answer(call, turn, round);
  }
  if (round + 1 > MAX_INPUT_ROUNDS) {
    deps.parked.get(handle)?.abort('too many rounds');
    deps.parked.drop(handle);
    throw new GatewayError('GW_MCP_INPUT_ROUNDS_EXCEEDED', { detail: `${call.target.upstream}: ${round} rounds` });
  }
  const requestState = await deps.requestState.seal(
    ctx.principal,
    bindingOf(call),
    { round: round + 1, parked: handle },
    deps.now(),
  );
  return { resultType: 'input_required', inputRequests: turn.inputRequests, requestState };
}

/** The upstream's answer to a 2026 client: as it is, or its questions decided and its state sealed. */
async function answer(call: Call, turn: Turn, round: number): Promise<JsonObject> {
  if (turn.kind === 'error') throw turn.error;
  if (turn.kind === 'input') throw new GatewayError('GW_INTERNAL', { detail: 'unparked input turn' });
  const result = turn.result;
  if (!isInputRequired(result)) return result;
  const { ctx, deps, target } = call;
  if (round + 1 > MAX_INPUT_ROUNDS)
    throw new GatewayError('GW_MCP_INPUT_ROUNDS_EXCEEDED', { detail: `${target.upstream}: ${round} rounds` });
  const questions = inputRequestsOf(result, target.upstream);
  const missing = new Set<string>();
  for (const [, request] of questions) {
    try {
      deps.relay.permitInput(target.upstream, request, ctx.principal, ctx.clientCapabilities);
    } catch (err) {
      if (!(err instanceof GatewayError) || err.code !== 'GW_RELAY_CAPABILITY_MISSING') throw deniedInput(err);
      missing.add(capabilityOf(request));
    }
  }
  if (missing.size > 0)
    // The upstream asked what this request's client did not declare (MRTR: servers MUST NOT): the request needs it.
    throw new GatewayError('GW_MCP_CLIENT_CAPABILITY_MISSING', {
      detail: `${target.upstream}: input requests need ${[...missing].join(', ')}`,
      data: { requiredCapabilities: Object.fromEntries([...missing].map((c) => [c, {}])) },
    });
  const innerState = typeof result.requestState === 'string' ? result.requestState : undefined;
  const requestState = await deps.requestState.seal(
    ctx.principal,
    bindingOf(call),
    innerState === undefined ? { round: round + 1 } : { round: round + 1, inner: innerState },
    deps.now(),
  );
  const out: JsonObject = { ...result, requestState };
  if (questions.length === 0) delete out.inputRequests;
  return out;
}

/** A question the policy does not let this upstream put to this principal: the call fails, named as such. */
function deniedInput(err: unknown): GatewayError {
  if (!(err instanceof GatewayError)) return new GatewayError('GW_INTERNAL', { cause: err });
  if (err.code !== 'GW_RELAY_DENIED' && err.code !== 'GW_RELAY_CAPABILITY_MISSING') return err;
  return new GatewayError('GW_MCP_INPUT_DENIED', { detail: err.detail ?? err.code, cause: err });
}

/** The client capability an input request needs (basic §_meta `requiredCapabilities` names capabilities). */
function capabilityOf(request: JsonObject): string {
  switch (request.method) {
    case 'sampling/createMessage':
      return 'sampling';
    case 'roots/list':
      return 'roots';
    default:
      return 'elicitation';
  }
}

/**
 * A 2025 client: nothing of a retry's is passed on (the generation has none), and a 2026 upstream's questions are put
 * to the client as requests on its session, the answers sent back upstream, until the call completes.
 */
async function sessionCall(call: Call, next: Next): Promise<JsonObject> {
  const { ctx, deps, target } = call;
  const base = withoutInputFields(ctx.params);
  if (base !== ctx.params) call.upstreamParams = base;
  let result = await next(call);
  for (let round = 1; isInputRequired(result); round++) {
    if (round > MAX_INPUT_ROUNDS)
      throw new GatewayError('GW_MCP_INPUT_ROUNDS_EXCEEDED', { detail: `${target.upstream}: ${round - 1} rounds` });
    const questions = inputRequestsOf(result, target.upstream);
    const origin = forwardContext(ctx).origin;
    const answers = await Promise.all(
      questions.map(([key, q]) =>
        deps.relay.relay(
          target.upstream,
          {
            jsonrpc: '2.0',
            id: `input:${key}`,
            method: q.method as string,
            ...(isJsonObject(q.params) ? { params: q.params } : {}),
          },
          origin,
        ),
      ),
    );
    const state = result.requestState;
    if (questions.length === 0) await pause(STATE_ONLY_PAUSE_MS, ctx.cancel);
    call.upstreamParams = {
      ...base,
      ...(questions.length > 0
        ? { inputResponses: Object.fromEntries(questions.map(([k], i) => [k, answers[i]!])) }
        : {}),
      ...(typeof state === 'string' ? { requestState: state } : {}),
    };
    result = await next(call);
  }
  return result;
}

function pause(ms: number, cancel: Call['ctx']['cancel']): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      resolve();
    }, ms);
    const stop = cancel.onAbort(() => {
      clearTimeout(timer);
      reject(new GatewayError('GW_MCP_REQUEST_CANCELLED'));
    });
  });
}
