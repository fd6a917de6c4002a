import type { FastifyInstance } from 'fastify';
import type { JSONWebKeySet } from 'jose';
import { pino, type Logger } from 'pino';
import type { AuditLog } from './audit/audit-log.js';
import { ReasonCounter, type AuditSink } from './audit/audit-sink.js';
import { createAuditSink, type LineStream } from './audit/create-audit-sink.js';
import type { FileOutputOptions } from './audit/file-sink.js';
import { Telemetry, type TelemetryOptions } from './telemetry/telemetry.js';
import {
  registerAuthorizationServer,
  type AuthorizationServer,
  type AuthorizationServerOptions,
} from './auth/as/plugin.js';
import type { AuthRequest, AuthResult, Authenticator } from './auth/authenticator.js';
import { createAuthenticator } from './auth/resource-server.js';
import { knownSecrets } from './config/known-secrets.js';
import { rotatableSecrets, SecretRotation, type SecretRotationOptions } from './config/secret-rotation.js';
import type { GatehouseConfig } from './config/types.js';
import { httpLimitsOf } from './edge/http-limits.js';
import { buildEdge, edgeClientCertReader, edgeOriginPolicy, type Readiness } from './edge/server.js';
import { FrontDoor } from './mcp/front-door.js';
import { CallLimiter } from './mcp/limits.js';
import { ALL_UPSTREAM_REQUESTS, declarableCapabilities } from './mcp/relay-capabilities.js';
import { createSessionAuthority } from './mcp/session-setup.js';
import { loadPolicyDir } from './policy/compile.js';
import type { PolicyEngine } from './policy/decision.js';
import { CompiledPolicyEngine } from './policy/engine.js';
import { PermitAllPolicy } from './policy/permit-all.js';
import { readToolsLock } from './policy/pinning/lock-io.js';
import { PolicyReloader, type PolicyReloadOutcome, type PolicyReloadStatus } from './policy/reloader.js';
import { Router, type RouterPinning } from './router/router.js';
import type { AsStore } from './stores/as/as-store.js';
import { growingSecretRedactor, type GrowingSecretRedactor, type SecretRedactor } from './lib/secret-redactor.js';
import type { SessionStore } from './stores/sessions/session-store.js';
import { createSessionStore } from './stores/sessions/create-session-store.js';
import { createAsStore } from './stores/as/create-as-store.js';
import { buildUserOAuth } from './outbound/user-oauth/create-user-oauth.js';
import { createGrantStore } from './stores/grants/create-grant-store.js';
import { SealedJson } from './mcp/sealed-json.js';
import { MemoryResultStore } from './stores/results/memory-result-store.js';
import { RedisResultStore } from './stores/results/redis-result-store.js';
import type { ResultStore } from './stores/results/result-store.js';
import { ResultCache } from './mcp/result-cache.js';
import { CACHE_DEFAULTS } from './config/cache-config.js';
import { MemoryLimiter } from './stores/rate-limits/memory-limiter.js';
import { closeCredentialProviders, createCredentialProviders } from './outbound/create-providers.js';
import { createRedisClient, type RedisHandle } from './stores/redis/redis-client.js';
import { RedisLimiter } from './stores/rate-limits/redis-limiter.js';
import type { Channel } from './upstream/channel.js';
import { UpstreamSet } from './upstream/upstream-set.js';
import { VERSION } from './version.js';

export interface AppDeps {
  logger: Logger;
  /** Where audit records go; defaults to a child of the logger named `audit`. */
  audit?: AuditSink;
  authenticator?: Authenticator;
  /**
   * `auth.mode: dev`: the public JWKS of the local signing key (`loadOrCreateDevKey(config.auth.dev.keyFile)`,
   * loaded by the caller because this function is synchronous). Tokens from `gatehouse token` verify against it.
   */
  devJwks?: JSONWebKeySet;
  policy?: PolicyEngine;
  /** Tests: options of the audit file output (a small queue, injected file faults). */
  auditFile?: FileOutputOptions;
  /** Tests inject faults here; production uses the transport the config names. */
  channelFactory?: (config: GatehouseConfig['upstreams'][number]) => Channel;
  /** `auth.mode: builtin`: the store (default: the one `auth.builtin.store` names), and test-only options of the server. */
  authorizationServer?: { store?: AsStore } & Partial<
    Pick<AuthorizationServerOptions, 'now' | 'fetchClientMetadata' | 'unsafe'>
  >;
  /** Tests: a metric reader to collect from and a span exporter (in-memory); each turns its signal on whatever the config says. */
  telemetry?: Pick<TelemetryOptions, 'metricReader' | 'spanExporter'>;
  /** Session revocations and idle clocks (default: the one `sessions.store` names); tests share one between two apps. */
  sessionStore?: SessionStore;
  /**
   * The known-secret redactor (default: built from every secret of `config`). `gatehouse start` builds it first,
   * for its logger's output too, and hands the same one in.
   */
  secrets?: SecretRedactor;
  /** Tests: the rotation watcher's file system, poll period and debounce (src/config/secret-rotation.ts). */
  secretRotation?: Partial<Pick<SecretRotationOptions, 'fs' | 'intervalMs' | 'debounceMs'>>;
}

export interface App {
  readonly config: GatehouseConfig;
  readonly http: FastifyInstance;
  readonly frontDoor: FrontDoor;
  readonly router: Router;
  readonly upstreams: UpstreamSet;
  /** Authentication failures by reason since start (exported as a metric by the telemetry step). */
  readonly authFailures: ReasonCounter;
  /** Metrics and traces (`telemetry:`); `metricsUrl` is the Prometheus endpoint once started. */
  readonly telemetry: Telemetry;
  /** The audit log `audit:` describes (absent when `deps.audit` replaced it): status, `lost`, `reopen()` on SIGHUP. */
  readonly auditLog: AuditLog | undefined;
  /** `auth.mode: builtin`: the authorization server, once the edge app is ready (after `start()` or `http.ready()`). */
  readonly authorizationServer: AuthorizationServer | undefined;
  /** `policy.dir` reloads (hot reload, SIGHUP): the serving revision, the last error, failures. Absent without a reloadable policy. */
  readonly policyReload: PolicyReloadStatus | undefined;
  /** Reload `policy.dir` now (SIGHUP). Undefined when the policy is not a reloadable folder. */
  reloadPolicy(trigger?: string): PolicyReloadOutcome | undefined;
  /** Connect the upstreams and load the catalogue. Throws on a start-up collision. */
  start(): Promise<void>;
  readiness(): Readiness;
  /** Graceful: stop accepting, let calls finish up to the deadline, close sessions, upstreams, server. */
  close(deadlineMs?: number): Promise<void>;
}

/**
 * The composition root (docs/architecture.md §1): every concrete class is created here and handed its collaborators.
 * No `listen()` — the caller decides where (tests use port 0).
 */
export function buildApp(config: GatehouseConfig, deps: AppDeps): App {
  const logger = deps.logger;
  // Every secret the gateway injects or holds, redacted from what upstreams send and from the audit (threat model #17).
  const secrets = deps.secrets ?? secretRedactorFor(config);
  const metricsHosts = edgeOriginPolicy(config);
  // Metrics and traces (docs/architecture.md §9): providers owned by this app, never global; gauges read the
  // parts when scraped.
  const telemetry = new Telemetry({
    config: config.telemetry,
    serviceVersion: VERSION,
    logger,
    sources: {
      sessions: () => frontDoor?.sessionCount ?? 0,
      upstreams: () => upstreams.health(),
      policy: () => reloader?.status,
      redis: () => redis?.health().state,
      limits: () => limits.counters,
    },
    // Threat model #7 on the metrics listener too: a scraper sends no Origin and names the address it scrapes.
    admit: (headers) => headers.origin === undefined && metricsHosts.hostAllowed(headers.host),
    ...deps.telemetry,
  });
  // Audit records (docs/operations.md "Audit records"): stdout shares the operational logger's destination, so lines never interleave.
  const auditLog =
    deps.audit === undefined
      ? createAuditSink(config.audit, {
          logger,
          stdout: destinationOf(logger),
          secrets,
          ...(deps.auditFile !== undefined ? { file: deps.auditFile } : {}),
        })
      : undefined;
  // Every audit record also counts in the metrics it implies (unwrapped when metrics are off).
  const audit: AuditSink = telemetry.audit(deps.audit ?? auditLog!);
  const policy: PolicyEngine = startStep(audit, 'policy', () => deps.policy ?? createPolicyEngine(config));
  // Secret files that rotate without a restart (docs/configuration.md "Secrets that rotate"): the users read the live
  // value; this notes each rotation in the log and the audit, and a refused new file in /readyz.
  const rotation = new SecretRotation({
    secrets: rotatableSecrets(config),
    ...deps.secretRotation,
    onRotated: (e) => {
      if ('add' in secrets) (secrets as GrowingSecretRedactor).add(knownSecrets(config));
      logger.info({ source: e.source, usedBy: e.usedBy }, 'secret file rotated: the new value is in use');
      audit.record({ type: 'secret.rotated', outcome: 'ok', source: e.source, usedBy: e.usedBy });
    },
    onProblem: (p) => {
      if (p.message === undefined) {
        logger.info({ source: p.source, usedBy: p.usedBy }, 'secret file usable again');
        return;
      }
      logger.warn(
        { source: p.source, usedBy: p.usedBy, reason: p.message },
        'secret file changed but cannot be used; the previous value stays in use',
      );
      audit.record({ type: 'secret.rotated', outcome: 'error', source: p.source, usedBy: p.usedBy, detail: p.message });
    },
  });
  // auth.mode builtin: the authenticator verifies with what the authorization server publishes, and that server is
  // only registered when the edge app loads (see below) — until then, which is before any request, it refuses.
  let builtinAuthenticator: Authenticator | undefined;
  const authenticator =
    deps.authenticator ??
    (config.auth.mode === 'builtin'
      ? {
          authenticate: (req: AuthRequest): AuthResult | Promise<AuthResult> =>
            builtinAuthenticator?.authenticate(req) ?? AS_NOT_READY,
        }
      : createAuthenticator(config, deps.devJwks ? { devJwks: deps.devJwks } : {}));

  // The front door and the upstreams need each other (relays go up, calls go down); the hooks close the loop.
  let frontDoor: FrontDoor | undefined;
  let router: Router | undefined;
  const upstreams = new UpstreamSet({
    configs: config.upstreams,
    logger,
    clientInfo: { name: 'gatehouse', version: VERSION },
    secrets,
    ...(deps.channelFactory ? { channelFactory: deps.channelFactory } : {}),
    // Declare sampling/elicitation/roots to an upstream only when the policy could let it ask (threat model #19).
    declarable: (upstream) =>
      declarableCapabilities(policy.possibleUpstreamRequests?.(upstream) ?? ALL_UPSTREAM_REQUESTS),
    hooks: {
      relay: (upstream, request, origin) => frontDoor!.relay(upstream, request, origin),
      notification: (upstream, n, origin) => frontDoor?.upstreamNotification(upstream, n, origin),
      ready: (upstream) => void router?.refresh(upstream),
      stateChanged: (upstream, state, detail) => {
        audit.record({
          type: 'upstream.state',
          upstream,
          outcome: state === 'ready' ? 'ok' : 'error',
          ...(detail !== undefined ? { detail } : {}),
        });
      },
      // An open breaker does not make /readyz fail: the other upstreams keep serving (docs/configuration.md "Upstream resilience").
      breakerChanged: (upstream, breaker) => {
        audit.record({
          type: 'upstream.state',
          upstream,
          outcome: breaker === 'closed' ? 'ok' : 'error',
          detail: `breaker ${breaker}`,
        });
      },
    },
  });
  // Tool pinning (docs/architecture.md §8): the lock is read now, so a missing or broken one stops the start
  // (ConfigError).
  const lockFile = pinningActive(config) ? config.pinning.lockFile : undefined;
  const pinning: RouterPinning | undefined =
    lockFile !== undefined ? { lock: startStep(audit, 'tools lock', () => readToolsLock(lockFile)), audit } : undefined;
  router = new Router(config, upstreams, logger, pinning);
  /** Re-reads the lock (after `gatehouse tools approve`); a broken one keeps the lock in use. */
  const reloadLock = (trigger: string): void => {
    if (lockFile === undefined) return;
    try {
      router!.replaceLock(readToolsLock(lockFile));
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      logger.error({ lockFile, trigger, problems: detail }, 'tools lock reload failed; the previous lock stays in use');
      audit.record({ type: 'config', outcome: 'error', detail: `tools lock reload (${trigger}) failed: ${detail}` });
    }
  };
  // The one Redis connection (`redis`), shared by the parts that keep global state there (docs/architecture.md §7).
  const redis: RedisHandle | undefined =
    config.redis !== undefined ? createRedisClient(config.redis, logger.child({ component: 'redis' })) : undefined;
  redis?.onChange((h) =>
    audit.record({
      type: 'store.state',
      outcome: h.state === 'up' ? 'ok' : 'error',
      detail: h.state === 'up' ? 'redis up' : `redis down${h.lastError !== undefined ? `: ${h.lastError}` : ''}`,
    }),
  );
  // Session ids any replica can serve (docs/architecture.md §7); revocations and idle clocks in memory or on the
  // shared Redis.
  const sessions = createSessionAuthority(config, deps.sessionStore ?? createSessionStore(config, redis), logger);
  // Call limits (docs/configuration.md "Rate limits and quotas"): the loader guarantees `redis` when the store is redis.
  const limitsConfig = config.limits ?? { store: 'memory', onStoreError: 'closed', rules: [] };
  const limiterStore =
    limitsConfig.store === 'redis' && redis !== undefined
      ? new RedisLimiter(redis.client, { keyPrefix: `${redis.keyPrefix}limits:` })
      : new MemoryLimiter();
  const limits = new CallLimiter({
    limits: limitsConfig,
    store: limiterStore,
    logger: logger.child({ component: 'limits' }),
  });
  // Outbound identity (docs/authentication.md): a credential provider per upstream configured with `credentials:`.
  const credentials = createCredentialProviders(config, logger.child({ component: 'outbound' }));
  // Per-user OAuth to upstreams with `credentials.oauth` (src/outbound/user-oauth/).
  const userOAuth = config.upstreams.some((u) => u.transport !== 'stdio' && u.credentials?.oauth !== undefined)
    ? buildUserOAuth({
        config,
        store: createGrantStore(
          config.outbound?.oauth ?? { store: 'memory', keys: [], consentTtlSeconds: 600, memoryMaxEntries: 100_000 },
          redis,
        ),
        sealer: (keys, label) => new SealedJson(keys, label, 16 * 1024),
        audit,
        logger: logger.child({ component: 'user-oauth' }),
      })
    : undefined;
  for (const [name, provider] of userOAuth?.providers ?? []) credentials.set(name, provider);
  // The result cache and idempotency ledger (docs/configuration.md "Result cache and idempotency"): the loader
  // guarantees `redis` when the store is redis. Keys are prefixed apart from the limits' and the sessions'.
  const cacheConfig = config.cache ?? CACHE_DEFAULTS.cache;
  const resultStore: ResultStore =
    cacheConfig.store === 'redis' && redis !== undefined
      ? new RedisResultStore(redis.client, { keyPrefix: `${redis.keyPrefix}results:` })
      : new MemoryResultStore({ maxEntries: cacheConfig.maxEntries, maxBytes: cacheConfig.maxBytes });
  const results = new ResultCache(resultStore, logger.child({ component: 'result-cache' }));
  // A catalogue change (list_changed, a re-list, a pin state change) may mean other results: drop every upstream's.
  // The router does not say which upstream changed, so this is coarse; cached reads are short-lived anyway.
  router.onChange(() => results.invalidateUpstreams(config.upstreams.map((u) => u.name)));
  frontDoor = new FrontDoor({
    config,
    results,
    router,
    policy,
    audit,
    logger,
    version: VERSION,
    sessions,
    limits,
    tracing: telemetry.tracing,
    credentials,
  });

  // Hot reload (docs/architecture.md §8): only the compiled policy of `policy.dir` this function created is reloaded.
  const reloader =
    deps.policy === undefined && config.policy !== undefined && policy instanceof CompiledPolicyEngine
      ? new PolicyReloader({ dir: config.policy.dir, engine: policy, onReload: (o) => reported(o) })
      : undefined;
  const reported = (o: PolicyReloadOutcome): void => {
    if (o.ok) results.policyReloaded();
    // The lock lives in the policy folder by default: a change there may be an approval.
    reloadLock(o.trigger);
    if (!o.ok) {
      logger.error(
        { policyDir: config.policy?.dir, trigger: o.trigger, policyRevision: o.revision, problems: o.error },
        'policy reload failed; the previous policy keeps serving',
      );
      audit.record({
        type: 'config',
        outcome: 'error',
        policyRevision: o.revision,
        detail: `policy reload (${o.trigger}) failed: ${o.error}`,
      });
      return;
    }
    if (!o.changed) {
      logger.debug({ trigger: o.trigger, policyRevision: o.revision }, 'policy reloaded: unchanged');
      return;
    }
    logger.info({ trigger: o.trigger, policyRevision: o.revision, previousRevision: o.previous }, 'policy reloaded');
    audit.record({
      type: 'config',
      outcome: 'ok',
      policyRevision: o.revision,
      detail: `policy reload (${o.trigger}): ${o.previous} -> ${o.revision}`,
    });
    // What a session may see can have changed: every kind of list.
    frontDoor!.announceChanges(new Set(['tools', 'resources', 'prompts'] as const));
  };

  let started = false;
  let closing = false;
  const readiness = (): Readiness => {
    const health = upstreams.health();
    const waiting = health.filter((h) => h.required && h.state !== 'ready').map((h) => h.name);
    const status = reloader?.status;
    // A limit that fails closed refuses every call it covers while its Redis is down: take this replica out of
    // rotation rather than keep answering "limiter unavailable" (docs/configuration.md "Rate limits and quotas").
    const redisHealth = redis?.health();
    const limiterDown = limitsConfig.store === 'redis' && limits.hasFailClosed && redisHealth?.state !== 'up';
    return {
      // Audit failing closed refuses every call (GW_AUDIT_UNAVAILABLE): out of rotation until it recovers.
      ready: started && !closing && waiting.length === 0 && !limiterDown && audit.accepting?.() !== false,
      detail: {
        ...(auditLog !== undefined ? { audit: auditLog.status() } : {}),
        ...(redisHealth !== undefined
          ? {
              redis: {
                ...redisHealth,
                ...(limitsConfig.store === 'redis' ? { limits: limiterDown ? 'failing closed' : 'ok' } : {}),
              },
            }
          : {}),
        upstreams: health,
        sessions: frontDoor!.sessionCount,
        // A refused secret file does not make the gateway unready: the previous value still serves.
        ...(rotation.size > 0 ? { secrets: rotation.status() } : {}),
        ...(waiting.length > 0 ? { waitingFor: waiting } : {}),
        // A bad policy file does not make the gateway unready: the previous policy is serving.
        ...(status !== undefined
          ? {
              policy: {
                revision: status.revision,
                ...(status.lastError !== undefined ? { lastError: status.lastError } : {}),
              },
            }
          : {}),
      },
    };
  };
  const authFailures = new ReasonCounter();
  const clientCertOf = edgeClientCertReader(config, logger);
  // HTTP-level limits (server.httpRateLimit) share the call limits' store: Redis counters are global to the replicas.
  const httpRateLimitStore =
    limitsConfig.store === 'redis' && redis !== undefined ? { redis, onStoreError: limitsConfig.onStoreError } : {};
  const http = buildEdge({
    config,
    frontDoor,
    authenticator,
    logger,
    readiness,
    audit,
    authFailures,
    clientCertOf,
    httpRateLimitStore,
    ...(userOAuth !== undefined
      ? { userOAuth: { flows: userOAuth.flows, secureCookies: userOAuth.secureCookies } }
      : {}),
  });

  // The built-in authorization server: its own encapsulated scope of the edge app, registered when the app loads
  // (`ready()`/`listen()`), so its start-up checks and key import (asynchronous) happen before the first request.
  let authorizationServer: AuthorizationServer | undefined;
  let asStore: AsStore | undefined;
  if (config.auth.mode === 'builtin') {
    const as = config.auth.builtin;
    if (as === undefined) throw new TypeError('auth.mode builtin: auth.builtin is missing');
    const { store: injectedStore, ...asOptions } = deps.authorizationServer ?? {};
    let lastStoreError = 0;
    const store =
      injectedStore ??
      createAsStore(as.store, (err) => {
        // At most one line per 30 s while Redis is away (ioredis reports every reconnect attempt).
        if (Date.now() - lastStoreError < 30_000) return;
        lastStoreError = Date.now();
        logger.warn({ err: err.message }, 'authorization server store: Redis unreachable');
      });
    asStore = store;
    // A plain-http issuer is loopback-only local development (the loader and the plugin both insist); there, and
    // only there, the IdP may be a plain-http loopback one too (the loader refuses any other plain-http IdP).
    const localDevelopment = new URL(as.issuer).protocol === 'http:';
    void http.register(async (scope) => {
      const server = await registerAuthorizationServer(
        scope,
        {
          config,
          as,
          store,
          logger: logger.child({ component: 'as' }),
          clientCertOf,
          ...asOptions,
          unsafe: { ...(localDevelopment ? { allowInsecureIdp: true } : {}), ...asOptions.unsafe },
        },
        httpLimitsOf(http),
      );
      builtinAuthenticator = createAuthenticator(config, {
        builtin: { jwks: server.jwks, isRevoked: server.isRevoked },
      });
      authorizationServer = server;
      logger.info(
        { issuer: server.issuer, signingKeys: server.jwks.keys.length, store: as.store.kind },
        'built-in authorization server ready',
      );
    });
  }

  return {
    config,
    http,
    frontDoor,
    router,
    upstreams,
    authFailures,
    telemetry,
    auditLog,
    get authorizationServer() {
      return authorizationServer;
    },
    get policyReload() {
      return reloader?.status;
    },
    reloadPolicy(trigger = 'manual') {
      if (reloader === undefined) reloadLock(trigger);
      return reloader?.reload(trigger);
    },
    readiness,
    async start() {
      logger.info(
        config.policy !== undefined
          ? { policyDir: config.policy.dir, policyRevision: policy.revision }
          : { policyRevision: policy.revision },
        config.policy !== undefined
          ? 'policy loaded'
          : 'no policy: every request is allowed (auth.mode none, loopback only)',
      );
      if (config.auth.mode === 'none') {
        logger.warn(
          { host: config.server.host },
          'authentication is OFF (auth.mode: none) — allowed on loopback only; do not expose this gateway',
        );
      }
      // A metrics port that cannot be bound stops the start, before any upstream is started.
      await telemetry.start();
      // Load the edge app now: a misconfigured authorization server fails before any upstream is started.
      if (config.auth.mode === 'builtin') await http.ready();
      await upstreams.startAll();
      await router!.initialLoad();
      if (reloader !== undefined && !closing) {
        try {
          reloader.watch();
        } catch (err) {
          logger.warn(
            { policyDir: config.policy?.dir, err: err instanceof Error ? err.message : String(err) },
            'cannot watch the policy folder; reload with SIGHUP',
          );
        }
      }
      rotation.start();
      started = true;
    },
    async close(deadlineMs = config.server.shutdownTimeoutMs) {
      if (closing) return;
      closing = true;
      reloader?.close();
      rotation.close();
      // Refuse new connections first, then let calls in flight finish (docs/architecture.md: graceful shutdown).
      const serverClosed = http.close();
      await frontDoor!.drain(deadlineMs);
      http.server.closeAllConnections();
      await serverClosed;
      await upstreams.closeAll();
      closeCredentialProviders(credentials);
      await asStore?.close();
      await limiterStore.close();
      await resultStore.close();
      await userOAuth?.store.close();
      await redis?.close();
      // Last: the shutdown's own records are counted and its spans exported.
      await telemetry.shutdown();
      await auditLog?.close();
    },
  };
}

/**
 * The policy that decides every request: the compiled `policy.dir` (throws `ConfigError` on a bad policy, so the
 * gateway does not start), or — only with `auth.mode: none` and no policy, which the loader allows on loopback
 * alone — the permit-all engine. Any other mode without a policy is refused by the loader (default deny).
 */
/**
 * An operator's revocation of every grant a subject holds at one upstream (`gatehouse grants revoke`): the grants are
 * taken from the shared store and revoked at the upstream's authorization server where it offers RFC 7009. Only a
 * Redis grant store is reachable from outside the gateway; with `memory` the grants live in the running process.
 * Returns how many grants there were.
 */
export async function revokeUserGrants(
  config: GatehouseConfig,
  upstream: string,
  subject: string,
  logger: Logger,
): Promise<number> {
  const oauth = config.outbound?.oauth;
  if (oauth?.store !== 'redis' || config.redis === undefined)
    throw new TypeError(
      'outbound.oauth.store is memory: the grants live in the running gateway only; a user revokes their own with DELETE /oauth/upstream/<upstream>/grant, or set outbound.oauth.store: redis',
    );
  if (
    !config.upstreams.some((u) => u.name === upstream && u.transport !== 'stdio' && u.credentials?.oauth !== undefined)
  )
    throw new TypeError(`no upstream named ${upstream} with credentials.oauth in the configuration`);
  const redis = createRedisClient(config.redis, logger.child({ component: 'redis' }));
  try {
    // The gateway's client queues nothing while disconnected (fail fast on the request path): wait for it here.
    await whenRedisReady(redis, config.redis.connectTimeoutMs);
    const userOAuth = buildUserOAuth({
      config,
      store: createGrantStore(oauth, redis),
      sealer: (keys, label) => new SealedJson(keys, label, 16 * 1024),
      logger,
    });
    const provider = userOAuth?.providers.get(upstream);
    if (provider === undefined) throw new TypeError(`upstream ${upstream} has no per-user OAuth provider`);
    return await provider.revokeSubject(subject);
  } finally {
    await redis.close();
  }
}

function whenRedisReady(redis: RedisHandle, timeoutMs: number): Promise<void> {
  if (redis.client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new TypeError(`redis did not answer within ${timeoutMs} ms (${redis.health().lastError ?? 'no error'})`),
        ),
      timeoutMs,
    );
    redis.client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export function createPolicyEngine(config: GatehouseConfig): PolicyEngine {
  if (config.policy !== undefined) return new CompiledPolicyEngine(loadPolicyDir(config.policy.dir));
  if (config.auth.mode !== 'none') throw new TypeError(`auth.mode ${config.auth.mode} needs policy.dir (default deny)`);
  return new PermitAllPolicy();
}

/** The known-secret redactor of `config`: every `SecretValue` in it, in every form it may come back in. */
export function secretRedactorFor(config: GatehouseConfig): GrowingSecretRedactor {
  // Growing: a secret file that rotates brings a new value to redact (secret-rotation.ts), and the old one stays.
  return growingSecretRedactor(knownSecrets(config));
}

/**
 * pino options for the operational logger: the last net under it (threat model #17). Each finished line loses the
 * known secrets, in whatever form (a JSON-escaped one included) it reached the line. Upstream texts are redacted
 * at the source already (rpc-peer.ts, managed-upstream.ts); this catches a secret in any other message or error.
 * Nothing is added when no secret is configured.
 */
export function redactingLogHooks(secrets: SecretRedactor): { hooks?: { streamWrite: (line: string) => string } } {
  return secrets.isActive ? { hooks: { streamWrite: (line) => secrets.text(line) } } : {};
}

/** A start-up step whose failure (a broken policy, a missing lock) is recorded before it stops the start. */
function startStep<T>(audit: AuditSink, what: string, step: () => T): T {
  try {
    return step();
  } catch (err) {
    audit.record({
      type: 'config',
      outcome: 'error',
      detail: `start: ${what}: ${err instanceof Error ? err.message : String(err)}`,
    });
    throw err;
  }
}

/** The destination a pino logger writes to (children share their parent's). */
function destinationOf(logger: Logger): LineStream {
  return (
    (logger as Logger & Record<symbol, LineStream | undefined>)[pino.symbols.streamSym] ?? {
      write: (line: string) => process.stdout.write(line),
    }
  );
}

/** Whether any upstream's tools are compared with `tools.lock` (a mode other than `off`, globally or per upstream). */
export function pinningActive(config: GatehouseConfig): boolean {
  return config.upstreams.some((u) => (u.pinning ?? config.pinning.mode) !== 'off');
}

const AS_NOT_READY: AuthResult = Object.freeze({
  ok: false,
  status: 503,
  wwwAuthenticate: '',
  reason: 'verifier_unavailable',
  detail: 'the built-in authorization server is not registered yet',
});
