/**
 * The shapes of multi round-trip requests (MCP 2026-07-28 basic/patterns/mrtr): what an `InputRequiredResult` is, what
 * a retry's `inputResponses` must look like, and the fields a request sheds before it goes upstream. Pure.
 */
import { GatewayError } from '../errors/gateway-error.js';
import { isJsonObject, type JsonObject } from '../lib/json-rpc.js';

/** Only these may answer with an `InputRequiredResult` or carry a retry's fields (MRTR: "MUST NOT … any other"). */
export const INPUT_METHODS: ReadonlySet<string> = new Set(['tools/call', 'prompts/get', 'resources/read']);

/**
 * Rounds of questions one logical request may take before the gateway gives up: a loop between an upstream that keeps
 * asking and a client that keeps answering ends here (the v2 SDK's client caps rounds the same way).
 */
export const MAX_INPUT_ROUNDS = 8;

/** Questions per round and the size of one, as an upstream sends them: more is not a conversation, it is a flood. */
const MAX_INPUT_REQUESTS = 16;

export function isInputRequired(result: JsonObject): boolean {
  return result.resultType === 'input_required';
}

/** The request's params without the retry's fields (`inputResponses`, `requestState`): nothing unverified goes on. */
export function withoutInputFields(params: JsonObject): JsonObject {
  if (params.inputResponses === undefined && params.requestState === undefined) return params;
  const { inputResponses: _responses, requestState: _state, ...rest } = params;
  return rest;
}

/**
 * A retry's `inputResponses`: a map from the keys the server chose to response objects (`ElicitResult`,
 * `CreateMessageResult`, `ListRootsResult`). Anything else is a protocol error (MRTR §Error Handling).
 */
export function checkInputResponses(value: unknown): JsonObject | undefined {
  if (value === undefined) return undefined;
  if (!isJsonObject(value))
    throw new GatewayError('GW_MCP_INPUT_RESPONSES_INVALID', { detail: 'inputResponses is not an object' });
  for (const [key, response] of Object.entries(value)) {
    if (!isJsonObject(response))
      throw new GatewayError('GW_MCP_INPUT_RESPONSES_INVALID', {
        detail: `inputResponses.${key.slice(0, 64)} is not an object`,
      });
    // An elicitation's answer must say what the user did (client/elicitation §Response Actions).
    if ('action' in response && !['accept', 'decline', 'cancel'].includes(response.action as string))
      throw new GatewayError('GW_MCP_INPUT_RESPONSES_INVALID', {
        detail: `inputResponses.${key.slice(0, 64)}.action is not accept, decline or cancel`,
      });
  }
  return value;
}

/** An upstream's questions: a map of `{method, params}`, bounded. */
export function inputRequestsOf(result: JsonObject, upstream: string): [string, JsonObject][] {
  const requests = result.inputRequests;
  if (requests === undefined) return [];
  if (!isJsonObject(requests))
    throw new GatewayError('GW_UPSTREAM_PROTOCOL', { detail: `${upstream}: inputRequests is not an object` });
  const entries = Object.entries(requests);
  if (entries.length > MAX_INPUT_REQUESTS)
    throw new GatewayError('GW_UPSTREAM_PROTOCOL', {
      detail: `${upstream}: ${entries.length} input requests in one round (at most ${MAX_INPUT_REQUESTS})`,
    });
  const out: [string, JsonObject][] = [];
  for (const [key, request] of entries) {
    if (!isJsonObject(request) || typeof request.method !== 'string')
      throw new GatewayError('GW_UPSTREAM_PROTOCOL', {
        detail: `${upstream}: inputRequests.${key.slice(0, 64)} is not a request`,
      });
    out.push([key, request]);
  }
  if (out.length === 0 && typeof result.requestState !== 'string')
    // "Servers MUST include at least one of inputRequests or requestState" (MRTR §InputRequiredResult).
    throw new GatewayError('GW_UPSTREAM_PROTOCOL', {
      detail: `${upstream}: input_required without a question or state`,
    });
  return out;
}
