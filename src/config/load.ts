/**
 * Loads `gatehouse.yaml`: read → YAML parse → JSON Schema check → checks the schema cannot express → resolve
 * secret references → fill defaults → deep-freeze (docs/style.md habit 5). Every problem found is collected and
 * thrown together as one `ConfigError`, each naming file, line, path and what is wrong, so one run of
 * `gatehouse check` shows everything to fix. Messages never quote a secret or a value that looks like one.
 * This file runs the steps; the schema check is config-schema.ts, and each section is normalised in its `*-config.ts`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, type ConfigProblem } from '../errors/config-error.js';
import { deepFreeze } from '../lib/deep-freeze.js';
import { isLoopbackHost } from './addresses.js';
import { normaliseAudit, type RawAudit } from './audit-config.js';
import { normaliseAuth, type RawAuth } from './auth-config.js';
import { checkAuthAgainstHost, checkAuthNeedsPolicy } from './auth-cross-checks.js';
import { schemaProblems } from './config-schema.js';
import { CONFIG_DEFAULTS } from './defaults.js';
import { fileExposure } from './file-exposure.js';
import { normaliseCache, type RawCache } from './cache-config.js';
import { normaliseLimits, normaliseRedis, type RawLimits, type RawRedis } from './limits-config.js';
import { isRecord, sectionContext, type LoadContext } from './load-context.js';
import { normalisePinning, normalisePolicy, type RawPinning, type RawPolicy } from './policy-config.js';
import { normaliseServer, type RawServer } from './server-config.js';
import { normaliseSessions, type RawSessions } from './sessions-config.js';
import { normaliseOutbound, type RawOutbound } from './outbound-oauth-config.js';
import { normaliseTelemetry, type RawTelemetry } from './telemetry-config.js';
import type { CatalogueConfig, GatehouseConfig, LoggingConfig, UpstreamConfig } from './types.js';
import { checkUpstreamNames, normaliseUpstream, type RawUpstream } from './upstreams-config.js';
import { YamlSource } from './yaml-source.js';

export interface LoadOptions {
  /** Where `{ fromEnv }` references are read. Default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** Folder that relative paths (`cwd`, `fromFile`) resolve against. Default: the config file's folder. */
  readonly baseDir?: string;
}

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
  const ctx: LoadContext = { src, problems, secrets: { env: opts.env ?? process.env, baseDir }, onLoopback };

  const server = isClean('/server') ? normaliseServer(raw.server ?? {}, ctx) : undefined;
  // Auth is checked even when the server section is broken (its secrets and URLs have their own problems);
  // only the checks against the host and the derived `resource` need a server.
  const auth = isClean('/auth') ? normaliseAuth(raw.auth ?? {}, server, ctx) : undefined;
  const catalogue = isClean('/catalogue') ? normaliseCatalogue(raw.catalogue ?? {}) : undefined;
  const logging = isClean('/logging') ? normaliseLogging(raw.logging ?? {}) : undefined;
  const policy = raw.policy !== undefined && isClean('/policy') ? normalisePolicy(raw.policy, ctx) : undefined;
  const pinning = isClean('/pinning') ? normalisePinning(raw, policy, ctx) : undefined;
  const sections = sectionContext(ctx);
  const audit = isClean('/audit') ? normaliseAudit(raw.audit ?? {}, { ...sections, baseDir }) : undefined;
  const telemetry = isClean('/telemetry')
    ? normaliseTelemetry(raw.telemetry ?? {}, server, sections.report)
    : undefined;
  const sessions = isClean('/sessions')
    ? normaliseSessions(raw.sessions ?? {}, {
        ...sections,
        hasRedis: raw.redis !== undefined,
        idleTimeoutMs: server?.sessionIdleTimeoutMs ?? CONFIG_DEFAULTS.server.sessionIdleTimeoutMs,
      })
    : undefined;
  const redis = raw.redis !== undefined && isClean('/redis') ? normaliseRedis(raw.redis, sections) : undefined;
  const limits = isClean('/limits') ? normaliseLimits(raw.limits ?? {}, raw.redis !== undefined, sections) : undefined;
  const cache = isClean('/cache')
    ? normaliseCache(raw.cache ?? {}, raw.redis !== undefined, sections.report)
    : undefined;
  if (server !== undefined && auth !== undefined) checkAuthAgainstHost(server, auth, raw.auth ?? {}, ctx);
  if (auth !== undefined) checkAuthNeedsPolicy(auth, raw.policy !== undefined, ctx);

  const upstreams: UpstreamConfig[] = [];
  if (Array.isArray(raw.upstreams)) {
    checkUpstreamNames(raw.upstreams, catalogue, ctx);
    raw.upstreams.forEach((u, i) => {
      if (!isClean(`/upstreams/${i}`)) return;
      const normalised = normaliseUpstream(u, `/upstreams/${i}`, ctx);
      if (normalised !== undefined) upstreams.push(normalised);
    });
  }

  const outbound = isClean('/outbound')
    ? normaliseOutbound(raw.outbound ?? {}, ctx, {
        hasRedis: raw.redis !== undefined,
        usesOAuth: upstreams.some((u) => u.transport !== 'stdio' && u.credentials?.oauth !== undefined),
      })
    : undefined;

  if (
    problems.length > 0 ||
    !outbound ||
    !server ||
    !auth ||
    !catalogue ||
    !logging ||
    !pinning ||
    !audit ||
    !telemetry ||
    !sessions ||
    !limits ||
    !cache
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
    outbound,
    ...(redis !== undefined ? { redis } : {}),
    limits,
    cache,
    upstreams,
  });
}

// ─── The raw, schema-checked shape ────────────────────────────────────────────────────────────────────────
// Only trusted after the schema passed for that section; optional everywhere the YAML may omit a key.

interface RawConfig {
  server?: RawServer;
  auth?: RawAuth;
  catalogue?: Partial<CatalogueConfig>;
  logging?: Partial<LoggingConfig>;
  policy?: RawPolicy;
  pinning?: RawPinning;
  audit?: RawAudit;
  telemetry?: RawTelemetry;
  sessions?: RawSessions;
  outbound?: RawOutbound;
  redis?: RawRedis;
  limits?: RawLimits;
  cache?: RawCache;
  upstreams?: RawUpstream[];
}

function normaliseCatalogue(raw: NonNullable<RawConfig['catalogue']>): CatalogueConfig {
  return { ...CONFIG_DEFAULTS.catalogue, ...raw };
}

function normaliseLogging(raw: NonNullable<RawConfig['logging']>): LoggingConfig {
  return { ...CONFIG_DEFAULTS.logging, ...raw };
}
