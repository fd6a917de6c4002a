/** The `upstreams` list: names, timeouts, resilience, stdio commands, and HTTP URLs and headers. */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { escapePointer } from '../lib/json-pointer.js';
import { CONFIG_DEFAULTS } from './defaults.js';
import { checkPemFile, checkPrivateKey } from './key-material.js';
import { isDirectory, isRecord, report, resolveSecret, type LoadContext } from './load-context.js';
import { normaliseCredentials, type RawCredentials } from './outbound-config.js';
import { inlineSecretProblem, isSecretValue, publicFileValue, type SecretRef } from './secrets.js';
import type {
  CatalogueConfig,
  HttpUpstreamConfig,
  OutputValidationMode,
  PinningConfig,
  StdioUpstreamConfig,
  UpstreamConfig,
  UpstreamMode,
  UpstreamProtocol,
  UpstreamResilienceConfig,
  UpstreamTlsConfig,
  SecretValue,
  ValueOrSecret,
} from './types.js';

type RawValue = string | SecretRef;
/** One `upstreams` entry as written (the schema has checked the shapes, and which keys each transport allows). */
export interface RawUpstream {
  name: string;
  transport: 'stdio' | 'http' | 'sse';
  url?: string;
  headers?: Record<string, RawValue>;
  credentials?: RawCredentials;
  tls?: RawUpstreamTls;
  required?: boolean;
  timeoutMs?: number;
  maxTotalTimeoutMs?: number;
  maxMessageBytes?: number;
  mode?: UpstreamMode;
  protocol?: UpstreamProtocol;
  restart?: { initialDelayMs?: number; maxDelayMs?: number };
  expose?: { tools?: boolean; resources?: boolean; prompts?: boolean };
  command?: string;
  args?: string[];
  cwd?: string;
  envAllow?: string[];
  env?: Record<string, RawValue>;
  shutdownGraceMs?: number;
  pinning?: PinningConfig['mode'];
  outputValidation?: OutputValidationMode;
  maxInFlight?: number;
  maxQueued?: number;
  queueTimeoutMs?: number;
  breaker?: { enabled?: boolean; failureThreshold?: number; openMs?: number };
  retry?: { attempts?: number; backoffMs?: number; tools?: string[] };
}

interface RawUpstreamTls {
  caFile?: string;
  caMode?: 'replace' | 'add';
  certFile?: string;
  key?: SecretRef;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  pinnedSpki?: string[];
}

export function checkUpstreamNames(
  upstreams: readonly RawUpstream[],
  catalogue: CatalogueConfig | undefined,
  ctx: LoadContext,
): void {
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

export function normaliseUpstream(u: RawUpstream, pointer: string, ctx: LoadContext): UpstreamConfig | undefined {
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
    protocol: u.protocol ?? d.protocol,
    restart,
    ...(u.pinning !== undefined ? { pinning: u.pinning } : {}),
    outputValidation: u.outputValidation ?? d.outputValidation,
    ...normaliseResilience(u, pointer, ctx),
  };

  const credentials =
    u.credentials === undefined
      ? undefined
      : normaliseCredentials(u.credentials, u.transport, `${pointer}/credentials`, ctx, u.url ?? '');
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

  // The HTTP+SSE transport (2024-11-05) predates the stateless generation, which is Streamable HTTP or stdio only.
  if (u.transport === 'sse' && u.protocol === '2026-07-28')
    report(ctx, `${pointer}/protocol`, 'the sse transport cannot speak 2026-07-28; use transport http');
  checkUrl(u.url ?? '', `${pointer}/url`, ctx);
  const headers = resolveValues(u.headers ?? {}, `${pointer}/headers`, 'header', ctx);
  checkHeaders(headers, `${pointer}/headers`, ctx);
  const tls = u.tls === undefined ? undefined : normaliseUpstreamTls(u.tls, u.url ?? '', `${pointer}/tls`, ctx);
  const config: HttpUpstreamConfig = {
    name: u.name,
    transport: u.transport,
    ...common,
    url: u.url ?? '',
    headers,
    ...(credentials !== undefined ? { credentials } : {}),
    ...(tls !== undefined ? { tls } : {}),
  };
  return config;
}

/** An SPKI pin: base64 of a SHA-256 digest (RFC 7469 §2.4 pin-sha256). */
const SPKI_PIN = /^[A-Za-z0-9+/]{43}=$/;

/**
 * `upstreams[].tls` (docs/configuration.md "Upstream TLS"): only for an https URL; the CA bundle and the client
 * certificate must be PEM certificates, the key a PEM private key that matches the certificate, the pins SHA-256.
 */
function normaliseUpstreamTls(
  raw: RawUpstreamTls,
  url: string,
  pointer: string,
  ctx: LoadContext,
): UpstreamTlsConfig | undefined {
  const before = ctx.problems.length;
  if (!url.startsWith('https:'))
    report(ctx, pointer, 'is for an https upstream; this url is not https (TLS settings would never be used)', 'key');
  const file = (f: string | undefined, key: string, what: string): string | undefined => {
    if (f === undefined) return undefined;
    const abs = path.resolve(ctx.secrets.baseDir, f);
    checkPemFile(abs, `${pointer}/${key}`, what, ctx);
    return abs;
  };
  const caFile = file(raw.caFile, 'caFile', 'a CA certificate bundle');
  const certFile = file(raw.certFile, 'certFile', 'the client certificate');
  const key = raw.key === undefined ? undefined : resolveSecret(raw.key, `${pointer}/key`, ctx);
  if ((certFile === undefined) !== (raw.key === undefined))
    report(ctx, pointer, 'certFile and key go together: both for mTLS to the upstream, or neither', 'key');
  if (key !== undefined) checkPrivateKey(key, `${pointer}/key`, ctx);
  if (certFile !== undefined && key !== undefined && ctx.problems.length === before)
    checkKeyMatches(certFile, key, `${pointer}/key`, ctx);
  if (raw.caMode === 'add' && caFile === undefined)
    report(ctx, `${pointer}/caMode`, '"add" adds caFile to the public roots; set caFile', 'value');
  const pinnedSpki = raw.pinnedSpki ?? [];
  pinnedSpki.forEach((pin, i) => {
    if (!SPKI_PIN.test(pin))
      report(ctx, `${pointer}/pinnedSpki/${i}`, 'is not a base64 SHA-256 digest (44 characters ending in =)', 'value');
  });
  if (ctx.problems.length > before) return undefined;
  // Read once more, now that they are known good: held live so that a changed file takes effect (secret-rotation.ts).
  const live = (f: string | undefined): SecretValue | undefined =>
    f === undefined ? undefined : publicFileValue(f, fs.readFileSync(f, 'utf8'));
  const ca = live(caFile);
  const cert = live(certFile);
  return {
    ...(caFile !== undefined ? { caFile } : {}),
    ...(ca !== undefined ? { ca } : {}),
    caMode: raw.caMode ?? 'replace',
    ...(certFile !== undefined ? { certFile } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    minVersion: raw.minVersion ?? 'TLSv1.2',
    pinnedSpki,
  };
}

/** The client key must be the certificate's: a mismatch fails every handshake, so it is said at load. */
function checkKeyMatches(certFile: string, key: SecretValue, pointer: string, ctx: LoadContext): void {
  try {
    const cert = new X509Certificate(fs.readFileSync(certFile));
    if (!cert.checkPrivateKey(createPrivateKey(key.reveal())))
      report(ctx, pointer, `the key from ${key.source} does not belong to the certificate in ${certFile}`);
  } catch {
    report(ctx, pointer, `the certificate in ${certFile} cannot be read as X.509`);
  }
}

/** The resilience keys of an upstream (docs/configuration.md "Upstream resilience"), with the checks the schema cannot express. */
function normaliseResilience(u: RawUpstream, pointer: string, ctx: LoadContext): UpstreamResilienceConfig {
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

function checkUrl(raw: string, pointer: string, ctx: LoadContext): void {
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
  'mcp-method',
  'mcp-name',
  'last-event-id',
]);

function checkHeaders(headers: Readonly<Record<string, ValueOrSecret>>, pointer: string, ctx: LoadContext): void {
  const seen = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) {
    const at = `${pointer}/${escapePointer(name)}`;
    const lower = name.toLowerCase();
    // Mcp-Param-* too: the gateway mirrors them from each call's arguments (MCP 2026-07-28 streamable-http).
    if (MANAGED_HEADERS.has(lower) || lower.startsWith('mcp-param-'))
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
  ctx: LoadContext,
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

/** `out[name] = value` would treat a key named `__proto__` as the prototype; YAML keys are data. */
function setOwn(out: Record<string, ValueOrSecret>, name: string, value: ValueOrSecret): void {
  Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
}
