/**
 * The targets: each a child process started (and ready), with a driver for the load generator, checks after
 * its cells, and a stop. bench/README.md's table says what each one runs.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { GatehouseProfile } from '../gatehouse-config.js';
import {
  canConnect,
  freePort,
  getStatus,
  settleDescendants,
  stderrTail,
  stopChild,
  track,
  waitFor,
} from './children.js';
import { ECHO_UPSTREAM, launchGatehouse, type GatehouseOptions } from './gatehouse.js';
import { httpDriver, StdioRpc, type Measurable } from './load.js';
import { initializeParams, openMcpSession, statelessHeaders, statelessToolCallBody } from './mcp-client.js';
import { BARE_SERVER, ECHO_SERVER, MCP_PROXY_BIN, ROOT, SUPERGATEWAY_BIN } from './paths.js';
import { descendants } from './proc.js';
import { countRedisKeys, redisUnavailable } from './redis.js';

export const ALL_TARGETS = [
  'bare',
  'direct-stdio',
  'gatehouse-bare',
  'gatehouse-full',
  'gatehouse-full-2026',
  'gatehouse-redis',
  'gatehouse-cached',
  'mcp-proxy',
  'supergateway',
] as const;
export type TargetName = (typeof ALL_TARGETS)[number];

/** The gateway processes' options, and BENCH_REQUIRE_REDIS: fail instead of skipping gatehouse-redis. */
export interface TargetOptions extends GatehouseOptions {
  requireRedis: boolean;
}

/** A started target: measure() drives it (its pid, upstreamPid and driver), then it is checked and stopped. */
export interface Running extends Measurable {
  /** Its children (upstreams), for the record. */
  descendants: { pid: number; cmd: string }[];
  notes: string[];
  /** After the cells: problems that make the numbers meaningless (e.g. the audit file stayed empty). */
  check?(): Promise<string[]>;
  stop(): Promise<void>;
}

/** Thrown by a starter when its target cannot run here (not a failure: reported as skipped). */
export class SkipTarget extends Error {}

export function starters(opts: TargetOptions): Record<TargetName, () => Promise<Running>> {
  return {
    bare: startBare,
    'direct-stdio': startDirectStdio,
    'gatehouse-bare': gatehouseStarter('bare', opts),
    'gatehouse-full': gatehouseStarter('full', opts),
    'gatehouse-full-2026': gatehouseStarter('full', opts, true),
    'gatehouse-redis': gatehouseStarter('redis', opts),
    'gatehouse-cached': gatehouseStarter('cached', opts),
    'mcp-proxy': startMcpProxy,
    supergateway: startSupergateway,
  };
}

async function startBare(): Promise<Running> {
  const child = track(spawn(process.execPath, [BARE_SERVER], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] }));
  const errTail = stderrTail(child);
  let out = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (c: string) => (out += c));
  const port = await waitFor('bare server', child, errTail, () => {
    const m = /\{"port":(\d+)\}/.exec(out);
    return m ? Number(m[1]) : undefined;
  });
  const ep = { host: '127.0.0.1', port, path: '/mcp' };
  return {
    pid: child.pid!,
    descendants: [],
    notes: [],
    driver: async (c) => httpDriver(ep, c, 'bench__echo', {}),
    stop: () => stopChild(child, []),
  };
}

async function startDirectStdio(): Promise<Running> {
  const child = track(spawn(process.execPath, [ECHO_SERVER], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] }));
  const errTail = stderrTail(child);
  const rpc = new StdioRpc(child);
  const init = await Promise.race([
    rpc.request('initialize', initializeParams('gatehouse-bench')),
    new Promise<never>((_, reject) => child.once('exit', () => reject(new Error(`echo server exited:\n${errTail()}`)))),
  ]);
  rpc.notify('notifications/initialized');
  const version = (init.result as { protocolVersion?: string }).protocolVersion;
  return {
    pid: child.pid!,
    descendants: [],
    notes: [`negotiated ${version}`],
    driver: async () => rpc.driver(),
    stop: () => stopChild(child, []),
  };
}

/** `stateless`: the calls are MCP 2026-07-28 requests (no session; `_meta` and routing headers on each). */
function gatehouseStarter(profile: GatehouseProfile, opts: TargetOptions, stateless = false): () => Promise<Running> {
  return async () => {
    if (profile === 'redis') {
      const why = await redisUnavailable(opts.redisUrl);
      if (why !== undefined) {
        if (opts.requireRedis)
          throw new Error(`Redis at ${opts.redisUrl} is not answering (${why}) and BENCH_REQUIRE_REDIS=1`);
        throw new SkipTarget(
          `Redis at ${opts.redisUrl} is not answering (${why}): gatehouse-redis skipped (BENCH_REQUIRE_REDIS=1 makes this an error)`,
        );
      }
    }
    const g = await launchGatehouse(profile, [ECHO_UPSTREAM], opts);
    const upstream = g.descendants.find((d) => d.cmd.includes('echo-server'));
    const notes = [
      profile === 'bare'
        ? 'auth none, no policy, no limits, audit on stdout (log file)'
        : `auth dev (ES256 JWT), policy with argument constraints, limits store ${profile === 'redis' ? `redis (prefix ${g.redisKeyPrefix})` : 'memory'}${profile === 'cached' ? ', echo results cached (hits)' : ''}, audit file + hash chain, prometheus :${g.metricsPort}`,
      `logging.level ${opts.logLevel}`,
      ...(opts.nodeArgs.length ? [`node ${opts.nodeArgs.join(' ')}`] : []),
    ];
    if (opts.keepLogs) notes.push(`config ${g.configFile}`, `log ${g.logFile}`);
    return {
      pid: g.pid,
      descendants: g.descendants,
      ...(upstream ? { upstreamPid: upstream.pid } : {}),
      notes,
      driver: async (c) => {
        if (stateless)
          return httpDriver(
            g.ep,
            c,
            'bench__echo',
            { ...g.authHeaders, ...statelessHeaders('bench__echo') },
            statelessToolCallBody,
          );
        const s = await openMcpSession(g.ep, 'bench__echo', g.authHeaders);
        return httpDriver(g.ep, c, 'bench__echo', s.headers);
      },
      check: async () => {
        const problems: string[] = [];
        if (g.auditFile !== null) {
          const size = fs.existsSync(g.auditFile) ? fs.statSync(g.auditFile).size : 0;
          if (size === 0) problems.push('the audit file is empty');
        }
        if (g.metricsPort !== null) {
          const status = await getStatus(g.metricsPort, '/metrics');
          if (status !== 200) problems.push(`GET /metrics answered ${status}`);
        }
        if (g.redisKeyPrefix !== null) {
          const keys = await countRedisKeys(opts.redisUrl, g.redisKeyPrefix);
          if (keys === 0) problems.push(`no Redis key under ${g.redisKeyPrefix}: are the limits really in Redis?`);
        }
        return problems;
      },
      stop: () => g.stop(),
    };
  };
}

async function startMcpProxy(): Promise<Running> {
  if (!fs.existsSync(MCP_PROXY_BIN)) throw new Error(`${MCP_PROXY_BIN} missing`);
  // Run the bin's script with this node directly, so the pid measured is the proxy itself (no shell, no npx).
  const script = fs.realpathSync(MCP_PROXY_BIN);
  const port = await freePort();
  const args = [
    script,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--server',
    'stream',
    '--',
    process.execPath,
    ECHO_SERVER,
  ];
  const child = track(spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  const errTail = stderrTail(child);
  child.stdout!.resume(); // a startup line only; drain it
  await waitFor('mcp-proxy', child, errTail, async () => ((await canConnect(port)) ? true : undefined));
  const ep = { host: '127.0.0.1', port, path: '/mcp' };
  const desc = await settleDescendants(child.pid!, 1);
  const upstream = desc.find((d) => d.cmd.includes('echo-server'));
  const notes = [`mcp-proxy ${args.slice(1, -3).join(' ')} (defaults otherwise: event store on)`];
  const others = desc.filter((d) => d !== upstream);
  notes.push(
    others.length === 0
      ? 'mcp-proxy runs as one process (+ the echo upstream): no fork'
      : `mcp-proxy also runs: ${others.map((d) => d.cmd).join('; ')}`,
  );
  return {
    pid: child.pid!,
    descendants: desc,
    ...(upstream ? { upstreamPid: upstream.pid } : {}),
    notes,
    driver: async (c) => {
      const s = await openMcpSession(ep, 'echo');
      return httpDriver(ep, c, 'echo', s.headers);
    },
    stop: () =>
      stopChild(
        child,
        desc.map((d) => d.pid),
      ),
  };
}

async function startSupergateway(): Promise<Running> {
  if (!fs.existsSync(SUPERGATEWAY_BIN)) throw new Error(`${SUPERGATEWAY_BIN} missing`);
  const script = fs.realpathSync(SUPERGATEWAY_BIN);
  const port = await freePort();
  // --stateful: one upstream process per session, reused by every call of that session — like the others here.
  // The stateless mode spawns (and initializes) a new upstream for every POST, which measures process start-up.
  const args = [
    script,
    '--stdio',
    `${process.execPath} ${ECHO_SERVER}`,
    '--outputTransport',
    'streamableHttp',
    '--stateful',
    '--port',
    String(port),
    '--logLevel',
    'none',
  ];
  const child = track(spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  const errTail = stderrTail(child);
  child.stdout!.resume();
  await waitFor('supergateway', child, errTail, async () => ((await canConnect(port)) ? true : undefined));
  const ep = { host: '127.0.0.1', port, path: '/mcp' };
  const seen = new Set<number>();
  const running: Running = {
    pid: child.pid!,
    descendants: [],
    notes: [
      `supergateway --outputTransport streamableHttp --stateful --port ${port} (endpoint /mcp; one echo upstream per session, spawned through a shell)`,
    ],
    driver: async (c) => {
      const s = await openMcpSession(ep, 'echo');
      // The session's upstream was spawned by its initialize: the newest echo-server below supergateway.
      const desc = await settleDescendants(child.pid!, seen.size + 1);
      const fresh = desc.filter((d) => d.cmd.includes('echo-server') && !seen.has(d.pid));
      for (const d of desc) seen.add(d.pid);
      running.descendants = desc;
      if (fresh.length > 0) running.upstreamPid = fresh[fresh.length - 1]!.pid;
      return httpDriver(ep, c, 'echo', s.headers);
    },
    stop: () =>
      stopChild(
        child,
        descendants(child.pid!).map((d) => d.pid),
      ),
  };
  return running;
}
