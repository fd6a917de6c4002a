import type { GatewayError } from '../errors/gateway-error.js';
import type { JsonObject } from '../lib/json-rpc.js';

export interface RetryOptions {
  /** Tries in all, the first included: 1 never retries. */
  readonly attempts: number;
  /** Pause before each retry, in milliseconds (doubled each time, with jitter). */
  readonly backoffMs: number;
  /** Globs (`*`, `?`) of the upstream's ORIGINAL tool names whose calls are idempotent reads. */
  readonly tools: readonly string[];
}

/**
 * MCP requests that only read (MCP server/tools, server/resources, server/prompts): sending one twice changes
 * nothing. `completion/complete` and subscriptions are left out on purpose: they are not worth the doubt.
 */
const READ_METHODS: ReadonlySet<string> = new Set([
  'tools/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'prompts/list',
  'prompts/get',
]);

/**
 * Whether a request may be sent again after a failure that left its fate unknown. Only reads and the tools the
 * operator marked idempotent: a `tools/call` may have run upstream before the connection dropped, and running a
 * non-idempotent tool twice (a payment, a delete) is worse than a failed call.
 */
export function isIdempotent(method: string, params: JsonObject | undefined, matchers: readonly RegExp[]): boolean {
  if (READ_METHODS.has(method)) return true;
  if (method !== 'tools/call') return false;
  const name = params?.name;
  return typeof name === 'string' && matchers.some((m) => m.test(name));
}

/**
 * Failures worth a retry: the upstream could not be reached, dropped the connection, crashed or did not answer
 * in time. Never a JSON-RPC error the upstream answered with (that is its answer), an oversized reply (it would
 * be oversized again), a local refusal (busy, circuit open) or a cancellation by the client.
 */
export function isTransient(err: GatewayError): boolean {
  return err.code === 'GW_UPSTREAM_UNAVAILABLE' || err.code === 'GW_UPSTREAM_TIMEOUT';
}

/** `*` any run of characters, `?` one character; everything else literal; anchored at both ends. */
export function globToRegExp(glob: string): RegExp {
  let out = '^';
  for (const ch of glob) {
    if (ch === '*') out += '.*';
    else if (ch === '?') out += '.';
    else out += ch.replace(/[.+^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${out}$`, 'su');
}

/** Delay before retry number `retry` (1-based): doubling from `backoffMs`, ±20 % jitter so replicas do not align. */
export function backoffDelay(backoffMs: number, retry: number, random: () => number = Math.random): number {
  const base = backoffMs * 2 ** Math.min(retry - 1, 10);
  return Math.round(base * (0.8 + random() * 0.4));
}
