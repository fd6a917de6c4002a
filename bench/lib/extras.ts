/**
 * The other targets of the performance issue, measured once per run besides the cells: RSS with idle sessions,
 * ready time with three upstreams, tools/list over 20 upstreams × 100 tools, and the policy decision.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { BenchUpstream } from '../gatehouse-config.js';
import { runPolicyDecideBench } from '../policy-decide.js';
import { ECHO_UPSTREAM, launchGatehouse, type GatehouseOptions } from './gatehouse.js';
import { initSession, initSessionVia, parseReply, post } from './mcp-client.js';
import { ECHO_SERVER, MANY_TOOLS_SERVER } from './paths.js';
import { statusKb } from './proc.js';
import { fmt } from './report.js';
import {
  median,
  round,
  type Extras,
  type IdleSessionsResult,
  type ReadyResult,
  type ToolsListResult,
} from './results.js';
import { sleep } from './sleep.js';

export const ALL_EXTRAS = ['idle-sessions', 'ready', 'tools-list', 'policy'] as const;
export type ExtraName = (typeof ALL_EXTRAS)[number];

/** Which extras (BENCH_EXTRAS), quick mode's smaller sizes, BENCH_IDLE_SESSIONS, and how the gateways run. */
export interface ExtrasOptions extends GatehouseOptions {
  extras: readonly ExtraName[];
  quick: boolean;
  idleSessions: number;
}

/** RSS of gatehouse-full (one upstream) with `count` idle sessions: initialize + notifications/initialized each. */
async function measureIdleSessions(count: number, gh: GatehouseOptions): Promise<IdleSessionsResult> {
  const g = await launchGatehouse('full', [ECHO_UPSTREAM], gh);
  try {
    // Let start-up allocation settle (upstream handshake, first GC) before the baseline.
    await sleep(500);
    const before = statusKb(g.pid, 'VmRSS');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const t0 = performance.now();
    let next = 0;
    const failures: string[] = [];
    const worker = async (): Promise<void> => {
      while (next < count && failures.length === 0) {
        next++;
        try {
          await initSessionVia(g.ep, g.authHeaders, agent);
        } catch (err) {
          failures.push(err instanceof Error ? err.message : String(err));
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, () => worker()));
    const openSeconds = (performance.now() - t0) / 1000;
    agent.destroy();
    if (failures.length > 0) throw new Error(`opening ${count} sessions: ${failures[0]}`);
    await sleep(1000);
    const after = statusKb(g.pid, 'VmRSS');
    return {
      sessions: count,
      rssBeforeMb: round(before / 1024, 1),
      rssAfterMb: round(after / 1024, 1),
      kbPerSession: round((after - before) / count, 2),
      openSeconds: round(openSeconds, 2),
    };
  } finally {
    await g.stop();
  }
}

/** From spawn to /readyz 200 (polled every 5 ms) of gatehouse-full with three stdio echo upstreams. */
async function measureReady(attempts: number, gh: GatehouseOptions): Promise<ReadyResult> {
  const upstreams: BenchUpstream[] = ['up1', 'up2', 'up3'].map((name) => ({
    name,
    command: process.execPath,
    args: [ECHO_SERVER],
  }));
  const ready: number[] = [];
  const listening: number[] = [];
  for (let i = 0; i < attempts; i++) {
    const g = await launchGatehouse('full', upstreams, gh, { readyPollMs: 5 });
    try {
      ready.push(g.readyAt - g.spawnedAt);
      // pino's `time` (epoch ms) on the `gatehouse listening` line: when the listener was bound.
      for (const line of fs.readFileSync(g.logFile, 'utf8').split('\n')) {
        if (!line.includes('gatehouse listening')) continue;
        const rec = JSON.parse(line) as { time?: unknown };
        if (typeof rec.time === 'number') listening.push(rec.time - g.spawnedAt);
        break;
      }
    } finally {
      await g.stop();
    }
  }
  return {
    upstreams: upstreams.length,
    attempts,
    spawnToListeningMs: listening.length > 0 ? round(median(listening), 0) : null,
    spawnToReadyMs: round(median(ready), 0),
  };
}

/** tools/list latency through gatehouse-full (auth + policy filtering) over 20 upstreams × 100 tools. */
async function measureToolsList(calls: number, gh: GatehouseOptions): Promise<ToolsListResult> {
  const UPSTREAMS = 20;
  const TOOLS = 100;
  const upstreams: BenchUpstream[] = Array.from({ length: UPSTREAMS }, (_, i) => ({
    name: `m${i + 1}`,
    command: process.execPath,
    args: [MANY_TOOLS_SERVER, String(TOOLS)],
  }));
  const g = await launchGatehouse('full', upstreams, gh);
  try {
    const { headers } = await initSession(g.ep, g.authHeaders);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const body = (id: number): string => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list', params: {} });
    const first = await post(g.ep, headers, body(1), agent);
    const tools = (
      parseReply(first.headers['content-type'], first.text, 1)?.result as { tools?: unknown[] } | undefined
    )?.tools;
    if (first.status !== 200 || !Array.isArray(tools))
      throw new Error(`tools/list: HTTP ${first.status}: ${first.text.slice(0, 300)}`);
    if (tools.length !== UPSTREAMS * TOOLS)
      throw new Error(`tools/list listed ${tools.length} tools, expected ${UPSTREAMS * TOOLS}`);
    for (let i = 0; i < Math.min(50, calls); i++) await post(g.ep, headers, body(2 + i), agent); // warm-up
    const latencies: number[] = [];
    for (let i = 0; i < calls; i++) {
      const t0 = performance.now();
      const r = await post(g.ep, headers, body(100 + i), agent);
      latencies.push(performance.now() - t0);
      if (r.status !== 200 || r.text.length < first.text.length / 2)
        throw new Error(`tools/list #${i}: HTTP ${r.status}: ${r.text.slice(0, 300)}`);
    }
    agent.destroy();
    latencies.sort((x, y) => x - y);
    const pct = (p: number): number =>
      latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]!;
    return {
      upstreams: UPSTREAMS,
      toolsPerUpstream: TOOLS,
      toolsListed: tools.length,
      responseBytes: Buffer.byteLength(first.text),
      calls,
      p50Ms: round(pct(50), 3),
      p99Ms: round(pct(99), 3),
      meanMs: round(latencies.reduce((x, y) => x + y, 0) / latencies.length, 3),
      startMs: g.readyAt - g.spawnedAt,
    };
  } finally {
    await g.stop();
  }
}

export async function runExtras(opts: ExtrasOptions, failures: Record<string, string>): Promise<Extras> {
  const extras: Extras = {};
  const step = async <T>(
    name: ExtraName,
    what: string,
    fn: () => Promise<T> | T,
    show: (r: T) => string,
  ): Promise<T | undefined> => {
    if (!opts.extras.includes(name)) return undefined;
    process.stdout.write(`${what}… `);
    try {
      const r = await fn();
      process.stdout.write(`${show(r)}\n`);
      return r;
    } catch (err) {
      failures[name] = err instanceof Error ? err.message : String(err);
      process.stdout.write(`FAILED: ${failures[name]}\n`);
      return undefined;
    }
  };
  const idle = await step(
    'idle-sessions',
    `idle sessions: opening ${opts.idleSessions} on gatehouse-full`,
    () => measureIdleSessions(opts.idleSessions, opts),
    (r) =>
      `RSS ${fmt(r.rssBeforeMb, 1)} → ${fmt(r.rssAfterMb, 1)} MB (${fmt(r.kbPerSession, 1)} kB per session; opened in ${fmt(r.openSeconds, 1)} s)`,
  );
  if (idle) extras.idleSessions = idle;
  const ready = await step(
    'ready',
    'ready time: gatehouse-full with three stdio upstreams',
    () => measureReady(opts.quick ? 1 : 3, opts),
    (r) =>
      `listening after ${fmt(r.spawnToListeningMs)} ms, /readyz 200 after ${fmt(r.spawnToReadyMs)} ms (median of ${r.attempts})`,
  );
  if (ready) extras.ready = ready;
  const list = await step(
    'tools-list',
    'tools/list: gatehouse-full over 20 upstreams × 100 tools',
    () => measureToolsList(opts.quick ? 100 : 500, opts),
    (r) =>
      `${r.toolsListed} tools (${fmt(r.responseBytes / 1024)} kB): p50 ${fmt(r.p50Ms, 2)} ms, p99 ${fmt(r.p99Ms, 2)} ms over ${r.calls} calls (started in ${fmt(r.startMs)} ms)`,
  );
  if (list) extras.toolsList = list;
  // The policy decision at 1,000 rules (in process: a pure function, no server involved).
  const policy = await step(
    'policy',
    'policy decision at 1,000 rules',
    () => runPolicyDecideBench(opts.quick ? 20_000 : 200_000),
    (r) => `${r.usPerDecision} µs per decision over ${r.rules} rules (compiled in ${r.compileMs} ms)`,
  );
  if (policy) extras.policy = policy;
  return extras;
}
