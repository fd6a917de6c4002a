/**
 * Loads `gatehouse.yaml`: read → YAML parse → JSON Schema check → checks the schema cannot express → resolve
 * secret references → fill defaults → deep-freeze (docs/style.md habit 5). Every problem found is collected and
 * thrown together as one `ConfigError`, each naming file, line, path and what is wrong, so one run of
 * `gatehouse check` shows everything to fix. Messages never quote a secret or a value that looks like one.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type JsonWebKey } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { escapePointer } from '../lib/json-pointer.js';
import { YamlSource } from './yaml-source.js';
import { ConfigError, type ConfigProblem } from '../errors/config-error.js';
import { schemaProblems } from './config-schema.js';
import { fileExposure } from './file-exposure.js';
import { weakSecretProblems } from './weak-secrets.js';
import {
  credentialKind,
  describeFsError,
  INLINE_SECRET_MESSAGE,
  inlineSecretProblem,
  isSecretValue,
  resolveSecretRef,
  type SecretContext,
  type SecretRef,
} from './secrets.js';
import type {
  AuthConfig,
  BuiltinAsConfig,
  CatalogueConfig,
  DevAuthConfig,
  GatehouseConfig,
  HttpRateLimitConfig,
  HttpUpstreamConfig,
  IntrospectionConfig,
  JwtConfig,
  LoggingConfig,
  OverloadConfig,
  PinningConfig,
  PolicyConfig,
  SecretValue,
  ServerConfig,
  StdioUpstreamConfig,
  TlsConfig,
  UpstreamConfig,
  UpstreamMode,
  UpstreamResilienceConfig,
  ValueOrSecret,
} from './types.js';
import { normaliseTelemetry, TELEMETRY_DEFAULTS, type RawTelemetry } from './telemetry-config.js';
import { normaliseSessions, SESSIONS_DEFAULTS, type RawSessions } from './sessions-config.js';
import { AUDIT_DEFAULTS, normaliseAudit, type RawAudit } from './audit-config.js';
import {
  checkRedisUrl,
  LIMITS_DEFAULTS,
  normaliseLimits,
  normaliseRedis,
  type RawLimits,
  type RawRedis,
} from './limits-config.js';
import { withUnit } from '../lib/value-words.js';
import { defaultRequiredClaims } from './jwt-config.js';
import { deepFreeze } from '../lib/deep-freeze.js';

export interface LoadOptions {
  /** Where `{ fromEnv }` references are read. Default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** Folder that relative paths (`cwd`, `fromFile`) resolve against. Default: the config file's folder. */
  readonly baseDir?: string;
}

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
  upstream: {
    required: true,
    timeoutMs: 60_000,
    /** Raised to `timeoutMs` when that is larger, so setting only a long `timeoutMs` stays valid. */
    maxTotalTimeoutMs: 300_000,
    maxMessageBytes: 4 * 1024 * 1024,
    mode: 'shared' as const,
    restart: { initialDelayMs: 500, maxDelayMs: 30_000 },
    expose: { tools: true, resources: true, prompts: true },
    headers: {} as Record<string, never>,
    args: [] as string[],
    cwd: '.',
    envAllow: ['PATH', 'HOME', 'LANG', 'TZ'],
    env: {} as Record<string, never>,
    shutdownGraceMs: 2000,
    // Upstream resilience (README "Upstream resilience"; src/upstream/resilience.ts).
    maxInFlight: 64,
    maxQueued: 256,
    queueTimeoutMs: 10_000,
    breaker: { enabled: true, failureThreshold: 5, openMs: 30_000 },
    retry: { attempts: 1, backoffMs: 200, tools: [] as string[] },
  },
});

/** Reads and validates a config file. Throws `ConfigError` listing every problem. */
export function loadConfig(file: string, opts: LoadOptions = {}): GatehouseConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'it is a folder'
          : code === 'EACCES'
            ? 'permission denied'
            : (code ?? 'unknown error');
    throw new ConfigError([{ file, path: '', message: `cannot read the configuration file (${why})` }]);
  }
  // Whoever can change the configuration runs commands as the gateway (stdio upstreams): refused like a policy file.
  const exposed = fileExposure(file, 'configuration file').map((message): ConfigProblem => ({
    file,
    path: '',
    message,
  }));
  if (exposed.length === 0) return parseConfigText(text, file, opts);
  try {
    parseConfigText(text, file, opts);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError([...exposed, ...err.problems]);
    throw err;
  }
  throw new ConfigError(exposed);
}

/** Validates config text as if read from `file` (used for messages and to resolve relative paths). */
export function parseConfigText(text: string, file: string, opts: LoadOptions = {}): GatehouseConfig {
  const absFile = path.resolve(file);
  const baseDir = opts.baseDir ?? path.dirname(absFile);
  const src = new YamlSource(file, text, { syntaxErrors: 'located' });
  if (src.problems.length > 0) throw new ConfigError(src.problems);
  const data = src.data;

  const schema = schemaProblems(data, src);
  const problems = [...schema];
  if (!isRecord(data)) throw new ConfigError(problems);

  // Sections with a schema problem are skipped below: their shape is unknown, and one message per mistake is enough.
  const isClean = (pointer: string): boolean =>
    !schema.some((p) => p.path === pointer || p.path.startsWith(`${pointer}/`));
  const raw = data as RawConfig;
  // The bundled example's demo secrets are allowed on loopback only (weak-secrets.ts); secrets are resolved in
  // several sections, some before the server section is normalised, so this is read from the raw host.
  const rawHost = isRecord(raw.server) && typeof raw.server.host === 'string' ? raw.server.host : undefined;
  const onLoopback = isLoopbackHost(rawHost ?? CONFIG_DEFAULTS.server.host);
  const ctx: Ctx = { src, problems, secrets: { env: opts.env ?? process.env, baseDir }, onLoopback };

  const server = isClean('/server') ? normaliseServer(raw.server ?? {}, ctx) : undefined;
  // Auth is checked even when the server section is broken (its secrets and URLs have their own problems);
  // only the checks against the host and the derived `resource` need a server.
  const auth = isClean('/auth') ? normaliseAuth(raw.auth ?? {}, server, ctx) : undefined;
  const catalogue = isClean('/catalogue') ? normaliseCatalogue(raw.catalogue ?? {}) : undefined;
  const logging = isClean('/logging') ? normaliseLogging(raw.logging ?? {}) : undefined;
  const policy = raw.policy !== undefined && isClean('/policy') ? normalisePolicy(raw.policy, ctx) : undefined;
  const pinning = isClean('/pinning') ? normalisePinning(raw, policy, ctx) : undefined;
  const audit = isClean('/audit')
    ? normaliseAudit(raw.audit ?? {}, {
        baseDir,
        resolveSecret: (ref, pointer) => resolveSecret(ref, pointer, ctx),
        report: (pointer, message) => report(ctx, pointer, message),
      })
    : undefined;
  const telemetry = isClean('/telemetry')
    ? normaliseTelemetry(raw.telemetry ?? {}, server, (pointer, message) => report(ctx, pointer, message))
    : undefined;
  const sessions = isClean('/sessions')
    ? normaliseSessions(raw.sessions ?? {}, {
        resolveSecret: (ref, pointer) => resolveSecret(ref, pointer, ctx),
        report: (pointer, message) => report(ctx, pointer, message),
        hasRedis: (data as Record<string, unknown>).redis !== undefined,
        idleTimeoutMs: server?.sessionIdleTimeoutMs ?? CONFIG_DEFAULTS.server.sessionIdleTimeoutMs,
      })
    : undefined;
  const limitsCtx = {
    report: (pointer: string, message: string) => report(ctx, pointer, message),
    resolveSecret: (ref: SecretRef, pointer: string) => resolveSecret(ref, pointer, ctx),
  };
  const redis = raw.redis !== undefined && isClean('/redis') ? normaliseRedis(raw.redis, limitsCtx) : undefined;
  const limits = isClean('/limits') ? normaliseLimits(raw.limits ?? {}, raw.redis !== undefined, limitsCtx) : undefined;
  if (server !== undefined && auth !== undefined) checkAuthAgainstHost(server, auth, raw, ctx);
  if (auth !== undefined && auth.mode !== 'none' && raw.policy === undefined) {
    // Default deny (docs/architecture.md §4): without policy files an authenticated gateway would refuse every request.
    report(
      ctx,
      '/auth/mode',
      `auth.mode "${auth.mode}" needs policy.dir: with no policy every request would be denied (default deny)`,
    );
  }

  const upstreams: UpstreamConfig[] = [];
  if (Array.isArray(raw.upstreams)) {
    checkUpstreamNames(raw.upstreams, catalogue, ctx);
    raw.upstreams.forEach((u, i) => {
      if (!isClean(`/upstreams/${i}`)) return;
      const normalised = normaliseUpstream(u, `/upstreams/${i}`, ctx);
      if (normalised !== undefined) upstreams.push(normalised);
    });
  }

  if (
    problems.length > 0 ||
    !server ||
    !auth ||
    !catalogue ||
    !logging ||
    !pinning ||
    !audit ||
    !telemetry ||
    !sessions ||
    !limits
  ) {
    throw new ConfigError(problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0)));
  }
  return deepFreeze({
    file: absFile,
    server,
    auth,
    catalogue,
    logging,
    ...(policy !== undefined ? { policy } : {}),
    pinning,
    audit,
    telemetry,
    sessions,
    ...(redis !== undefined ? { redis } : {}),
    limits,
    upstreams,
  });
}

/** A JSON-safe summary for logs and `gatehouse check`: the whole normalised config, secrets shown as their source. */
export function describeConfig(config: GatehouseConfig): JsonObject {
  return toJson(config) as JsonObject;
}

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

function toJson(value: unknown): JsonValue {
  if (isSecretValue(value)) return `[secret ${value.source}]`;
  if (Array.isArray(value)) return value.map(toJson);
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  return null;
}

// ─── The raw, schema-checked shape ────────────────────────────────────────────────────────────────────────
// Only trusted after the schema passed for that section; optional everywhere the YAML may omit a key.

type RawValue = string | SecretRef;
interface RawUpstream {
  name: string;
  transport: 'stdio' | 'http' | 'sse';
  url?: string;
  headers?: Record<string, RawValue>;
  required?: boolean;
  timeoutMs?: number;
  maxTotalTimeoutMs?: number;
  maxMessageBytes?: number;
  mode?: UpstreamMode;
  restart?: { initialDelayMs?: number; maxDelayMs?: number };
  expose?: { tools?: boolean; resources?: boolean; prompts?: boolean };
  command?: string;
  args?: string[];
  cwd?: string;
  envAllow?: string[];
  env?: Record<string, RawValue>;
  shutdownGraceMs?: number;
  pinning?: PinningConfig['mode'];
  maxInFlight?: number;
  maxQueued?: number;
  queueTimeoutMs?: number;
  breaker?: { enabled?: boolean; failureThreshold?: number; openMs?: number };
  retry?: { attempts?: number; backoffMs?: number; tools?: string[] };
}
interface RawTls {
  certFile: string;
  key: SecretRef;
  clientCaFile?: string;
  clientCertificates?: TlsConfig['clientCertificates'];
  minVersion?: TlsConfig['minVersion'];
}
type RawServer = Partial<Omit<ServerConfig, 'tls' | 'httpRateLimit' | 'overload'>> & {
  tls?: RawTls;
  httpRateLimit?: { enabled?: boolean } & {
    [K in 'oauth' | 'registration' | 'sessions' | 'authFailures']?: Partial<HttpRateLimitConfig[K]>;
  };
  overload?: Partial<OverloadConfig>;
};
interface RawAuth {
  mode?: AuthConfig['mode'];
  resource?: string;
  authorizationServers?: string[];
  scopesSupported?: string[];
  requiredScopes?: string[];
  algorithms?: string[];
  clockSkewSeconds?: number;
  requireTokenType?: boolean;
  claims?: Partial<AuthConfig['claims']>;
  jwt?: { issuer: string; jwksUri?: string; jwksFile?: string; requiredClaims?: string[]; maxTokenAgeSeconds?: number };
  introspection?: {
    endpoint: string;
    issuer: string;
    clientId: string;
    clientSecret: SecretRef;
    cacheSeconds?: number;
    cacheMaxEntries?: number;
  };
  dev?: { keyFile?: string; issuer?: string };
  builtin?: RawBuiltin;
}
interface RawBuiltin {
  issuer?: string;
  signingKeys: SecretRef[];
  accessTokenTtlSeconds?: number;
  refreshTokenTtlSeconds?: number;
  codeTtlSeconds?: number;
  registration?: { enabled?: boolean; initialAccessToken?: SecretRef };
  clientIdMetadataDocuments?: boolean;
  idp: { issuer: string; clientId: string; clientSecret?: SecretRef; scopes?: string[] };
  scopeMapping?: { claim: string; value: string; scopes: string[] }[];
  clients?: {
    clientId: string;
    auth: 'private_key_jwt' | 'tls_client_auth';
    jwksFile?: string;
    tlsSubject?: string;
    scopes: string[];
  }[];
  store?: { kind: 'memory' | 'redis'; url?: RawValue; keyPrefix?: string };
}
interface RawConfig {
  server?: RawServer;
  auth?: RawAuth;
  catalogue?: Partial<CatalogueConfig>;
  logging?: Partial<LoggingConfig>;
  policy?: { dir: string };
  pinning?: { mode?: PinningConfig['mode']; lockFile?: string };
  audit?: RawAudit;
  telemetry?: RawTelemetry;
  sessions?: RawSessions;
  redis?: RawRedis;
  limits?: RawLimits;
  upstreams?: RawUpstream[];
}

interface Ctx {
  readonly src: YamlSource;
  readonly problems: ConfigProblem[];
  readonly secrets: SecretContext;
  /** `server.host` is a loopback address. */
  readonly onLoopback: boolean;
}

function report(ctx: Ctx, pointer: string, message: string, at: 'value' | 'key' = 'value'): void {
  ctx.problems.push(ctx.src.problem(pointer, message, at));
}

// ─── Sections ────────────────────────────────────────────────────────────────────────────────────────────

function normaliseServer(raw: RawServer, ctx: Ctx): ServerConfig {
  const { tls: rawTls, forwardedClientCertHeader, httpRateLimit, overload, ...rest } = raw;
  const base = { ...CONFIG_DEFAULTS.server, ...rest, ...edgeLimits(httpRateLimit, overload) };
  if (base.host.includes(':') && !net.isIPv6(base.host))
    report(ctx, '/server/host', 'must be a valid IPv6 address (without brackets)');
  // Node refuses to start a server whose headers timeout exceeds its request timeout.
  if (base.headersTimeoutMs > base.requestTimeoutMs) {
    report(ctx, '/server/headersTimeoutMs', `must not exceed requestTimeoutMs (${base.requestTimeoutMs})`);
  }
  base.allowedOrigins.forEach((origin, i) => {
    let canonical: string;
    try {
      canonical = new URL(origin).origin;
    } catch {
      report(ctx, `/server/allowedOrigins/${i}`, 'is not a valid origin (scheme://host[:port])');
      return;
    }
    // Browsers send the serialised origin; a non-canonical entry (upper case, default port) would never match.
    if (canonical !== origin)
      report(ctx, `/server/allowedOrigins/${i}`, `must be written exactly as browsers send it: "${canonical}"`);
  });
  base.allowedHosts.forEach((host, i) => checkAllowedHost(host, `/server/allowedHosts/${i}`, ctx));
  base.trustedProxies.forEach((entry, i) => checkProxyAddress(entry, `/server/trustedProxies/${i}`, ctx));
  if (forwardedClientCertHeader !== undefined && base.trustedProxies.length === 0) {
    report(
      ctx,
      '/server/forwardedClientCertHeader',
      'needs server.trustedProxies: a forwarded client certificate is only believed from listed proxy addresses, and the list is empty',
    );
  }
  const tls = rawTls === undefined ? undefined : normaliseTls(rawTls, ctx);
  return {
    ...base,
    ...(tls !== undefined ? { tls } : {}),
    // Node hands header names to us lower-cased; storing the same form lets the edge look it up directly.
    ...(forwardedClientCertHeader !== undefined
      ? { forwardedClientCertHeader: forwardedClientCertHeader.toLowerCase() }
      : {}),
  };
}

/** `server.httpRateLimit` and `server.overload`, merged key by key over the defaults (a partial block keeps the rest). */
function edgeLimits(
  rl: RawServer['httpRateLimit'],
  overload: RawServer['overload'],
): Pick<ServerConfig, 'httpRateLimit' | 'overload'> {
  const d = CONFIG_DEFAULTS.server;
  return {
    httpRateLimit: {
      enabled: rl?.enabled ?? d.httpRateLimit.enabled,
      oauth: { ...d.httpRateLimit.oauth, ...rl?.oauth },
      registration: { ...d.httpRateLimit.registration, ...rl?.registration },
      sessions: { ...d.httpRateLimit.sessions, ...rl?.sessions },
      authFailures: { ...d.httpRateLimit.authFailures, ...rl?.authFailures },
    },
    overload: { ...d.overload, ...overload },
  };
}

/** One `allowedHosts` entry: a host name as the URL parser writes it (lower case, no port), compared with `Host`. */
function checkAllowedHost(host: string, pointer: string, ctx: Ctx): void {
  let parsed: string | undefined;
  try {
    const url = new URL(`http://${host}`);
    parsed = url.host === url.hostname && url.pathname === '/' && url.username === '' ? url.hostname : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined) {
    report(
      ctx,
      pointer,
      'is not a host name; write the name alone, without scheme, port or path (e.g. mcp.example.com)',
    );
  } else if (parsed !== host) {
    report(ctx, pointer, `must be written as clients send it in Host: "${parsed}"`);
  }
}

const PROXY_EXAMPLE = 'e.g. 10.0.0.0/8, 192.168.1.10 or ::1';

/** One `trustedProxies` entry: an IPv4/IPv6 address or `address/prefix`, as `node:net` BlockList takes them. */
function checkProxyAddress(entry: string, pointer: string, ctx: Ctx): void {
  const slash = entry.indexOf('/');
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const prefixText = slash < 0 ? undefined : entry.slice(slash + 1);
  const family = net.isIP(address);
  const prefix = prefixText !== undefined && /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : undefined;
  if (family === 0 || (prefixText !== undefined && (prefix === undefined || prefix > (family === 6 ? 128 : 32)))) {
    const why = family !== 0 ? ` (the prefix length must be 0-${family === 6 ? 128 : 32})` : '';
    report(ctx, pointer, `is not an IP address or CIDR range${why}; ${PROXY_EXAMPLE}`);
    return;
  }
  try {
    const list = new net.BlockList();
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, prefix, type);
  } catch {
    report(ctx, pointer, `is not an IP address or CIDR range; ${PROXY_EXAMPLE}`);
    return;
  }
  // Trusting every peer lets any client forge the forwarded headers (a client certificate, its address).
  if (prefix === 0)
    report(
      ctx,
      pointer,
      "trusts every address, so any client could forge forwarded headers; list the proxies' own addresses or subnets",
    );
}

function normaliseTls(raw: RawTls, ctx: Ctx): TlsConfig | undefined {
  const at = '/server/tls';
  const d = CONFIG_DEFAULTS.tls;
  const certFile = path.resolve(ctx.secrets.baseDir, raw.certFile);
  checkPemFile(certFile, `${at}/certFile`, 'a certificate', ctx);
  const clientCaFile = raw.clientCaFile === undefined ? undefined : path.resolve(ctx.secrets.baseDir, raw.clientCaFile);
  if (clientCaFile !== undefined) checkPemFile(clientCaFile, `${at}/clientCaFile`, 'a CA certificate', ctx);
  const clientCertificates = raw.clientCertificates ?? d.clientCertificates;
  if (clientCertificates !== 'none' && clientCaFile === undefined) {
    report(
      ctx,
      `${at}/clientCertificates`,
      `"${clientCertificates}" needs tls.clientCaFile: client certificates are checked against that CA only, never against public roots`,
    );
  }
  if (clientCertificates === 'none' && clientCaFile !== undefined) {
    report(
      ctx,
      `${at}/clientCaFile`,
      'is unused while tls.clientCertificates is "none"; set clientCertificates to "request" or "require", or remove clientCaFile',
      'key',
    );
  }
  const key = resolveSecret(raw.key, `${at}/key`, ctx);
  if (key !== undefined) checkPrivateKey(key, `${at}/key`, ctx);
  if (key === undefined) return undefined;
  return {
    certFile,
    key,
    ...(clientCaFile !== undefined ? { clientCaFile } : {}),
    clientCertificates,
    minVersion: raw.minVersion ?? d.minVersion,
  };
}

/** Certificate and CA bundles (public, but a whole CA store is large). */
const MAX_PEM_FILE_BYTES = 4 * 1024 * 1024;

/** A PEM file that must exist and hold at least one certificate, and no private key (keys go in `tls.key`). */
function checkPemFile(file: string, pointer: string, what: string, ctx: Ctx): void {
  const text = readSmallFile(file, MAX_PEM_FILE_BYTES, pointer, ctx);
  if (text === undefined) return;
  if (!text.includes('-----BEGIN CERTIFICATE-----'))
    report(ctx, pointer, `file ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----); expected ${what}`);
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    report(
      ctx,
      pointer,
      `file ${file} also holds a private key; keep the key in a file of its own and reference it from tls.key`,
    );
  }
}

/** The TLS key: an unencrypted PEM private key Node can load. Messages name the source, never the content. */
function checkPrivateKey(key: SecretValue, pointer: string, ctx: Ctx): void {
  const pem = key.reveal();
  const at = `${pointer}/${key.source.startsWith('env:') ? 'fromEnv' : 'fromFile'}`;
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/.test(pem)) {
    report(
      ctx,
      at,
      `the secret from ${key.source} is an encrypted private key; Gatehouse needs it unencrypted (protect the file's permissions instead)`,
    );
    return;
  }
  try {
    createPrivateKey(pem);
  } catch {
    // A variable holding `\n` escapes instead of line breaks is the usual way a PEM key from the environment breaks.
    const hint =
      key.source.startsWith('env:') && pem.includes('\\n')
        ? ' (it holds "\\n" escapes; the variable needs real line breaks)'
        : '';
    report(ctx, at, `the secret from ${key.source} is not a PEM private key (-----BEGIN PRIVATE KEY-----)${hint}`);
  }
}

function normaliseAuth(raw: RawAuth, server: ServerConfig | undefined, ctx: Ctx): AuthConfig {
  const d = CONFIG_DEFAULTS.auth;
  const mode = raw.mode ?? d.mode;
  // The schema refuses `jwt`/`introspection` outside mode oauth and `dev` outside mode dev.
  const requireTokenType = raw.requireTokenType ?? d.requireTokenType;
  const jwt = raw.jwt === undefined ? undefined : normaliseJwt(raw.jwt, requireTokenType, ctx);
  const introspection = raw.introspection === undefined ? undefined : normaliseIntrospection(raw.introspection, ctx);
  const dev = mode === 'dev' ? normaliseDev(raw.dev ?? {}, ctx) : undefined;
  if (mode === 'oauth' && raw.jwt === undefined && raw.introspection === undefined) {
    report(
      ctx,
      '/auth/mode',
      'auth.mode "oauth" needs a "jwt" block (JWT access tokens), an "introspection" block (opaque tokens), or both',
    );
  }

  let resource = '';
  if (raw.resource !== undefined) {
    const url = checkAuthUrl(raw.resource, '/auth/resource', 'resource', ctx);
    if (url !== undefined) resource = canonicalResource(url);
  } else if (server !== undefined && !ctx.problems.some((p) => p.path === '/server/host')) {
    // (A host already reported, e.g. "1:2:3", would make no URL.)
    resource = defaultResource(server);
  }

  // The schema refuses `builtin` outside mode builtin.
  if (mode === 'builtin' && raw.builtin === undefined) {
    report(
      ctx,
      '/auth/mode',
      'auth.mode "builtin" needs a "builtin" block (at least signingKeys and idp: the built-in authorization server\'s keys and the OpenID provider users log in at)',
    );
  }
  const builtin =
    mode === 'builtin' && raw.builtin !== undefined
      ? normaliseBuiltin(raw.builtin, resource, raw.scopesSupported ?? d.scopesSupported, ctx)
      : undefined;

  raw.authorizationServers?.forEach((issuer, i) =>
    checkAuthUrl(issuer, `/auth/authorizationServers/${i}`, 'issuer', ctx),
  );
  const authorizationServers =
    raw.authorizationServers ??
    // Dev tokens come from `gatehouse token`, not from an authorization server a client could discover: advertise
    // none (RFC 9728 expects issuer URLs; `urn:gatehouse:dev` made mcp-remote's discovery crash).
    (mode === 'dev'
      ? []
      : mode === 'builtin'
        ? builtin !== undefined && builtin.issuer !== ''
          ? [builtin.issuer]
          : []
        : [...new Set([raw.jwt?.issuer, raw.introspection?.issuer].filter((i): i is string => i !== undefined))]);

  const scopesSupported = raw.scopesSupported ?? d.scopesSupported;
  const requiredScopes = raw.requiredScopes ?? d.requiredScopes;
  if (scopesSupported.length > 0) {
    // Clients request what the metadata advertises; a required scope missing there would refuse every token.
    requiredScopes.forEach((scope, i) => {
      if (!scopesSupported.includes(scope))
        report(ctx, `/auth/requiredScopes/${i}`, `scope "${scope}" is required but missing from auth.scopesSupported`);
    });
  }

  return {
    mode,
    resource,
    authorizationServers,
    scopesSupported,
    requiredScopes,
    algorithms: raw.algorithms ?? d.algorithms,
    clockSkewSeconds: raw.clockSkewSeconds ?? d.clockSkewSeconds,
    requireTokenType: raw.requireTokenType ?? d.requireTokenType,
    claims: { ...d.claims, ...raw.claims },
    ...(jwt !== undefined ? { jwt } : {}),
    ...(introspection !== undefined ? { introspection } : {}),
    ...(dev !== undefined ? { dev } : {}),
    ...(builtin !== undefined ? { builtin } : {}),
  };
}

/**
 * The `resource` a config without one gets: `http(s)://host:port/path`, https when the listener has TLS.
 * With port 0 the result says `:0` — the real port is only known once listening, so a gateway on port 0
 * outside tests needs `auth.resource`; tests can call this again with the bound port.
 */
export function defaultResource(server: Pick<ServerConfig, 'host' | 'port' | 'path' | 'tls'>): string {
  const host = net.isIPv6(server.host) ? `[${server.host}]` : server.host;
  return canonicalResource(
    new URL(`${server.tls !== undefined ? 'https' : 'http'}://${host}:${server.port}${server.path}`),
  );
}

/** RFC 8707 / RFC 9728 canonical form: lower-case scheme and host (the URL parser's), no default port, no trailing `/`. */
function canonicalResource(url: URL): string {
  const pathname = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') || '/' : url.pathname;
  return `${url.protocol}//${url.host}${pathname}${url.search}`;
}

function normaliseJwt(raw: NonNullable<RawAuth['jwt']>, requireTokenType: boolean, ctx: Ctx): JwtConfig {
  const at = '/auth/jwt';
  checkAuthUrl(raw.issuer, `${at}/issuer`, 'issuer', ctx);
  if ((raw.jwksUri === undefined) === (raw.jwksFile === undefined)) {
    const pointer = raw.jwksFile !== undefined ? `${at}/jwksFile` : at;
    report(
      ctx,
      pointer,
      'needs exactly one of jwksUri (keys fetched from the issuer) and jwksFile (keys from a local file)',
      raw.jwksFile !== undefined ? 'key' : 'value',
    );
  }
  if (raw.jwksUri !== undefined) checkAuthUrl(raw.jwksUri, `${at}/jwksUri`, 'endpoint', ctx);
  const jwksFile = raw.jwksFile === undefined ? undefined : path.resolve(ctx.secrets.baseDir, raw.jwksFile);
  if (jwksFile !== undefined) checkJwksFile(jwksFile, `${at}/jwksFile`, ctx);
  return {
    issuer: raw.issuer,
    ...(raw.jwksUri !== undefined ? { jwksUri: raw.jwksUri } : {}),
    ...(jwksFile !== undefined ? { jwksFile } : {}),
    requiredClaims: raw.requiredClaims ?? defaultRequiredClaims(requireTokenType),
    ...(raw.maxTokenAgeSeconds !== undefined ? { maxTokenAgeSeconds: raw.maxTokenAgeSeconds } : {}),
  };
}

const MAX_JWKS_FILE_BYTES = 1024 * 1024;

/** A local JWKS: JSON `{ "keys": [...] }` with public keys only. */
function checkJwksFile(file: string, pointer: string, ctx: Ctx): void {
  const text = readSmallFile(file, MAX_JWKS_FILE_BYTES, pointer, ctx);
  if (text === undefined) return;
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch {
    report(ctx, pointer, `file ${file} is not valid JSON`);
    return;
  }
  const keys = isRecord(jwks) ? jwks.keys : undefined;
  if (!Array.isArray(keys) || !keys.every(isRecord)) {
    report(ctx, pointer, `file ${file} is not a JWKS (a JSON object with a "keys" list of JWKs)`);
    return;
  }
  if (keys.length === 0) report(ctx, pointer, `file ${file} has an empty "keys" list`);
  // "d": an RSA/EC/OKP private key; "k": a symmetric key. Neither belongs in a verifier's key set.
  if (keys.some((k) => 'd' in k || 'k' in k)) {
    report(
      ctx,
      pointer,
      `file ${file} holds private or symmetric key material ("d" or "k" members); it must hold public keys only`,
    );
  }
}

function normaliseIntrospection(raw: NonNullable<RawAuth['introspection']>, ctx: Ctx): IntrospectionConfig | undefined {
  const at = '/auth/introspection';
  const d = CONFIG_DEFAULTS.introspection;
  checkAuthUrl(raw.endpoint, `${at}/endpoint`, 'endpoint', ctx);
  checkAuthUrl(raw.issuer, `${at}/issuer`, 'issuer', ctx);
  const clientSecret = resolveSecret(raw.clientSecret, `${at}/clientSecret`, ctx);
  if (clientSecret === undefined) return undefined;
  // It travels in an Authorization header (client_secret_basic).
  if (/[^\t\x20-\x7e\x80-\xff]/.test(clientSecret.reveal())) {
    report(
      ctx,
      `${at}/clientSecret`,
      `the secret from ${clientSecret.source} contains line breaks or control characters`,
    );
  }
  return {
    endpoint: raw.endpoint,
    issuer: raw.issuer,
    clientId: raw.clientId,
    clientSecret,
    cacheSeconds: raw.cacheSeconds ?? d.cacheSeconds,
    cacheMaxEntries: raw.cacheMaxEntries ?? d.cacheMaxEntries,
  };
}

/**
 * `auth.builtin`. Everything the authorization server would refuse at start is reported here, with the file
 * line: key material (never quoted), lifetimes, the IdP, machine clients and the store.
 */
function normaliseBuiltin(
  raw: RawBuiltin,
  resource: string,
  scopesSupported: readonly string[],
  ctx: Ctx,
): BuiltinAsConfig {
  const at = '/auth/builtin';
  const d = CONFIG_DEFAULTS.builtin;

  // RFC 8414 §2: compared exactly by clients, so it must be written as URL parsers normalise it.
  let issuer = '';
  let issuerUrl: URL | undefined;
  if (raw.issuer !== undefined) {
    issuerUrl = checkAuthUrl(raw.issuer, `${at}/issuer`, 'issuer', ctx);
    if (issuerUrl !== undefined) {
      const canonical = `${issuerUrl.origin}${issuerUrl.pathname.replace(/\/+$/, '')}`;
      if (canonical !== raw.issuer)
        report(
          ctx,
          `${at}/issuer`,
          `must be written exactly as "${canonical}" (lower-case scheme and host, no default port, no trailing "/")`,
        );
    }
    issuer = raw.issuer;
  } else if (resource !== '') {
    // Checked against the listener in checkAuthAgainstHost (https unless loopback).
    issuerUrl = new URL(resource);
    issuer = issuerUrl.origin;
  }

  const signingKeys: SecretValue[] = [];
  const kids = new Map<string, number>();
  raw.signingKeys.forEach((ref, i) => {
    const pointer = `${at}/signingKeys/${i}`;
    const key = resolveSecret(ref, pointer, ctx);
    if (key === undefined) return;
    const kid = checkSigningJwk(key, pointer, ctx);
    if (kid !== undefined) {
      const first = kids.get(kid);
      if (first !== undefined)
        report(
          ctx,
          pointer,
          `has the same key id as ${at}/signingKeys/${first}; every signing key needs its own "kid" (and key)`,
        );
      else kids.set(kid, i);
    }
    signingKeys.push(key);
  });

  const registrationRaw = raw.registration ?? {};
  const initialAccessToken =
    registrationRaw.initialAccessToken === undefined
      ? undefined
      : resolveSecret(registrationRaw.initialAccessToken, `${at}/registration/initialAccessToken`, ctx);
  if (initialAccessToken !== undefined) {
    const token = initialAccessToken.reveal();
    // It is compared with a Bearer header: header-safe, and long enough not to be guessed.
    if (token.length < 16)
      report(
        ctx,
        `${at}/registration/initialAccessToken`,
        `the secret from ${initialAccessToken.source} is shorter than 16 characters`,
      );
    else if (!/^[\x21-\x7e]+$/.test(token))
      report(
        ctx,
        `${at}/registration/initialAccessToken`,
        `the secret from ${initialAccessToken.source} must be printable ASCII without spaces (it is sent as a Bearer token)`,
      );
  }

  const idpUrl = checkAuthUrl(raw.idp.issuer, `${at}/idp/issuer`, 'issuer', ctx);
  // Plain http to a loopback IdP is for a gateway that is itself a plain-http loopback development setup.
  const localDevelopment =
    issuerUrl !== undefined &&
    issuerUrl.protocol === 'http:' &&
    isLoopbackHost(issuerUrl.hostname.replace(/^\[|\]$/g, ''));
  if (idpUrl !== undefined && idpUrl.protocol === 'http:' && !localDevelopment) {
    report(
      ctx,
      `${at}/idp/issuer`,
      'must use https: (a plain-http IdP on a loopback host is accepted only while auth.builtin.issuer is plain http on loopback too, for local development)',
    );
  }
  const idpSecret =
    raw.idp.clientSecret === undefined ? undefined : resolveSecret(raw.idp.clientSecret, `${at}/idp/clientSecret`, ctx);
  if (idpSecret !== undefined && /[^\t\x20-\x7e\x80-\xff]/.test(idpSecret.reveal())) {
    report(
      ctx,
      `${at}/idp/clientSecret`,
      `the secret from ${idpSecret.source} contains line breaks or control characters`,
    );
  }
  const idpScopes = raw.idp.scopes ?? CONFIG_DEFAULTS.builtinIdp.scopes;
  if (!idpScopes.includes('openid'))
    report(ctx, `${at}/idp/scopes`, 'must include "openid" (the login is OpenID Connect)');

  const scopeMapping = raw.scopeMapping ?? d.scopeMapping;
  scopeMapping.forEach((m, i) =>
    m.scopes.forEach((scope, j) => {
      // Clients may only request advertised scopes, so an unadvertised one could never be granted.
      if (!scopesSupported.includes(scope))
        report(
          ctx,
          `${at}/scopeMapping/${i}/scopes/${j}`,
          `scope "${scope}" is missing from auth.scopesSupported, so no client could ever request it`,
        );
    }),
  );

  const clientIds = new Map<string, number>();
  const clients = (raw.clients ?? d.clients).map((c, i) => {
    const pointer = `${at}/clients/${i}`;
    const first = clientIds.get(c.clientId);
    if (first !== undefined)
      report(ctx, `${pointer}/clientId`, `duplicate clientId "${c.clientId}" (also used by ${at}/clients/${first})`);
    else clientIds.set(c.clientId, i);
    // URL-shaped ids are client ID metadata documents; a pre-registered client must not look like one.
    if (/^[a-z][a-z0-9+.-]*:/i.test(c.clientId))
      report(ctx, `${pointer}/clientId`, 'must not be URL-shaped (such client ids name client ID metadata documents)');
    const jwksFile = c.jwksFile === undefined ? undefined : path.resolve(ctx.secrets.baseDir, c.jwksFile);
    if (jwksFile !== undefined) checkJwksFile(jwksFile, `${pointer}/jwksFile`, ctx);
    return {
      clientId: c.clientId,
      auth: c.auth,
      ...(jwksFile !== undefined ? { jwksFile } : {}),
      ...(c.tlsSubject !== undefined ? { tlsSubject: c.tlsSubject } : {}),
      scopes: c.scopes,
    };
  });

  return {
    issuer,
    signingKeys,
    accessTokenTtlSeconds: raw.accessTokenTtlSeconds ?? d.accessTokenTtlSeconds,
    refreshTokenTtlSeconds: raw.refreshTokenTtlSeconds ?? d.refreshTokenTtlSeconds,
    codeTtlSeconds: raw.codeTtlSeconds ?? d.codeTtlSeconds,
    registration: {
      enabled: registrationRaw.enabled ?? CONFIG_DEFAULTS.builtinRegistration.enabled,
      ...(initialAccessToken !== undefined ? { initialAccessToken } : {}),
    },
    clientIdMetadataDocuments: raw.clientIdMetadataDocuments ?? d.clientIdMetadataDocuments,
    idp: {
      issuer: raw.idp.issuer,
      clientId: raw.idp.clientId,
      ...(idpSecret !== undefined ? { clientSecret: idpSecret } : {}),
      scopes: idpScopes,
    },
    scopeMapping,
    clients,
    store: normaliseStore(raw.store, `${at}/store`, ctx),
  };
}

function normaliseStore(raw: RawBuiltin['store'], pointer: string, ctx: Ctx): BuiltinAsConfig['store'] {
  if (raw === undefined || raw.kind === 'memory') return CONFIG_DEFAULTS.builtin.store;
  const keyPrefix = raw.keyPrefix ?? CONFIG_DEFAULTS.builtinStore.keyPrefix;
  const rawUrl = raw.url ?? '';
  if (typeof rawUrl === 'string') {
    // A password belongs in a secret reference; a redis URL without one may stay inline.
    if (credentialKind(rawUrl) !== undefined || /^[a-z]+:\/\/[^/@]*@/i.test(rawUrl)) {
      report(ctx, `${pointer}/url`, `${INLINE_SECRET_MESSAGE} (the URL carries credentials)`);
    } else checkRedisUrl(rawUrl, `${pointer}/url`, undefined, (p, m) => report(ctx, p, m));
    return { kind: 'redis', url: rawUrl, keyPrefix };
  }
  const url = resolveSecret(rawUrl, `${pointer}/url`, ctx);
  if (url !== undefined)
    checkRedisUrl(url.reveal(), `${pointer}/url/${'fromEnv' in rawUrl ? 'fromEnv' : 'fromFile'}`, url.source, (p, m) =>
      report(ctx, p, m),
    );
  return { kind: 'redis', url: url ?? '', keyPrefix };
}

/**
 * A signing key: a private JWK the built-in AS can sign with — EC P-256 (ES256) or RSA ≥ 2048 bits (RS256,
 * PS256), the same rules as src/auth/as/keys.ts. Returns its key id (`kid`, else the RFC 7638 thumbprint).
 * Messages name the secret's source, never any of its content.
 */
function checkSigningJwk(key: SecretValue, pointer: string, ctx: Ctx): string | undefined {
  const at = `${pointer}/${key.source.startsWith('env:') ? 'fromEnv' : 'fromFile'}`;
  const bad = (why: string): undefined => {
    report(ctx, at, `the secret from ${key.source} ${why}`);
    return undefined;
  };
  let jwk: unknown;
  try {
    jwk = JSON.parse(key.reveal());
  } catch {
    const hint = /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.reveal())
      ? ' (it holds a PEM key; convert it to a JWK)'
      : '';
    return bad(`is not a JSON Web Key (a JSON object)${hint}`);
  }
  if (!isRecord(jwk) || typeof jwk.kty !== 'string') return bad('is not a JSON Web Key (a JSON object with "kty")');
  if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || jwk.kid === ''))
    return bad('has a "kid" that is not a non-empty string');
  if (jwk.kty === 'EC') {
    if (jwk.crv !== 'P-256')
      return bad('is an EC key on another curve than P-256 (ES256 is the only EC algorithm supported)');
    if (jwk.alg !== undefined && jwk.alg !== 'ES256') return bad('names an "alg" other than ES256 for a P-256 key');
  } else if (jwk.kty === 'RSA') {
    if (typeof jwk.n !== 'string' || Buffer.from(jwk.n, 'base64url').length * 8 < 2048)
      return bad('is an RSA key shorter than 2048 bits');
    if (jwk.alg !== undefined && jwk.alg !== 'RS256' && jwk.alg !== 'PS256')
      return bad('names an "alg" other than RS256 or PS256 for an RSA key');
  } else {
    return bad('is not an EC P-256 or RSA key (the only kinds the built-in authorization server signs with)');
  }
  if (typeof jwk.d !== 'string') return bad('is a public key; the signing key must be the private JWK (with "d")');
  // The public members of the JWK are what /jwks publishes (keys.ts): a "d" that does not belong to them would sign
  // tokens nobody can verify. Node imports such a pair without complaint, so sign once and verify with the public half.
  const publicMembers =
    jwk.kty === 'EC' ? { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } : { kty: jwk.kty, n: jwk.n, e: jwk.e };
  let matches: boolean;
  try {
    const probe = Buffer.from('gatehouse signing key check');
    const signature = sign('sha256', probe, createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' }));
    matches = verify('sha256', probe, createPublicKey({ key: publicMembers as JsonWebKey, format: 'jwk' }), signature);
  } catch {
    return bad('is not a valid private key');
  }
  if (!matches) return bad('is not a valid private key (its private and public members do not belong together)');
  if (typeof jwk.kid === 'string') return jwk.kid;
  // RFC 7638: SHA-256 over the required public members in lexicographic order, as keys.ts computes the default kid.
  const members =
    jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { e: jwk.e, kty: jwk.kty, n: jwk.n };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

function normaliseDev(raw: NonNullable<RawAuth['dev']>, ctx: Ctx): DevAuthConfig {
  const d = CONFIG_DEFAULTS.devAuth;
  // The key file need not exist: `gatehouse start` or `gatehouse token` creates it.
  const keyFile = path.resolve(ctx.secrets.baseDir, raw.keyFile ?? d.keyFile);
  if (isDirectory(keyFile)) report(ctx, '/auth/dev/keyFile', `${keyFile} is a folder; name the key file inside it`);
  return { keyFile, issuer: raw.issuer ?? d.issuer };
}

/**
 * A URL under `auth`. `issuer`: RFC 8414 identifier (no query, no fragment); `endpoint`: something fetched
 * (JWKS, introspection); both need https except on loopback hosts (local test servers). `resource`: the
 * gateway's own URL, http allowed (TLS may end at a proxy). Returns the parsed URL when it is acceptable.
 */
function checkAuthUrl(
  raw: string,
  pointer: string,
  kind: 'issuer' | 'endpoint' | 'resource',
  ctx: Ctx,
): URL | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    report(ctx, pointer, 'is not a valid URL');
    return undefined;
  }
  const before = ctx.problems.length;
  if (url.username !== '' || url.password !== '') report(ctx, pointer, 'must not contain user:password@');
  if (raw.includes('#')) report(ctx, pointer, 'must not contain a #fragment');
  if (kind === 'issuer' && raw.includes('?'))
    report(ctx, pointer, 'must not contain a ?query (issuer identifiers have none, RFC 8414)');
  if (kind === 'endpoint') {
    for (const [name, value] of url.searchParams) {
      const problem = inlineSecretProblem('query parameter', name, value);
      if (problem !== undefined) report(ctx, pointer, problem);
    }
  }
  if (kind !== 'resource' && url.protocol !== 'https:' && !isLoopbackHost(url.hostname.replace(/^\[|\]$/g, ''))) {
    report(
      ctx,
      pointer,
      'must use https: (http: is accepted only for loopback hosts such as 127.0.0.1, [::1] or localhost)',
    );
  }
  return ctx.problems.length === before ? url : undefined;
}

/** Reads a file that must exist; reports why not. Never quotes the content. */
function readSmallFile(file: string, maxBytes: number, pointer: string, ctx: Ctx): string | undefined {
  try {
    const stat = fs.statSync(file);
    if (stat.isDirectory()) {
      report(ctx, pointer, `${file} is a folder, not a file`);
      return undefined;
    }
    if (stat.size > maxBytes) {
      report(ctx, pointer, `file ${file} is larger than ${withUnit('Bytes', maxBytes)}`);
      return undefined;
    }
    // Certificates, CAs and JWKS are trust anchors: whoever may change them chooses whom the gateway trusts.
    for (const message of fileExposure(file, 'file')) report(ctx, pointer, message);
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const why = describeFsError(err);
    report(
      ctx,
      pointer,
      why === 'no such file' ? `file ${file} does not exist` : `file ${file} cannot be read (${why})`,
    );
    return undefined;
  }
}

function normaliseCatalogue(raw: NonNullable<RawConfig['catalogue']>): CatalogueConfig {
  return { ...CONFIG_DEFAULTS.catalogue, ...raw };
}

function normaliseLogging(raw: NonNullable<RawConfig['logging']>): LoggingConfig {
  return { ...CONFIG_DEFAULTS.logging, ...raw };
}

/** `policy.dir` is resolved against the config folder and must be a folder; `gatehouse check` and start compile it. */
function normalisePolicy(raw: NonNullable<RawConfig['policy']>, ctx: Ctx): PolicyConfig {
  const dir = path.resolve(ctx.secrets.baseDir, raw.dir);
  if (!isDirectory(dir)) report(ctx, '/policy/dir', `folder ${dir} does not exist`);
  return { dir };
}

/**
 * `pinning`: the mode (default off) and the lock, resolved against the config folder (default
 * `<policy.dir>/tools.lock`). A mode other than off, here or on an upstream, needs a lock to compare with.
 * The lock itself is read when the gateway starts (a missing or broken lock stops it there).
 */
function normalisePinning(raw: RawConfig, policy: PolicyConfig | undefined, ctx: Ctx): PinningConfig {
  const r = raw.pinning ?? {};
  const mode = r.mode ?? CONFIG_DEFAULTS.pinning.mode;
  const lockFile =
    r.lockFile !== undefined
      ? path.resolve(ctx.secrets.baseDir, r.lockFile)
      : policy !== undefined
        ? path.join(policy.dir, 'tools.lock')
        : undefined;
  if (lockFile === undefined) {
    const upstreams = Array.isArray(raw.upstreams) ? raw.upstreams : [];
    const i = upstreams.findIndex((u) => u.pinning !== undefined && u.pinning !== 'off');
    if (mode !== 'off')
      report(
        ctx,
        '/pinning/mode',
        `pinning.mode "${mode}" needs pinning.lockFile (there is no policy.dir to default to)`,
      );
    else if (i >= 0)
      report(
        ctx,
        `/upstreams/${i}/pinning`,
        `pinning "${upstreams[i]!.pinning}" needs pinning.lockFile (there is no policy.dir to default to)`,
      );
  }
  return { mode, ...(lockFile !== undefined ? { lockFile } : {}) };
}

/** 127.0.0.0/8, ::1 (and IPv4-mapped 127/8), localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === 'localhost.') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) {
    // The URL parser writes IPv6 in its shortest form, so `0:0:0:0:0:0:0:1` and `::1` compare equal.
    const canonical = new URL(`http://[${h}]/`).hostname;
    return canonical === '[::1]' || canonical.startsWith('[::ffff:7f');
  }
  return false;
}

function checkAuthAgainstHost(server: ServerConfig, auth: AuthConfig, raw: RawConfig, ctx: Ctx): void {
  if (auth.mode === 'builtin') {
    checkBuiltinAgainstHost(server, auth, raw, ctx);
    return;
  }
  if (auth.mode === 'oauth') {
    // Tokens carry the URL clients connect to; "0.0.0.0" is no such URL.
    if (raw.auth?.resource === undefined && isUnspecifiedAddress(server.host)) {
      report(
        ctx,
        '/auth/resource',
        `must be set to the URL clients use to reach the gateway; it cannot be derived from server.host "${server.host}"`,
      );
    } else if (!isLoopbackHost(server.host) && server.tls === undefined && auth.resource.startsWith('http:')) {
      // OAuth 2.1 §1.5 and RFC 6750 §5.3: bearer tokens only over TLS. Clients use the resource URL, so a plain
      // http one off loopback sends every token across the network in clear text (trusted proxies change nothing).
      report(
        ctx,
        raw.auth?.resource !== undefined ? '/auth/resource' : '/server/host',
        `clients would send bearer tokens over plain HTTP to ${auth.resource} ` +
          `(server.host ${server.host} is not loopback); ` +
          'set server.tls, or, behind a TLS-terminating proxy, set auth.resource to the https URL clients use',
      );
    }
    return;
  }
  if (isLoopbackHost(server.host)) return;
  const pointer = raw.auth?.mode !== undefined ? '/auth/mode' : '/server/host';
  const fix = auth.mode === 'none' ? 'configure authentication' : 'use auth.mode "oauth"';
  report(
    ctx,
    pointer,
    `auth.mode "${auth.mode}" is only allowed on a loopback host; ${fix} to listen on ${server.host}`,
  );
}

/**
 * Mode builtin: browsers log in through the gateway, so off loopback it must be reached over https — its own
 * TLS, or a TLS-terminating proxy in front, declared with an explicit https `resource`. The default issuer
 * (the resource's origin) must then be https too, and `tls_client_auth` clients need a client certificate source.
 */
function checkBuiltinAgainstHost(server: ServerConfig, auth: AuthConfig, raw: RawConfig, ctx: Ctx): void {
  const explicitResource = raw.auth?.resource !== undefined;
  let hostProblem = false;
  if (!isLoopbackHost(server.host)) {
    if (!explicitResource && isUnspecifiedAddress(server.host)) {
      report(
        ctx,
        '/auth/resource',
        `must be set to the URL clients use to reach the gateway; it cannot be derived from server.host "${server.host}"`,
      );
      hostProblem = true;
    } else if (server.tls === undefined && !(explicitResource && auth.resource.startsWith('https:'))) {
      report(
        ctx,
        explicitResource ? '/auth/resource' : '/auth/mode',
        `auth.mode "builtin" on the non-loopback host ${server.host} needs HTTPS: set server.tls, or, behind a TLS-terminating proxy, an https auth.resource`,
      );
      hostProblem = true;
    }
  }
  const builtin = auth.builtin;
  if (builtin === undefined) return;
  if (raw.auth?.builtin?.issuer === undefined && builtin.issuer !== '' && !hostProblem) {
    const url = new URL(builtin.issuer);
    if (url.protocol !== 'https:' && !isLoopbackHost(url.hostname.replace(/^\[|\]$/g, ''))) {
      report(
        ctx,
        '/auth/resource',
        `the built-in authorization server's issuer defaults to this URL's origin (${builtin.issuer}), which must be https (http only on loopback hosts); use an https resource or set auth.builtin.issuer`,
      );
    }
  }
  if (builtin.issuer !== '') {
    // The authorization server's routes live on the same listener, under the issuer's path.
    const prefix = new URL(builtin.issuer).pathname.replace(/\/+$/, '');
    const routes = ['/authorize', '/authorize/callback', '/consent', '/token', '/revoke', '/register', '/jwks'].map(
      (r) => `${prefix}${r}`,
    );
    if (routes.includes(server.path)) {
      report(
        ctx,
        '/server/path',
        `"${server.path}" is a route of the built-in authorization server (issuer ${builtin.issuer}); choose another MCP path or issuer`,
      );
    }
  }
  const certs =
    (server.tls !== undefined && server.tls.clientCertificates !== 'none') ||
    server.forwardedClientCertHeader !== undefined;
  builtin.clients.forEach((c, i) => {
    if (c.auth === 'tls_client_auth' && !certs) {
      report(
        ctx,
        `/auth/builtin/clients/${i}/auth`,
        'tls_client_auth needs client certificates: set server.tls.clientCertificates to "request" or "require", or server.forwardedClientCertHeader behind a proxy',
      );
    }
  });
}

/** 0.0.0.0 and :: — "every interface", not an address anyone connects to. */
function isUnspecifiedAddress(host: string): boolean {
  return host === '0.0.0.0' || (net.isIPv6(host) && new URL(`http://[${host}]/`).hostname === '[::]');
}

function checkUpstreamNames(upstreams: readonly RawUpstream[], catalogue: CatalogueConfig | undefined, ctx: Ctx): void {
  const seen = new Map<string, number>();
  upstreams.forEach((u, i) => {
    if (!isRecord(u) || typeof u.name !== 'string') return;
    const pointer = `/upstreams/${i}/name`;
    const first = seen.get(u.name);
    if (first === undefined) seen.set(u.name, i);
    else {
      const firstLine = ctx.src.line(`/upstreams/${first}/name`);
      report(
        ctx,
        pointer,
        `duplicate upstream name "${u.name}" (also used by /upstreams/${first}${firstLine === undefined ? '' : ` at line ${firstLine}`})`,
      );
    }
    // Exposed names are split on the first separator, so it must never occur inside an upstream name.
    if (catalogue !== undefined && u.name.includes(catalogue.separator)) {
      report(
        ctx,
        pointer,
        `upstream name "${u.name}" contains the catalogue separator "${catalogue.separator}"; rename it or choose another catalogue.separator`,
      );
    }
  });
}

function normaliseUpstream(u: RawUpstream, pointer: string, ctx: Ctx): UpstreamConfig | undefined {
  const d = CONFIG_DEFAULTS.upstream;
  const timeoutMs = u.timeoutMs ?? d.timeoutMs;
  const maxTotalTimeoutMs = u.maxTotalTimeoutMs ?? Math.max(d.maxTotalTimeoutMs, timeoutMs);
  if (maxTotalTimeoutMs < timeoutMs) {
    report(
      ctx,
      `${pointer}/maxTotalTimeoutMs`,
      `must be at least timeoutMs (${timeoutMs}${u.timeoutMs === undefined ? ', the default' : ''})`,
    );
  }
  const restart = { ...d.restart, ...u.restart };
  if (restart.initialDelayMs > restart.maxDelayMs) {
    const at =
      u.restart?.maxDelayMs !== undefined ? `${pointer}/restart/maxDelayMs` : `${pointer}/restart/initialDelayMs`;
    report(
      ctx,
      at,
      `restart.maxDelayMs (${restart.maxDelayMs}) must be at least restart.initialDelayMs (${restart.initialDelayMs})`,
    );
  }
  const common = {
    required: u.required ?? d.required,
    timeoutMs,
    maxTotalTimeoutMs,
    maxMessageBytes: u.maxMessageBytes ?? d.maxMessageBytes,
    expose: { ...d.expose, ...u.expose },
    mode: u.mode ?? d.mode,
    restart,
    ...(u.pinning !== undefined ? { pinning: u.pinning } : {}),
    ...normaliseResilience(u, pointer, ctx),
  };

  if (u.transport === 'stdio') {
    const cwd = path.resolve(ctx.secrets.baseDir, u.cwd ?? d.cwd);
    if (!isDirectory(cwd)) report(ctx, `${pointer}/cwd`, `folder ${cwd} does not exist`);
    const config: StdioUpstreamConfig = {
      name: u.name,
      transport: 'stdio',
      ...common,
      command: u.command ?? '',
      args: u.args ?? d.args,
      cwd,
      envAllow: u.envAllow ?? d.envAllow,
      env: resolveValues(u.env ?? {}, `${pointer}/env`, 'variable', ctx),
      shutdownGraceMs: u.shutdownGraceMs ?? d.shutdownGraceMs,
    };
    return config;
  }

  checkUrl(u.url ?? '', `${pointer}/url`, ctx);
  const headers = resolveValues(u.headers ?? {}, `${pointer}/headers`, 'header', ctx);
  checkHeaders(headers, `${pointer}/headers`, ctx);
  const config: HttpUpstreamConfig = { name: u.name, transport: u.transport, ...common, url: u.url ?? '', headers };
  return config;
}

/** The resilience keys of an upstream (README "Upstream resilience"), with the checks the schema cannot express. */
function normaliseResilience(u: RawUpstream, pointer: string, ctx: Ctx): UpstreamResilienceConfig {
  const d = CONFIG_DEFAULTS.upstream;
  const config: UpstreamResilienceConfig = {
    maxInFlight: u.maxInFlight ?? d.maxInFlight,
    maxQueued: u.maxQueued ?? d.maxQueued,
    queueTimeoutMs: u.queueTimeoutMs ?? d.queueTimeoutMs,
    breaker: { ...d.breaker, ...u.breaker },
    retry: { ...d.retry, ...u.retry },
  };
  if (!Number.isInteger(config.maxQueued) || config.maxQueued < 0)
    report(ctx, `${pointer}/maxQueued`, 'must be an integer of at least 0');
  if (!Number.isInteger(config.maxInFlight) || config.maxInFlight < 1)
    report(ctx, `${pointer}/maxInFlight`, 'must be an integer of at least 1');
  // Tool globs name tools only a retry may repeat: a catch-all would retry every write after a dropped connection.
  config.retry.tools.forEach((glob, i) => {
    if (/^[*?]*$/.test(glob))
      report(
        ctx,
        `${pointer}/retry/tools/${i}`,
        `"${glob}" would mark every tool idempotent; list the read-only tools by name or prefix`,
      );
  });
  if (config.retry.tools.length > 0 && config.retry.attempts < 2) {
    const at = u.retry?.attempts === undefined ? `${pointer}/retry` : `${pointer}/retry/attempts`;
    report(
      ctx,
      at,
      `retry.attempts is ${config.retry.attempts}${u.retry?.attempts === undefined ? ' (the default)' : ''}, so retry.tools would never be retried; set it to at least 2`,
      u.retry?.attempts === undefined ? 'key' : 'value',
    );
  }
  return config;
}

/** `out[name] = value` would treat a key named `__proto__` as the prototype; YAML keys are data. */
function setOwn(out: Record<string, ValueOrSecret>, name: string, value: ValueOrSecret): void {
  Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function checkUrl(raw: string, pointer: string, ctx: Ctx): void {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    report(ctx, pointer, 'is not a valid URL');
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') report(ctx, pointer, 'must use http: or https:');
  // Credentials in a URL end up in logs and proxies; they belong in headers, as references.
  if (url.username !== '' || url.password !== '') {
    report(
      ctx,
      pointer,
      'must not contain user:password@; send credentials in headers with { fromEnv: NAME } or { fromFile: PATH }',
    );
  }
  if (raw.includes('#')) report(ctx, pointer, 'must not contain a #fragment');
  for (const [name, value] of url.searchParams) {
    const problem = inlineSecretProblem('query parameter', name, value);
    if (problem !== undefined) report(ctx, pointer, `${problem}; send it in a header instead`);
  }
}

/** Headers the gateway (or HTTP itself) owns: configuring them would break framing or MCP sessions. */
const MANAGED_HEADERS = new Set([
  'host',
  'connection',
  'content-length',
  'content-type',
  'transfer-encoding',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'proxy-connection',
  'accept',
  'mcp-session-id',
  'mcp-protocol-version',
  'last-event-id',
]);

function checkHeaders(headers: Readonly<Record<string, ValueOrSecret>>, pointer: string, ctx: Ctx): void {
  const seen = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) {
    const at = `${pointer}/${escapePointer(name)}`;
    const lower = name.toLowerCase();
    if (MANAGED_HEADERS.has(lower))
      report(ctx, at, `header "${name}" is set by the gateway and cannot be configured`, 'key');
    const other = seen.get(lower);
    if (other !== undefined)
      report(ctx, at, `header "${name}" is already set as "${other}" (header names ignore case)`, 'key');
    seen.set(lower, name);
    // Plain values were checked by the schema; a secret file may still hold a line break or binary data.
    if (isSecretValue(value) && /[^\t\x20-\x7e\x80-\xff]/.test(value.reveal())) {
      report(
        ctx,
        at,
        `the secret from ${value.source} contains characters a header value cannot hold (line breaks or control characters)`,
      );
    }
  }
}

/** Resolves a headers/env map: references become SecretValues, plain values are checked for inline credentials. */
function resolveValues(
  values: Readonly<Record<string, RawValue>>,
  pointer: string,
  kind: 'header' | 'variable',
  ctx: Ctx,
): Readonly<Record<string, ValueOrSecret>> {
  const out: Record<string, ValueOrSecret> = {};
  for (const [name, value] of Object.entries(values)) {
    const at = `${pointer}/${escapePointer(name)}`;
    if (typeof value === 'string') {
      const problem = inlineSecretProblem(kind, name, value);
      if (problem !== undefined) report(ctx, at, problem);
      setOwn(out, name, value);
      continue;
    }
    const resolved = resolveSecret(value, at, ctx);
    if (resolved !== undefined) setOwn(out, name, resolved);
  }
  return out;
}

/** Resolves one reference; a failure is reported at `…/fromEnv` or `…/fromFile`. */
function resolveSecret(ref: SecretRef, pointer: string, ctx: Ctx): SecretValue | undefined {
  const resolved = resolveSecretRef(ref, ctx.secrets);
  const at = `${pointer}/${'fromEnv' in ref ? 'fromEnv' : 'fromFile'}`;
  if (!resolved.ok) {
    report(ctx, at, resolved.message);
    return undefined;
  }
  // Secure defaults: a published demo value, a placeholder, or a file other users can read protects nothing.
  const file = 'fromFile' in ref ? path.resolve(ctx.secrets.baseDir, ref.fromFile) : undefined;
  const weak = weakSecretProblems(resolved.value, file, ctx.onLoopback);
  for (const message of weak) report(ctx, at, message);
  return weak.length === 0 ? resolved.value : undefined;
}

// ─── Small helpers ───────────────────────────────────────────────────────────────────────────────────────

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
