/**
 * One gateway process of a profile (bench/gatehouse-config.ts): its generated config, policy and dev token, its
 * log file, started and ready (`/readyz` 200), and stopped with its upstreams, temp folder and Redis keys.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadOrCreateDevKey } from '../../src/auth/dev-keys.js';
import {
  AUDIT_FILE,
  BENCH_SCOPE,
  BENCH_SECRET_ENV,
  BENCH_SUBJECT,
  DEV_ISSUER,
  DEV_KEY_FILE,
  gatehouseConfigYaml,
  resourceUrl,
  writeBenchPolicy,
  type BenchUpstream,
  type GatehouseProfile,
} from '../gatehouse-config.js';
import { freePort, getStatus, settleDescendants, stderrTail, stopChild, tempDirs, track, waitFor } from './children.js';
import type { HttpEndpoint } from './mcp-client.js';
import { ECHO_SERVER, GATEHOUSE_MAIN, ROOT } from './paths.js';
import { deleteRedisPrefix, trackRedisPrefix, untrackRedisPrefix } from './redis.js';

/** How the gateways run: BENCH_GATEHOUSE_LOG_LEVEL, BENCH_GATEHOUSE_NODE_ARGS, BENCH_REDIS_URL, BENCH_KEEP_LOGS. */
export interface GatehouseOptions {
  logLevel: string;
  /** Extra node flags, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` (see bench/README.md). */
  nodeArgs: string[];
  /** The redis profile's Redis (no password: it goes into the generated config). */
  redisUrl: string;
  /** Keep the generated config, logs and audit file in their temp folder. */
  keepLogs: boolean;
}

export const ECHO_UPSTREAM: BenchUpstream = { name: 'bench', command: process.execPath, args: [ECHO_SERVER] };

/** A gateway process of one profile (bench/gatehouse-config.ts), ready (`/readyz` 200) and with its token minted. */
export interface Gatehouse {
  child: ChildProcess;
  pid: number;
  ep: HttpEndpoint;
  /** `Authorization: Bearer …` for the protected profiles; empty for `bare`. */
  authHeaders: Record<string, string>;
  dir: string;
  configFile: string;
  logFile: string;
  auditFile: string | null;
  metricsPort: number | null;
  redisKeyPrefix: string | null;
  /** Date.now() just before the spawn, and when /readyz first answered 200. */
  spawnedAt: number;
  readyAt: number;
  descendants: { pid: number; cmd: string }[];
  stop(): Promise<void>;
}

/** The upstream secret of the protected profiles: random per run, long enough to be redacted. */
const BENCH_SECRET = `bench-${randomBytes(16).toString('hex')}`;

export async function launchGatehouse(
  profile: GatehouseProfile,
  upstreams: readonly BenchUpstream[],
  gh: GatehouseOptions,
  opts: { readyPollMs?: number } = {},
): Promise<Gatehouse> {
  if (!fs.existsSync(GATEHOUSE_MAIN)) throw new Error(`${GATEHOUSE_MAIN} missing: build first (npm run build)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `gatehouse-bench-${profile}-`));
  tempDirs.add(dir);
  const configFile = path.join(dir, 'gatehouse.yaml');
  const logFile = path.join(dir, 'gatehouse.log');
  // A fixed port: the dev tokens' audience (auth.resource) names it.
  const port = await freePort();
  const protectedProfile = profile !== 'bare';
  const metricsPort = protectedProfile ? await freePort() : null;
  const redisKeyPrefix = profile === 'redis' ? `gatehouse-bench-${randomBytes(6).toString('hex')}:` : null;
  if (redisKeyPrefix !== null) trackRedisPrefix(gh.redisUrl, redisKeyPrefix);
  let authHeaders: Record<string, string> = {};
  if (protectedProfile) {
    writeBenchPolicy(dir, profile === 'cached');
    // The gateway reads the same key file (auth.dev.keyFile); minting here is what `gatehouse token` does.
    const key = await loadOrCreateDevKey(path.join(dir, DEV_KEY_FILE));
    const token = await key.mint({
      sub: BENCH_SUBJECT,
      scopes: [BENCH_SCOPE],
      audience: resourceUrl(port),
      issuer: DEV_ISSUER,
      ttlSeconds: 4 * 3600,
    });
    authHeaders = { authorization: `Bearer ${token}` };
  }
  fs.writeFileSync(
    configFile,
    gatehouseConfigYaml({
      profile,
      dir,
      port,
      logLevel: gh.logLevel,
      upstreams,
      ...(metricsPort !== null ? { metricsPort } : {}),
      ...(redisKeyPrefix !== null ? { redisKeyPrefix, redisUrl: gh.redisUrl } : {}),
    }),
  );
  // The gateway logs (audit records included, for `bare`) to a file: reading them here would cost the load generator CPU.
  const logFd = fs.openSync(logFile, 'w');
  const spawnedAt = Date.now();
  const child = track(
    spawn(process.execPath, [...gh.nodeArgs, GATEHOUSE_MAIN, 'start', '--config', configFile], {
      cwd: ROOT,
      env: { ...process.env, [BENCH_SECRET_ENV]: BENCH_SECRET },
      stdio: ['ignore', logFd, 'pipe'],
    }),
  );
  fs.closeSync(logFd);
  const errTail = stderrTail(child);
  const logTail = (): string =>
    `${errTail()}${(() => {
      try {
        return fs.readFileSync(logFile, 'utf8').slice(-3000);
      } catch {
        return '';
      }
    })()}`;
  const readyAt = await waitFor(
    `gatehouse (${profile})`,
    child,
    logTail,
    async () => ((await getStatus(port, '/readyz')) === 200 ? Date.now() : undefined),
    opts.readyPollMs ?? 50,
  );
  const desc = await settleDescendants(child.pid!, upstreams.length);
  return {
    child,
    pid: child.pid!,
    ep: { host: '127.0.0.1', port, path: '/mcp' },
    authHeaders,
    dir,
    configFile,
    logFile,
    auditFile: protectedProfile ? path.join(dir, AUDIT_FILE) : null,
    metricsPort,
    redisKeyPrefix,
    spawnedAt,
    readyAt,
    descendants: desc,
    stop: async () => {
      await stopChild(
        child,
        desc.map((d) => d.pid),
      );
      if (redisKeyPrefix !== null) {
        await deleteRedisPrefix(gh.redisUrl, redisKeyPrefix);
        untrackRedisPrefix(redisKeyPrefix);
      }
      if (!gh.keepLogs) fs.rmSync(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    },
  };
}
