/** `CONFIG_DEFAULTS`: the defaults of gatehouse.yaml, with those the `*-config.ts` sections keep beside their code. */
import { deepFreeze } from '../lib/deep-freeze.js';
import { AUDIT_DEFAULTS } from './audit-config.js';
import { CACHE_DEFAULTS } from './cache-config.js';
import { LIMITS_DEFAULTS } from './limits-config.js';
import { SESSIONS_DEFAULTS } from './sessions-config.js';
import { TELEMETRY_DEFAULTS } from './telemetry-config.js';

/** Every default in one place. The schema's `default` annotations repeat them for editors (a test keeps both equal). */
export const CONFIG_DEFAULTS = deepFreeze({
  server: {
    host: '127.0.0.1',
    port: 8080,
    path: '/mcp',
    allowedOrigins: [] as string[],
    allowedHosts: [] as string[],
    bodyLimitBytes: 1024 * 1024,
    maxSessions: 10_000,
    sessionIdleTimeoutMs: 30 * 60_000,
    shutdownTimeoutMs: 10_000,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 300_000,
    keepAliveTimeoutMs: 72_000,
    trustedProxies: [] as string[],
    maxConnections: 20_000,
    readinessDetail: 'loopback' as const,
    httpRateLimit: {
      enabled: true,
      oauth: { windowSeconds: 60, perIp: 300, perClient: 600 },
      registration: { windowSeconds: 3600, perIp: 20 },
      sessions: { windowSeconds: 60, perIp: 120, perClient: 60 },
      authFailures: { windowSeconds: 60, perIp: 60 },
    },
    overload: { enabled: true, maxEventLoopDelayMs: 1000, retryAfterSeconds: 10 },
  },
  /** `resource` and `authorizationServers` are derived (see `normaliseAuth`), so they have no entry here. */
  auth: {
    mode: 'none' as const,
    scopesSupported: [] as string[],
    requiredScopes: [] as string[],
    algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
    clockSkewSeconds: 30,
    requireTokenType: false,
    claims: { scope: 'scope', groups: 'groups', clientId: 'client_id' },
  },
  tls: { clientCertificates: 'none' as const, minVersion: 'TLSv1.2' as const },
  introspection: { cacheSeconds: 30, cacheMaxEntries: 10_000 },
  /** Applied when `auth.mode` is `dev` and the `dev` block is absent or partial; `keyFile` is relative to the config folder. */
  devAuth: { keyFile: '.gatehouse/dev-signing-key.json', issuer: 'urn:gatehouse:dev' },
  /** `auth.builtin` (mode builtin). `issuer` is derived from `auth.resource` (see `normaliseBuiltin`), so it has no entry here. */
  builtin: {
    accessTokenTtlSeconds: 300,
    refreshTokenTtlSeconds: 30 * 24 * 60 * 60,
    codeTtlSeconds: 60,
    registration: { enabled: true },
    clientIdMetadataDocuments: true,
    scopeMapping: [] as { claim: string; value: string; scopes: string[] }[],
    clients: [] as never[],
    store: { kind: 'memory' as const },
  },
  builtinRegistration: { enabled: true },
  builtinIdp: { scopes: ['openid', 'profile', 'email'] },
  builtinStore: { keyPrefix: 'gatehouse:as:' },
  catalogue: { separator: '__', maxNameLength: 64, unprefixedSingleUpstream: false },
  logging: { level: 'info' as const },
  /** `lockFile` defaults to `<policy.dir>/tools.lock` (see `normalisePinning`), so it has no entry here. */
  pinning: { mode: 'off' as const },
  ...TELEMETRY_DEFAULTS,
  ...SESSIONS_DEFAULTS,
  ...AUDIT_DEFAULTS,
  ...LIMITS_DEFAULTS,
  ...CACHE_DEFAULTS,
  upstream: {
    required: true,
    timeoutMs: 60_000,
    /** Raised to `timeoutMs` when that is larger, so setting only a long `timeoutMs` stays valid. */
    maxTotalTimeoutMs: 300_000,
    maxMessageBytes: 4 * 1024 * 1024,
    mode: 'shared' as const,
    protocol: 'auto' as const,
    restart: { initialDelayMs: 500, maxDelayMs: 30_000 },
    expose: { tools: true, resources: true, prompts: true },
    headers: {} as Record<string, never>,
    args: [] as string[],
    cwd: '.',
    envAllow: ['PATH', 'HOME', 'LANG', 'TZ'],
    env: {} as Record<string, never>,
    shutdownGraceMs: 2000,
    /**
     * `warn`, not `enforce`: an upstream whose results never matched its own outputSchema kept working before this
     * check existed; `warn` shows it (audit + metric) without breaking clients, and an operator turns on `enforce`.
     */
    outputValidation: 'warn' as const,
    // Upstream resilience (docs/configuration.md "Upstream resilience"; src/upstream/resilience.ts).
    maxInFlight: 64,
    maxQueued: 256,
    queueTimeoutMs: 10_000,
    breaker: { enabled: true, failureThreshold: 5, openMs: 30_000 },
    retry: { attempts: 1, backoffMs: 200, tools: [] as string[] },
  },
});
