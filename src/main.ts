#!/usr/bin/env node
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { JSONWebKeySet } from 'jose';
import { pino, type Logger } from 'pino';
import { buildApp, pinningActive, redactingLogHooks, revokeUserGrants, secretRedactorFor } from './app.js';
import { DEV_TOKEN_DEFAULT_TTL_SECONDS, loadOrCreateDevKey, parseTtl } from './auth/dev-keys.js';
import { describeConfig, loadConfig } from './config/index.js';
import type { GatehouseConfig } from './config/types.js';
import { ConfigError } from './errors/config-error.js';
import { loadPolicyDir } from './policy/compile.js';
import { policyCatalogueWarnings } from './policy/catalogue-warnings.js';
import { explain, formatExplanation } from './policy/explain.js';
import { planApproval } from './policy/pinning/approve.js';
import { readToolsLock, writeToolsLock } from './policy/pinning/lock-io.js';
import { scanListings } from './policy/pinning/description-scan.js';
import { lockListings } from './policy/pinning/lock-file.js';
import {
  fixtureInput,
  fixtureRequestProblem,
  formatTestReport,
  loadPolicyFixtures,
  runPolicyFixtures,
  type FixtureRequest,
} from './policy/test-runner.js';
import { UPSTREAM_REQUEST_METHODS } from './policy/upstream-requests.js';
import type { SecretRedactor } from './lib/secret-redactor.js';
import { VERSION } from './version.js';
import { NullAuditSink } from './audit/audit-sink.js';
import { formatVerifyReport, verifyAuditFiles } from './audit/verify.js';

const USAGE = `gatehouse ${VERSION} — a security gateway for MCP servers

Usage:
  gatehouse start --config FILE        run the gateway
  gatehouse check --config FILE        validate the configuration and exit (non-zero on problems)
  gatehouse tools list --config FILE   start the upstreams, print exposed name -> upstream/tool + protocol, exit
                                       (and warnings: policy rules/fields that match no exposed tool)
  gatehouse tools approve --config FILE [--upstream NAME] [--tool NAME] [--yes] [--by NAME]
                                       start the upstreams, show what differs from tools.lock; --yes writes it
  gatehouse token --config FILE --sub NAME --scope "a b" [--client-id ID] [--ttl 10m]
                                       auth.mode dev: mint an access token (printed alone on stdout)
  gatehouse policy test [--dir DIR | --config FILE]
                                       run the policy fixtures (*.test.yaml); non-zero when one fails
  gatehouse policy explain [--dir DIR | --config FILE] --sub NAME --scope "a b" (--tool NAME | --prompt NAME | --uri URI)
                           [--upstream NAME] [--args '{"k":"v"}']
  gatehouse policy explain [--dir DIR | --config FILE] --sub NAME --scope "a b" --request METHOD --upstream NAME
                           [--mode form|url]   (a request the upstream sends the client: sampling/createMessage,
                                               elicitation/create, roots/list)
                                       show how the policy decides one request, rule by rule
  gatehouse grants revoke --config FILE --upstream NAME --sub SUBJECT
                                     revoke every per-user OAuth grant SUBJECT holds at upstream NAME (Redis grant store)
  gatehouse audit verify FILE [FILE…] [--key-env NAME | --key-file FILE]… [--json]
                                       check the hash chain of audit files (in order: rotated first);
                                       non-zero at the first edited, deleted or reordered record;
                                       repeat the key options for every HMAC key the files used
  gatehouse --version

Options:
  -c, --config FILE   path to gatehouse.yaml (default: ./gatehouse.yaml or $GATEHOUSE_CONFIG)
  --json              machine-readable output (check, tools list)
  --sub NAME          token: the subject (user or agent) the token is for
  --scope "a b"       token: space-separated scopes (repeatable)
  --client-id ID      token: the client_id claim (default gatehouse-dev)
  --ttl 10m           token: lifetime, seconds or with s/m/h/d (default 600 s, at most 24 h)
  --dir DIR           policy: the policy folder (default: policy.dir of the config)
  --yes               tools approve: write the approved definitions to the lock (without it: show only)
  --by NAME           tools approve: who approves (recorded in the lock; default $USER)
  --tool/--prompt/--uri, --upstream, --args JSON
                      policy explain: the target (upstream: default the name's prefix) and its arguments
  --request METHOD, --mode form|url
                      policy explain: a request from --upstream to the client (mode: elicitation/create only)
`;

/**
 * JSON lines on stdout, written asynchronously in 4 KiB batches: a synchronous write per record would cost a
 * syscall on every call. The buffer is flushed on exit (pino's destination flushes synchronously at exit).
 */
function makeLogger(config: GatehouseConfig, secrets: SecretRedactor): { logger: Logger; flush: () => void } {
  // maxLength: a stdout nobody reads fast enough (a slow log collector) must not grow memory without bound; a
  // line that does not fit is dropped with a `drop` event — an audit line is then counted lost (file-sink.ts).
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096, maxLength: 16 * 1024 * 1024 });
  const options = { level: config.logging.level, base: { service: 'gatehouse' }, ...redactingLogHooks(secrets) };
  const logger = pino(options, destination);
  // A quiet gateway still shows its logs within half a second.
  setInterval(() => destination.flush(), 500).unref();
  return { logger, flush: () => destination.flushSync() };
}

function load(file: string): GatehouseConfig {
  return loadConfig(file);
}

/** `auth.mode: dev`: the public half of the local signing key (created on first use), for `buildApp`. */
async function devDeps(config: GatehouseConfig, logger?: Logger): Promise<{ devJwks?: JSONWebKeySet }> {
  if (config.auth.mode !== 'dev' || config.auth.dev === undefined) return {};
  const key = await loadOrCreateDevKey(config.auth.dev.keyFile);
  logger?.info(
    { keyFile: key.file, kid: key.kid, created: key.created },
    `auth.mode dev: accepting tokens from \`gatehouse token --config ${config.file}\` (local signing key, for development only)`,
  );
  return { devJwks: key.publicJwks() };
}

async function start(file: string): Promise<number> {
  const config = load(file);
  const secrets = secretRedactorFor(config);
  const { logger, flush } = makeLogger(config, secrets);
  const app = buildApp(config, { logger, secrets, ...(await devDeps(config, logger)) });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      flush();
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    app
      .close()
      .then(() => {
        logger.info('stopped');
        flush();
        process.exit(0);
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        flush();
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // SIGHUP: reload policy.dir now (the folder is watched too); a bad file keeps the running policy.
  process.on('SIGHUP', () => {
    // Log rotation: the audit file was moved away; the next record opens a new one at audit.file (the chain goes on).
    app.auditLog?.reopen();
    if (app.reloadPolicy('SIGHUP') === undefined) logger.warn('SIGHUP: no policy.dir to reload');
  });
  let address: string;
  try {
    await app.start();
    address = await app.http.listen({ host: config.server.host, port: config.server.port });
  } catch (err) {
    // A start-up collision or a busy port: stop the upstream processes already running, or they keep this
    // process (and themselves) alive after the error is printed.
    app.auditLog?.record({
      type: 'config',
      outcome: 'error',
      detail: `start failed: ${err instanceof Error ? err.message : String(err)}`,
    });
    await app.close(0).catch(() => undefined);
    throw err;
  }
  logger.info({ address: `${address}${config.server.path}`, upstreams: app.upstreams.health() }, 'gatehouse listening');
  flush(); // supervisors and tests wait for this line
  return -1; // keep running
}

/** A listing run is not the gateway: no metrics listener (the running gateway holds its port) and no spans. */
function withoutTelemetry(config: GatehouseConfig): GatehouseConfig {
  const { telemetry: _off, ...rest } = config;
  return rest;
}

function check(file: string, json: boolean): number {
  const config = load(file);
  // The policy is compiled as at start: its problems are printed like the config's (file:line: path: problem).
  const policy = config.policy !== undefined ? loadPolicyDir(config.policy.dir) : undefined;
  // The tools lock, when pinning is on, is read as at start: a missing or broken lock is a problem here too.
  const lock =
    pinningActive(config) && config.pinning.lockFile !== undefined ? readToolsLock(config.pinning.lockFile) : undefined;
  // Approved definitions carrying instruction-like or invisible text are flagged (warnings: exit stays 0).
  const findings = lock !== undefined ? scanListings(lockListings(lock)) : [];
  for (const f of findings)
    process.stderr.write(`warning: ${f.upstream}/${f.tool} ${f.path}: ${f.kind}: ${f.excerpt}\n`);
  const policySummary =
    policy !== undefined
      ? { dir: config.policy!.dir, revision: policy.revision, files: policy.files.length, rules: policy.rules.length }
      : undefined;
  if (json)
    process.stdout.write(
      `${JSON.stringify({ ok: true, config: describeConfig(config), ...(policySummary ? { policy: policySummary } : {}) }, null, 2)}\n`,
    );
  else {
    const upstreams = `${config.upstreams.length} upstream${config.upstreams.length === 1 ? '' : 's'}: ${config.upstreams.map((u) => `${u.name} [${u.transport}]`).join(', ')}`;
    const rules = policySummary
      ? `; policy ${policySummary.revision}: ${policySummary.rules} rule${policySummary.rules === 1 ? '' : 's'} in ${policySummary.files} file${policySummary.files === 1 ? '' : 's'}`
      : '';
    process.stdout.write(`${file}: OK (${upstreams}${rules})\n`);
  }
  return 0;
}

async function toolsList(file: string, json: boolean): Promise<number> {
  const config = load(file);
  const secrets = secretRedactorFor(config);
  const logger = pino({ level: 'warn', ...redactingLogHooks(secrets) }, pino.destination(2));
  // Compiled first, as at start: a broken policy stops here with its problems, before any upstream starts.
  const policy = config.policy !== undefined ? loadPolicyDir(config.policy.dir) : undefined;
  // A listing run is not the gateway: it writes no audit records (nor a chain.start into the gateway's audit file).
  const app = buildApp(withoutTelemetry(config), {
    logger,
    secrets,
    audit: new NullAuditSink(),
    ...(await devDeps(config)),
  });
  try {
    await app.start();
    const entries = [...app.router.catalogue.tools.values()];
    const health = app.upstreams.health();
    // The protocol generation each upstream speaks (probed at start: 2026-07-28, or a 2025 version after initialize).
    const protocolOf = new Map(health.map((h) => [h.name, h.protocolVersion ?? '?']));
    const rows = entries.map((t) => ({
      exposed: t.exposed,
      upstream: t.upstream,
      tool: t.original,
      protocol: protocolOf.get(t.upstream) ?? '?',
    }));
    const down = health.filter((h) => h.state !== 'ready');
    // Warnings, not errors: policy rules that name no exposed tool, constraints on fields the tools do not have.
    const warnings =
      policy !== undefined
        ? policyCatalogueWarnings(
            policy,
            entries.map((t) => ({ exposed: t.exposed, upstream: t.upstream, inputSchema: t.definition.inputSchema })),
            { unavailable: down.map((d) => d.name), separator: config.catalogue.separator },
          )
        : [];
    if (json)
      process.stdout.write(
        `${JSON.stringify({ tools: rows, unavailable: down.map((d) => d.name), warnings }, null, 2)}\n`,
      );
    else {
      const width = Math.max(13, ...rows.map((r) => r.exposed.length));
      const target = rows.map((r) => `${r.upstream} / ${r.tool}`);
      const middle = Math.max(15, ...target.map((t) => t.length));
      process.stdout.write(`${'EXPOSED NAME'.padEnd(width)}  ${'UPSTREAM / TOOL'.padEnd(middle)}  PROTOCOL\n`);
      rows.forEach((r, i) =>
        process.stdout.write(`${r.exposed.padEnd(width)}  ${target[i]!.padEnd(middle)}  ${r.protocol}\n`),
      );
      for (const d of down) process.stdout.write(`(upstream ${d.name} is ${d.state}: its tools are not listed)\n`);
      if (warnings.length > 0) {
        process.stdout.write('warnings:\n');
        for (const w of warnings) process.stdout.write(`  ${w}\n`);
      }
    }
    return down.some((d) => d.required) ? 1 : 0;
  } finally {
    await app.close(1000);
  }
}

/**
 * `gatehouse tools approve`: starts the upstreams (pinning off, so an unapproved tool is listed), compares what
 * they list with the lock, prints every difference for review and, with `--yes`, writes the new lock
 * atomically. A running gateway whose lock is in its policy folder picks the new lock up (or on SIGHUP).
 */
async function toolsApprove(
  file: string,
  opts: { upstream?: string; tool?: string; yes: boolean; by?: string },
): Promise<number> {
  const config = load(file);
  const lockFile = config.pinning.lockFile;
  if (lockFile === undefined)
    throw new UsageError(`${file} has neither pinning.lockFile nor policy.dir: there is no tools.lock to write`);
  const lock = readToolsLock(lockFile, { ifMissing: 'empty' });
  const listingConfig: GatehouseConfig = {
    ...config,
    pinning: { ...config.pinning, mode: 'off' },
    upstreams: config.upstreams.map((u) => ({ ...u, pinning: 'off' as const })),
  };
  const secrets = secretRedactorFor(config);
  const logger = pino({ level: 'warn', ...redactingLogHooks(secrets) }, pino.destination(2));
  // The running gateway records the approval when it re-reads the lock (tool.pin.released); this run records nothing.
  const app = buildApp(withoutTelemetry(listingConfig), {
    logger,
    secrets,
    audit: new NullAuditSink(),
    ...(await devDeps(config)),
  });
  try {
    await app.start();
    for (const d of app.upstreams.health().filter((h) => h.state !== 'ready')) {
      process.stderr.write(`upstream ${d.name} is ${d.state}: its tools are not compared, its pins are kept\n`);
    }
    const by = opts.by ?? process.env.USER;
    const plan = planApproval({
      listings: app.router.toolListings(),
      lock,
      selection: {
        ...(opts.upstream !== undefined ? { upstream: opts.upstream } : {}),
        ...(opts.tool !== undefined ? { tool: opts.tool } : {}),
      },
      now: Date.now(),
      ...(by !== undefined && by !== '' ? { approvedBy: by } : {}),
    });
    process.stdout.write(`${plan.text}\n`);
    if (plan.problems.length > 0) {
      process.stderr.write(
        `not written: ${plan.problems.length} problem${plan.problems.length === 1 ? '' : 's'} (see above)\n`,
      );
      return 1;
    }
    if (plan.changes.length === 0) {
      process.stdout.write(`${lockFile}: up to date, nothing to approve\n`);
      return 0;
    }
    if (!opts.yes) {
      process.stdout.write(
        `not written: review the changes above, then re-run with --yes to approve them into ${lockFile}\n`,
      );
      return 0;
    }
    writeToolsLock(lockFile, plan.lock);
    process.stdout.write(
      `wrote ${lockFile}: ${plan.changes.length} change${plan.changes.length === 1 ? '' : 's'} approved${by !== undefined && by !== '' ? ` by ${by}` : ''}\n`,
    );
    return 0;
  } finally {
    await app.close(1000);
  }
}

/**
 * `gatehouse token`: mints a dev-mode access token with the same key file the gateway verifies against
 * (created on first use). Only the token goes to stdout, so `TOKEN=$(gatehouse token …)` works.
 */
async function token(
  file: string,
  opts: { sub?: string; scope: string[]; clientId?: string; ttl?: string },
): Promise<number> {
  const config = load(file);
  const { auth } = config;
  if (auth.mode !== 'dev' || auth.dev === undefined) {
    process.stderr.write(
      `gatehouse token: ${file} has auth.mode "${auth.mode}"; tokens can be minted only with auth.mode "dev" ` +
        `(set \`auth: { mode: dev, resource: <the gateway's MCP URL> }\`).` +
        `${auth.mode === 'none' ? ' With mode "none" the gateway needs no token.' : ' Get tokens from your authorization server.'}\n`,
    );
    return 1;
  }
  if (opts.sub === undefined || opts.sub === '') {
    process.stderr.write('gatehouse token: --sub NAME is required (the user or agent the token is for)\n');
    return 2;
  }
  const ttlSeconds = opts.ttl === undefined ? DEV_TOKEN_DEFAULT_TTL_SECONDS : parseTtl(opts.ttl);
  const scopes = opts.scope.flatMap((s) => s.split(/\s+/)).filter((s) => s !== '');
  const key = await loadOrCreateDevKey(auth.dev.keyFile);
  const jwt = await key.mint({
    sub: opts.sub,
    scopes,
    ...(opts.clientId !== undefined ? { clientId: opts.clientId } : {}),
    ttlSeconds,
    audience: auth.resource,
    issuer: auth.dev.issuer,
    claimNames: { scope: auth.claims.scope, clientId: auth.claims.clientId },
  });
  process.stdout.write(`${jwt}\n`);
  const expires = new Date(Date.now() + ttlSeconds * 1000).toISOString();
  process.stderr.write(
    `${key.created ? `created the dev signing key ${key.file}\n` : ''}` +
      `token for ${opts.sub} [${scopes.join(' ') || 'no scopes'}], audience ${auth.resource}, expires ${expires}\n`,
  );
  return 0;
}

/** The policy folder of `--dir`, else the config's `policy.dir`. */
function policyDirOf(dir: string | undefined, file: string): { dir: string; separator: string } {
  if (dir !== undefined) return { dir, separator: '__' };
  const config = load(file);
  if (config.policy === undefined) throw new UsageError(`${file} has no policy.dir; pass --dir DIR`);
  return { dir: config.policy.dir, separator: config.catalogue.separator };
}

/**
 * `gatehouse grants revoke`: an operator ends a user's per-user OAuth grants at one upstream (docs/authentication.md
 * "Per-user OAuth"). The running gateways find no grant on the user's next call and ask for consent again.
 */
async function grantsRevoke(file: string, upstream: string | undefined, subject: string | undefined): Promise<number> {
  if (upstream === undefined || subject === undefined || subject === '')
    throw new UsageError('grants revoke needs --upstream NAME and --sub SUBJECT');
  const config = load(file);
  const logger = pino({ level: 'warn', ...redactingLogHooks(secretRedactorFor(config)) }, pino.destination(2));
  try {
    const count = await revokeUserGrants(config, upstream, subject, logger);
    process.stdout.write(`revoked ${count} grant${count === 1 ? '' : 's'} of ${subject} at ${upstream}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 1;
  }
}

class UsageError extends Error {}

/** `gatehouse audit verify`: the hash chain of the files, in order; exit 1 at the first broken record. */
function auditVerify(
  files: string[],
  opts: { keyEnv: string[] | undefined; keyFile: string[] | undefined; json: boolean },
): number {
  if (files.length === 0)
    throw new UsageError('audit verify: name at least one audit file (rotated files first, in order)');
  // Several keys when the HMAC key rotated while the files were written: each record's `kid` picks its own.
  const keys: string[] = [];
  for (const name of opts.keyEnv ?? []) {
    const key = process.env[name];
    if (key === undefined || key === '') throw new UsageError(`audit verify: environment variable ${name} is not set`);
    keys.push(key);
  }
  for (const file of opts.keyFile ?? []) {
    // Read like a config `fromFile` secret: one trailing newline is not part of the key.
    keys.push(readFileSync(file, 'utf8').replace(/\r?\n$/, ''));
  }
  // A file that cannot be read is not a broken chain: exit 2 (like a usage error), so 1 always means tampering or damage.
  for (const f of files) {
    try {
      accessSync(f, constants.R_OK);
      if (statSync(f).isDirectory()) throw Object.assign(new Error(f), { code: 'EISDIR' });
    } catch (err) {
      throw new UsageError(`audit verify: cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  const report = verifyAuditFiles(files, { keys });
  process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatVerifyReport(report)}\n`);
  return report.ok ? 0 : 1;
}

/** `gatehouse policy test`: compiles the folder's policy, runs its fixtures, prints every result. */
function policyTest(dir: string | undefined, file: string): number {
  const where = policyDirOf(dir, file);
  const policy = loadPolicyDir(where.dir);
  const report = runPolicyFixtures(policy, loadPolicyFixtures(where.dir), { separator: where.separator });
  process.stdout.write(`${formatTestReport(report)}\n`);
  return report.failed > 0 || report.results.length === 0 ? 1 : 0;
}

/** `gatehouse policy explain`: one decision, traced through every rule. */
function policyExplain(
  dir: string | undefined,
  file: string,
  opts: {
    sub?: string;
    scope: string[];
    tool?: string;
    prompt?: string;
    uri?: string;
    request?: string;
    mode?: string;
    upstream?: string;
    args?: string;
  },
): number {
  const where = policyDirOf(dir, file);
  const named = [opts.tool, opts.prompt, opts.uri, opts.request].filter((v) => v !== undefined).length;
  if (named !== 1) throw new UsageError('policy explain: name exactly one of --tool, --prompt, --uri, --request');
  if (opts.request !== undefined && !UPSTREAM_REQUEST_METHODS.has(opts.request)) {
    throw new UsageError(`policy explain: --request must be one of ${[...UPSTREAM_REQUEST_METHODS].join(', ')}`);
  }
  if (opts.mode !== undefined && opts.mode !== 'form' && opts.mode !== 'url')
    throw new UsageError('policy explain: --mode must be form or url');
  let args: Record<string, unknown> | undefined;
  if (opts.args !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(opts.args);
    } catch {
      throw new UsageError('policy explain: --args must be a JSON object');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new UsageError('policy explain: --args must be a JSON object');
    args = parsed as Record<string, unknown>;
  }
  const policy = loadPolicyDir(where.dir);
  const scopes = opts.scope.flatMap((s) => s.split(/\s+/)).filter((s) => s !== '');
  const method =
    opts.request ??
    (opts.tool !== undefined ? 'tools/call' : opts.prompt !== undefined ? 'prompts/get' : 'resources/read');
  const request: FixtureRequest = {
    method,
    ...(opts.tool !== undefined ? { tool: opts.tool } : {}),
    ...(opts.prompt !== undefined ? { prompt: opts.prompt } : {}),
    ...(opts.uri !== undefined ? { uri: opts.uri } : {}),
    ...(opts.upstream !== undefined ? { upstream: opts.upstream } : {}),
    ...(opts.mode !== undefined ? { mode: opts.mode as 'form' | 'url' } : {}),
    ...(args !== undefined ? { args } : {}),
  };
  // The same checks as a fixture's request (e.g. a request from an upstream names the upstream).
  const problem = fixtureRequestProblem(request);
  if (problem !== undefined) throw new UsageError(`policy explain: ${problem}`);
  const input = fixtureInput(
    { principal: { ...(opts.sub !== undefined && opts.sub !== '' ? { sub: opts.sub } : {}), scopes }, request },
    { separator: where.separator, now: Date.now() },
  );
  process.stdout.write(`${formatExplanation(explain(input, policy))}\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean', default: false },
      sub: { type: 'string' },
      scope: { type: 'string', multiple: true, default: [] },
      'client-id': { type: 'string' },
      ttl: { type: 'string' },
      dir: { type: 'string' },
      tool: { type: 'string' },
      prompt: { type: 'string' },
      uri: { type: 'string' },
      upstream: { type: 'string' },
      request: { type: 'string' },
      mode: { type: 'string' },
      args: { type: 'string' },
      yes: { type: 'boolean', default: false },
      by: { type: 'string' },
      'key-env': { type: 'string', multiple: true },
      'key-file': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h', default: false },
      version: { type: 'boolean', short: 'v', default: false },
    },
  });
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const [command, sub] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  const file = values.config ?? process.env.GATEHOUSE_CONFIG ?? 'gatehouse.yaml';
  switch (command) {
    case 'start':
      return start(file);
    case 'check':
      return check(file, values.json);
    case 'tools':
      if (sub === 'list') return toolsList(file, values.json);
      if (sub === 'approve') {
        return toolsApprove(file, {
          yes: values.yes,
          ...(values.upstream !== undefined ? { upstream: values.upstream } : {}),
          ...(values.tool !== undefined ? { tool: values.tool } : {}),
          ...(values.by !== undefined ? { by: values.by } : {}),
        });
      }
      break;
    case 'token':
      return token(file, { sub: values.sub, scope: values.scope, clientId: values['client-id'], ttl: values.ttl });
    case 'grants':
      if (sub === 'revoke') return grantsRevoke(file, values.upstream, values.sub);
      break;
    case 'audit':
      if (sub === 'verify')
        return auditVerify(positionals.slice(2), {
          keyEnv: values['key-env'],
          keyFile: values['key-file'],
          json: values.json,
        });
      break;
    case 'policy':
      if (sub === 'test') return policyTest(values.dir, file);
      if (sub === 'explain') {
        return policyExplain(values.dir, file, {
          sub: values.sub,
          scope: values.scope,
          ...(values.tool !== undefined ? { tool: values.tool } : {}),
          ...(values.prompt !== undefined ? { prompt: values.prompt } : {}),
          ...(values.uri !== undefined ? { uri: values.uri } : {}),
          ...(values.request !== undefined ? { request: values.request } : {}),
          ...(values.mode !== undefined ? { mode: values.mode } : {}),
          ...(values.upstream !== undefined ? { upstream: values.upstream } : {}),
          ...(values.args !== undefined ? { args: values.args } : {}),
        });
      }
      break;
    default:
      break;
  }
  process.stderr.write(`unknown command: ${positionals.join(' ')}\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2))
  .then((code) => {
    if (code >= 0) process.exitCode = code;
  })
  .catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration invalid:\n${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`gatehouse: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`gatehouse: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
