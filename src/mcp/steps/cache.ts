/**
 * The result-cache step (docs/policy.md "Result cache"; docs/architecture.md §1): after decide and limits, so a hit is
 * authorised, rate-limited and audited like any call; before consent, input-required, credentials and forward, so a
 * hit reaches none of them. Only an allow whose rules declare `cache:` is looked up; a write whose rules declare
 * `invalidates:` drops the cached results of the named tools at its upstream when it succeeds.
 *
 * Key: upstream, target kind and original name, canonical arguments (so key order does not matter, and "1" is not 1)
 * or a resource's requested URI,
 * the client's generation (results are shaped per generation after this step, but an upstream may answer each
 * differently), the policy revision, the generations of the upstream and the target, and for scope `principal` the
 * caller's key and the deciding rule. Never cached: errors, `isError` results, `input_required` results, a 2026
 * upstream's `ttlMs: 0`. A 2026 upstream's `ttlMs` shortens the TTL and its `cacheScope: private` makes a public
 * rule's entry per caller: never widened.
 */
import { canonicalJson } from '../../audit/canonical-json.js';
import { principalKey } from '../../identity/principal.js';
import type { JsonObject } from '../../lib/json-rpc.js';
import type { AllowDecision, CacheSpec } from '../../policy/decision.js';
import type { Call, CallStep, Next } from '../call.js';
import { isModernVersion } from '../protocol-versions.js';
import { digest, ResultCache, type Flight } from '../result-cache.js';

export const cacheStep: CallStep = {
  name: 'cache',
  run(call, next) {
    const cache = call.deps.results;
    const d = call.decision;
    if (cache === undefined || d === undefined) return next(call);
    if (d.cache !== undefined && call.target.kind !== 'prompt') return cached(cache, call, d, d.cache, next);
    if (d.invalidates !== undefined) return invalidating(cache, call, d.invalidates, next);
    return next(call);
  },
};

async function invalidating(cache: ResultCache, call: Call, tools: readonly string[], next: Next): Promise<JsonObject> {
  const result = await next(call);
  if (result.isError !== true && result.resultType === undefined) {
    const upstream = call.target.upstream;
    // Awaited: the client that reads after its write must not race the invalidation.
    await Promise.all(tools.map((t) => cache.store.bump(ResultCache.targetGen(upstream, t)))).catch((err: unknown) =>
      cache.failed('invalidate', err),
    );
  }
  return result;
}

async function cached(
  cache: ResultCache,
  call: Call,
  d: AllowDecision,
  spec: CacheSpec,
  next: Next,
): Promise<JsonObject> {
  const { ctx, target } = call;
  const event = ctx.event;
  const who = principalKey(ctx.principal);
  let publicKey: string;
  let privateKey: string;
  try {
    const gens = await cache.store.generations([
      ResultCache.upstreamGen(target.upstream),
      ResultCache.targetGen(target.upstream, target.name),
    ]);
    const base = [
      'v1',
      target.upstream,
      target.kind,
      target.original,
      // A resource read has no arguments: its URI is what varies (a template target names the template, not the URI).
      target.kind === 'tool' ? canonicalJson(call.args ?? {}) : canonicalJson(ctx.params.uri ?? null),
      isModernVersion(ctx.protocolVersion) ? 'm' : 'l',
      d.policyRevision,
      gens,
    ];
    privateKey = `c:${digest(JSON.stringify([...base, who, d.ruleId]))}`;
    // An upstream called with each caller's own credential answers per caller: `public` is never honoured there.
    const shared = spec.scope === 'public' && call.deps.credentials?.has(target.upstream) !== true;
    publicKey = shared ? `c:${digest(JSON.stringify(base))}` : privateKey;
    const hit =
      (await cache.store.get(publicKey)) ?? (publicKey !== privateKey ? await cache.store.get(privateKey) : undefined);
    if (hit !== undefined) {
      event.cache = 'hit';
      return JSON.parse(hit) as JsonObject;
    }
  } catch (err) {
    // The cache is an optimisation: a store that cannot answer makes the call go through.
    cache.failed('lookup', err);
    event.cache = 'bypass';
    return next(call);
  }

  const waiting = cache.inflight.get(publicKey);
  if (waiting !== undefined) {
    const flight = await waiting.catch(() => undefined);
    // A leader that failed, or whose result the upstream made private to another caller, shares nothing.
    if (flight !== undefined && (flight.privateTo === undefined || flight.privateTo === who)) {
      event.cache = 'hit';
      return structuredClone(flight.result);
    }
    event.cache = 'miss';
    return next(call);
  }

  event.cache = 'miss';
  const flight = lead(cache, call, spec, publicKey, privateKey, who, next);
  cache.inflight.set(publicKey, flight);
  try {
    return (await flight).result;
  } finally {
    cache.inflight.delete(publicKey);
  }
}

async function lead(
  cache: ResultCache,
  call: Call,
  spec: CacheSpec,
  publicKey: string,
  privateKey: string,
  who: string,
  next: Next,
): Promise<Flight> {
  const result = await next(call);
  if (result.isError === true || (result.resultType !== undefined && result.resultType !== 'complete'))
    return { result };
  // A 2026-07-28 upstream's own hints: honoured, never widened.
  const upstreamTtl = typeof result.ttlMs === 'number' && result.ttlMs >= 0 ? result.ttlMs : undefined;
  const ttlMs = upstreamTtl === undefined ? spec.ttlMs : Math.min(spec.ttlMs, upstreamTtl);
  const narrowed = publicKey !== privateKey && result.cacheScope === 'private';
  if (ttlMs > 0) {
    await cache.store
      .set(narrowed ? privateKey : publicKey, JSON.stringify(result), ttlMs)
      .catch((err: unknown) => cache.failed('store', err));
  }
  return narrowed ? { result, privateTo: who } : { result };
}
