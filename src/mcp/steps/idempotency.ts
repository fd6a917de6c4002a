/**
 * The idempotent-write step (docs/policy.md "Idempotent writes"): after decide and limits (a retry is authorised,
 * rate-limited and audited like any call), before the cache step and forward. For a tool whose policy names the
 * argument that carries the client's key (`idempotency: { key, ttl }`):
 *
 * - the first call with a key claims it atomically in the store (Redis: one script, so two replicas never both
 *   forward) and, if it succeeds, remembers its result for the TTL; a failure (thrown, `isError`, `input_required`)
 *   frees the claim so a retry can go;
 * - a retry with the same (issuer + subject, tool, key) and the same canonical arguments gets the first result
 *   (`idempotency: replay`) without reaching the upstream; while the first is still running it waits for it;
 * - the same key with other arguments is refused: GW_MCP_IDEMPOTENCY_CONFLICT (a client bug, never replayed).
 *
 * A call without the key, or with a key that is not a non-empty string, passes unchanged (the policy's `arguments`
 * can make it required). The HTTP `Idempotency-Key` header is not read: it does not reach the pipeline today.
 */
import { canonicalJson } from '../../audit/canonical-json.js';
import { GatewayError } from '../../errors/gateway-error.js';
import type { JsonObject } from '../../lib/json-rpc.js';
import type { IdempotencySpec } from '../../policy/decision.js';
import type { Call, CallStep, Next } from '../call.js';
import { digest, type ResultCache } from '../result-cache.js';

/** How long a claim lives if its replica dies mid-call: past this a retry may forward again. */
const PENDING_GRACE_MS = 5000;

export const idempotencyStep: CallStep = {
  name: 'idempotency',
  run(call, next) {
    const cache = call.deps.results;
    const spec = call.decision?.idempotency;
    if (cache === undefined || spec === undefined || call.target.kind !== 'tool') return next(call);
    const value = call.args?.[spec.key];
    if (typeof value !== 'string' || value === '') return next(call);
    return deduped(cache, call, spec, value, next);
  },
};

async function deduped(
  cache: ResultCache,
  call: Call,
  spec: IdempotencySpec,
  value: string,
  next: Next,
): Promise<JsonObject> {
  const { ctx, target } = call;
  const p = ctx.principal;
  const key = `i:${digest(JSON.stringify([target.upstream, target.name, p.issuer ?? '', p.subject, value]))}`;
  const fingerprint = digest(canonicalJson(call.args ?? {}));
  const maxCallMs = maxCallMsOf(call);
  const waitUntil = call.deps.now() + maxCallMs + PENDING_GRACE_MS;
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    let claim;
    try {
      claim = await cache.store.claim(key, fingerprint, maxCallMs + PENDING_GRACE_MS);
    } catch (err) {
      // Without the ledger a retry could apply the write twice: refuse rather than forward unguarded.
      cache.failed('claim', err);
      throw new GatewayError('GW_MCP_IDEMPOTENCY_UNAVAILABLE', {
        detail: err instanceof Error ? err.message : String(err),
      });
    }
    if (claim.state !== 'claimed' && claim.fingerprint !== fingerprint) {
      ctx.event.idempotency = 'conflict';
      throw new GatewayError('GW_MCP_IDEMPOTENCY_CONFLICT', {
        detail: `idempotency key in ${spec.key} reused with other arguments for ${target.name}`,
      });
    }
    if (claim.state === 'done') {
      ctx.event.idempotency = 'replay';
      return JSON.parse(claim.result) as JsonObject;
    }
    if (claim.state === 'claimed') return first(cache, call, spec, key, claim.token, fingerprint, next);
    // Pending: the first call is still running (here or on another replica). Wait for it, within its lifetime.
    if (ctx.cancel.aborted) throw new GatewayError('GW_MCP_REQUEST_CANCELLED');
    if (call.deps.now() > waitUntil)
      throw new GatewayError('GW_UPSTREAM_TIMEOUT', { detail: 'the first call with this idempotency key never ended' });
    await new Promise((r) => setTimeout(r, delay));
  }
}

async function first(
  cache: ResultCache,
  call: Call,
  spec: IdempotencySpec,
  key: string,
  token: string,
  fingerprint: string,
  next: Next,
): Promise<JsonObject> {
  call.ctx.event.idempotency = 'first';
  let result: JsonObject;
  try {
    result = await next(call);
  } catch (err) {
    await cache.store.release(key, token).catch((e: unknown) => cache.failed('release', e));
    throw err;
  }
  const settle =
    result.isError === true || (result.resultType !== undefined && result.resultType !== 'complete')
      ? cache.store.release(key, token)
      : cache.store.complete(key, token, fingerprint, JSON.stringify(result), spec.ttlMs);
  await settle.catch((e: unknown) => cache.failed('remember', e));
  return result;
}

/** The longest the first call can live: its upstream's maxTotalTimeoutMs, or the policy's timeoutMs if smaller. */
function maxCallMsOf(call: Call): number {
  const max = call.deps.config.upstreams.find((u) => u.name === call.target.upstream)?.maxTotalTimeoutMs ?? 300_000;
  const timeoutMs = call.ctx.deadlineMs;
  return timeoutMs !== undefined ? Math.min(max, timeoutMs) : max;
}
