#!/usr/bin/env node
/**
 * `npm run bench`: throughput, latency, CPU and memory of the gateway against its baselines and peers, on loopback.
 *
 * Targets (each a child process; the load generator runs in this process):
 *   bare             a bare node:http server that parses each JSON-RPC request and answers it (bench/bare-server.ts)
 *   direct-stdio     the echo upstream (bench/echo-server.ts) driven over its own stdin/stdout
 *   gatehouse-bare   `gatehouse start` in front of the echo upstream, auth none, no policy/limits (the core alone)
 *   gatehouse-full   every protection on: dev JWT, policy with argument constraints, memory rate limits, audit to a
 *                    hash-chained file, Prometheus metrics, an upstream secret to redact from every reply
 *                    (bench/gatehouse-config.ts)
 *   gatehouse-full-2026  gatehouse-full driven by MCP 2026-07-28 calls: no session, `_meta` and routing headers on each
 *   gatehouse-redis  gatehouse-full with `limits.store: redis` (127.0.0.1:6379; skipped when Redis is not answering,
 *                    unless BENCH_REQUIRE_REDIS=1)
 *   gatehouse-cached gatehouse-full with the echo rule's results cached (`cache: { ttl: 1h }`): every call after the
 *                    first is a hit that never reaches the upstream (hit cost vs gatehouse-full's forwarded call)
 *   mcp-proxy        `mcp-proxy --server stream` in front of the same echo upstream
 *   supergateway     `supergateway --stdio … --outputTransport streamableHttp --stateful` in front of it
 *
 * For every target × concurrency: closed loop (N workers, each sends its next call when its reply arrives),
 * warm-up, then a measured window: calls/s, p50/p99 latency, errors, the target process's CPU per call (from
 * /proc/<pid>/stat, the target process only — not its upstream child) and its peak RSS (VmHWM).
 * Then, once per run, the other targets of the performance issue: RSS with idle sessions, ready time with three
 * upstreams, tools/list over 20 upstreams × 100 tools, and the policy decision at 1,000 rules.
 *
 * Environment:
 *   BENCH_SECONDS=5       measured seconds per cell          BENCH_WARMUP=2   warm-up seconds per cell
 *   BENCH_QUICK=1         1 s measured + 0.5 s warm-up, c=16,64 only, 200 idle sessions (CI smoke test, < 3 min)
 *   BENCH_RUNS=1          run everything N times and report the median of each figure (the issue's targets: 3)
 *   BENCH_CONCURRENCY=1,16,64 (quick: 16,64)       BENCH_TARGETS=bare,direct-stdio,gatehouse-bare,… (all; 'none')
 *   BENCH_EXTRAS=idle-sessions,ready,tools-list,policy   the measurements besides the cells ('none': skip them)
 *   BENCH_IDLE_SESSIONS=1000 (quick: 200)          BENCH_REQUIRE_REDIS=1  fail instead of skipping gatehouse-redis
 *   BENCH_REDIS_URL=redis://127.0.0.1:6379          gatehouse-redis's Redis (no password: it goes into the generated config)
 *   BENCH_GATEHOUSE_LOG_LEVEL=info  the gateway's logging.level
 *   BENCH_GATEHOUSE_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'  extra node flags for the gateway processes
 *   BENCH_KEEP_LOGS=1     keep the gateway's generated config, logs and audit file in their temp folder
 *   BENCH_ENFORCE=1       exit 1 when a target of the issue is missed (see GOALS below)
 *   BENCH_NO_WRITE=1      do not write bench/results/*.json (full mode writes <ISO date>.json and latest.json,
 *                         quick mode only latest.quick.json)
 *   BENCH_WAIT_QUIET=S    before each cell wait up to S s until other processes leave the machine idle, and measure
 *                         a cell again (up to 2 times) when others used ≥ 0.1 cores during it (shared machines)
 */
import os from 'node:os';
import { installCleanup, killNow, START_TIMEOUT_MS, STOP_GRACE_MS } from './lib/children.js';
import { ALL_EXTRAS, runExtras, type ExtraName } from './lib/extras.js';
import type { GatehouseOptions } from './lib/gatehouse.js';
import { DRAIN_TIMEOUT_MS, MAX_NOISY_RETRIES, measureCell, type CellWindow } from './lib/load.js';
import { ECHO_TEXT, PROTOCOL_VERSION } from './lib/mcp-client.js';
import { alive, CLK_TCK } from './lib/proc.js';
import {
  caption,
  cellLine,
  gitInfo,
  goalsAllMet,
  machineInfo,
  markdown,
  printSummary,
  writeResults,
} from './lib/report.js';
import { summarize, type BenchReport, type CellResult, type RunResults } from './lib/results.js';
import { ALL_TARGETS, SkipTarget, starters, type Running, type TargetName } from './lib/targets.js';

// ------------------------------------------------------------------------------------------- settings

const QUICK = process.env.BENCH_QUICK === '1';
const MEASURE_S = numberEnv('BENCH_SECONDS', QUICK ? 1 : 5);
const WARMUP_S = numberEnv('BENCH_WARMUP', QUICK ? 0.5 : 2);
const RUNS = numberEnv('BENCH_RUNS', 1);
// Quick mode skips c=1: it says little about the gateway and is the slowest cell to fill.
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? (QUICK ? '16,64' : '1,16,64'))
  .split(',')
  .map((s) => Number.parseInt(s.trim(), 10));
/** `gatehouse` (the name before the protected targets existed) still selects the unprotected gateway. */
const TARGETS = (process.env.BENCH_TARGETS ?? ALL_TARGETS.join(','))
  .split(',')
  .map((s) => (s.trim() === 'gatehouse' ? 'gatehouse-bare' : s.trim()))
  .filter((s) => s !== '' && s !== 'none') as TargetName[];
const EXTRAS = (process.env.BENCH_EXTRAS ?? ALL_EXTRAS.join(','))
  .split(',')
  .map((s) => s.trim())
  .filter((s) => s !== '' && s !== 'none') as ExtraName[];
const IDLE_SESSIONS = numberEnv('BENCH_IDLE_SESSIONS', QUICK ? 200 : 1000);
const REQUIRE_REDIS = process.env.BENCH_REQUIRE_REDIS === '1';
/** gatehouse-redis's Redis (the shared one of this machine; BENCH_REDIS_URL for another, e.g. to check the skip). */
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const GATEHOUSE_LOG_LEVEL = process.env.BENCH_GATEHOUSE_LOG_LEVEL ?? 'info';
/** Extra node flags for the gateway, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` (see bench/README.md). */
const GATEHOUSE_NODE_ARGS = (process.env.BENCH_GATEHOUSE_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
/** BENCH_WAIT_QUIET=S: before each cell wait up to S seconds for other processes to go quiet; re-measure disturbed cells. */
const WAIT_QUIET_S = numberEnv('BENCH_WAIT_QUIET', 0);
const KEEP_LOGS = process.env.BENCH_KEEP_LOGS === '1';

for (const c of CONCURRENCY) if (!Number.isInteger(c) || c < 1 || c > 1024) fail(`BENCH_CONCURRENCY: bad value ${c}`);
for (const t of TARGETS)
  if (!ALL_TARGETS.includes(t)) fail(`BENCH_TARGETS: unknown target ${t} (known: ${ALL_TARGETS.join(', ')})`);
for (const e of EXTRAS)
  if (!ALL_EXTRAS.includes(e)) fail(`BENCH_EXTRAS: unknown measurement ${e} (known: ${ALL_EXTRAS.join(', ')}, none)`);
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 20) fail('BENCH_RUNS must be a whole number from 1 to 20');
if (!Number.isInteger(IDLE_SESSIONS) || IDLE_SESSIONS < 1 || IDLE_SESSIONS > 100_000)
  fail('BENCH_IDLE_SESSIONS must be 1..100000');
if (!(MEASURE_S > 0) || !(WARMUP_S >= 0)) fail('BENCH_SECONDS must be > 0 and BENCH_WARMUP >= 0');

function numberEnv(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) fail(`${name}: not a number: ${v}`);
  return n;
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

installCleanup(KEEP_LOGS);
const GATEHOUSE: GatehouseOptions = {
  logLevel: GATEHOUSE_LOG_LEVEL,
  nodeArgs: GATEHOUSE_NODE_ARGS,
  redisUrl: REDIS_URL,
  keepLogs: KEEP_LOGS,
};
const STARTERS = starters({ ...GATEHOUSE, requireRedis: REQUIRE_REDIS });
const WINDOW: CellWindow = { warmupS: WARMUP_S, measureS: MEASURE_S, waitQuietS: WAIT_QUIET_S };

// ------------------------------------------------------------------------------------------- main

async function runOnce(
  runIndex: number,
  targetNotes: BenchReport['targets'],
  failures: Record<string, string>,
  skipped: Record<string, string>,
  problems: string[],
): Promise<RunResults> {
  const results: CellResult[] = [];
  if (RUNS > 1) process.stdout.write(`\n=== run ${runIndex + 1} of ${RUNS}\n`);
  for (const target of TARGETS) {
    if (failures[target] !== undefined || skipped[target] !== undefined) continue;
    let run: Running | undefined;
    try {
      process.stdout.write(`${target}: starting… `);
      run = await STARTERS[target]();
      process.stdout.write(
        `pid ${run.pid}${run.descendants.length ? ` (children: ${run.descendants.map((d) => `${d.pid} ${d.cmd}`).join(', ')})` : ''}\n`,
      );
      for (const c of CONCURRENCY) {
        if (!alive(run.pid)) throw new Error(`${target} (pid ${run.pid}) died`);
        const r = await measureCell(target, run, c, WINDOW);
        results.push(r);
        if (target.startsWith('gatehouse') && (r.errors > 0 || r.warmupErrors > 0)) {
          problems.push(
            `run ${runIndex + 1}: ${target} c=${c}: ${r.errors} errors (+${r.warmupErrors} in warm-up): a gatehouse target must have none (refused by a limit or the policy?)`,
          );
        }
        process.stdout.write(cellLine(r));
      }
      for (const p of (await run.check?.()) ?? []) problems.push(`run ${runIndex + 1}: ${target}: ${p}`);
      targetNotes[target] = { notes: run.notes, descendants: run.descendants };
    } catch (err) {
      if (err instanceof SkipTarget) {
        skipped[target] = err.message;
        process.stdout.write(`skipped: ${err.message}\n`);
      } else {
        failures[target] = err instanceof Error ? err.message : String(err);
        process.stdout.write(`\n  ${target} FAILED: ${failures[target]}\n`);
      }
    } finally {
      if (run) await run.stop();
    }
  }
  const extras = await runExtras({ ...GATEHOUSE, extras: EXTRAS, quick: QUICK, idleSessions: IDLE_SESSIONS }, failures);
  return { results, extras };
}

async function main(): Promise<number> {
  const cells = TARGETS.length * CONCURRENCY.length;
  const extrasBudgetMs = EXTRAS.length > 0 ? 180_000 + IDLE_SESSIONS * 20 : 0;
  const budgetMs =
    RUNS *
      (cells * (WARMUP_S + MEASURE_S) * 1000 +
        TARGETS.length * (START_TIMEOUT_MS + 2 * STOP_GRACE_MS) +
        cells * DRAIN_TIMEOUT_MS +
        extrasBudgetMs +
        (WAIT_QUIET_S > 0
          ? cells * (MAX_NOISY_RETRIES + 1) * (WAIT_QUIET_S * 1000 + (WARMUP_S + MEASURE_S) * 1000 + 3000)
          : 0)) +
    30_000;
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: over the time budget (${Math.round(budgetMs / 1000)} s): stopping\n`);
    killNow();
    process.exit(1);
  }, budgetMs);
  watchdog.unref();

  const started = new Date();
  process.stdout.write(
    `gatehouse bench — ${QUICK ? 'QUICK mode (smoke test: short cells, c=16/64 only, fewer idle sessions; not a measurement)' : 'full mode'}: ` +
      `${RUNS === 1 ? 'one run' : `${RUNS} runs (medians reported)`}, ${WARMUP_S} s warm-up + ${MEASURE_S} s measured per cell; ` +
      `concurrency ${CONCURRENCY.join(', ')}; targets ${TARGETS.join(', ')}; also ${EXTRAS.length > 0 ? EXTRAS.join(', ') : 'nothing else'}` +
      `${EXTRAS.includes('idle-sessions') ? ` (${IDLE_SESSIONS} idle sessions)` : ''}\n` +
      `node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, CLK_TCK ${CLK_TCK}\n\n`,
  );

  const targetNotes: BenchReport['targets'] = {};
  const failures: Record<string, string> = {};
  const skipped: Record<string, string> = {};
  const problems: string[] = [];
  const runs: RunResults[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await runOnce(i, targetNotes, failures, skipped, problems));

  const { results, extras, ratios, goals } = summarize(runs, CONCURRENCY);

  const report: BenchReport = {
    date: started.toISOString(),
    mode: QUICK ? 'quick' : 'full',
    runs: RUNS,
    warmupSeconds: WARMUP_S,
    measureSeconds: MEASURE_S,
    waitQuietSeconds: WAIT_QUIET_S,
    concurrency: CONCURRENCY,
    machine: machineInfo(),
    git: gitInfo(),
    workload: {
      tool: 'echo',
      text: ECHO_TEXT,
      protocolVersion: PROTOCOL_VERSION,
      gatehouseLogLevel: GATEHOUSE_LOG_LEVEL,
      idleSessions: IDLE_SESSIONS,
    },
    targets: targetNotes,
    results,
    ratios,
    extras,
    goals,
    ...(RUNS > 1 ? { perRun: runs } : {}),
    skipped,
    failures,
    problems,
  };
  printSummary(report);
  process.stdout.write(
    `\nMarkdown (for docs/performance.md; also: node dist/bench/table.js FILE):\n\n${caption(report)}\n\n${markdown(report)}\n\n`,
  );
  if (process.env.BENCH_NO_WRITE !== '1') writeResults(report);
  clearTimeout(watchdog);
  if (Object.keys(failures).length > 0 || problems.length > 0) return 1;
  if (process.env.BENCH_ENFORCE === '1' && !goalsAllMet(goals)) return 1;
  return 0;
}

main()
  .then((code) => {
    killNow();
    process.exit(code);
  })
  .catch((err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killNow();
    process.exit(1);
  });
