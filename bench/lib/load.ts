/**
 * The load generator, in the bench process: drivers (HTTP with a keep-alive agent, or JSON-RPC over a child's
 * stdio) and the closed loop that measures one cell — N workers, each sending its next call when its reply
 * arrives; a warm-up, then a measured window with the target's CPU (/proc) and peak RSS.
 */
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import { alive, cpuSeconds, machineBusySeconds, NOISE_LIMIT_CORES, resetPeakRss, statusKb, waitQuiet } from './proc.js';
import { freshId, goodToolReply, ID_BASE, parseReply, toolCallBody, type HttpEndpoint } from './mcp-client.js';
import { round, type CellResult } from './results.js';
import { sleep } from './sleep.js';

export const DRAIN_TIMEOUT_MS = 10_000;

/** One call: `done(true)` for a correct reply, `done(false)` for an HTTP error, a JSON-RPC error or a bad reply. */
type Call = (done: (ok: boolean) => void) => void;

export interface Driver {
  call: Call;
  close(): void;
}

/** A closed-loop friendly HTTP driver: raw node:http, a keep-alive agent with maxSockets = concurrency. */
export function httpDriver(
  ep: HttpEndpoint,
  concurrency: number,
  tool: string,
  extraHeaders: Record<string, string>,
  /** The request body of one call (a 2025 session's, or a 2026-07-28 stateless one). */
  body: (id: number, tool: string) => string = toolCallBody,
): Driver {
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: concurrency,
    maxFreeSockets: concurrency,
    keepAliveMsecs: 30_000,
  });
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    ...extraHeaders,
    'content-length': String(body(ID_BASE, tool).length),
  };
  const options: http.RequestOptions = { agent, host: ep.host, port: ep.port, path: ep.path, method: 'POST', headers };
  return {
    call(done) {
      const id = freshId();
      let settled = false;
      const finish = (ok: boolean): void => {
        if (settled) return;
        settled = true;
        done(ok);
      };
      const req = http.request(options, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () =>
          finish(res.statusCode === 200 && goodToolReply(parseReply(res.headers['content-type'], text, id), id)),
        );
        res.on('error', () => finish(false));
        res.on('aborted', () => finish(false));
      });
      req.on('error', () => finish(false));
      req.end(body(id, tool));
    },
    close() {
      agent.destroy();
    },
  };
}

export class StdioRpc {
  private readonly pending = new Map<number, (msg: Record<string, unknown> | undefined) => void>();
  private buffer = '';

  constructor(private readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => this.onData(chunk));
    child.once('exit', () => {
      for (const cb of this.pending.values()) cb(undefined);
      this.pending.clear();
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl = this.buffer.indexOf('\n');
    if (nl === -1) return;
    let start = 0;
    while (nl !== -1) {
      const line = this.buffer.slice(start, nl);
      start = nl + 1;
      nl = this.buffer.indexOf('\n', start);
      if (line.length === 0) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (typeof msg.id !== 'number' || !('result' in msg || 'error' in msg)) continue; // notifications, requests
      const cb = this.pending.get(msg.id);
      if (cb) {
        this.pending.delete(msg.id);
        cb(msg);
      }
    }
    this.buffer = this.buffer.slice(start);
  }

  send(line: string, id: number, cb: (msg: Record<string, unknown> | undefined) => void): void {
    this.pending.set(id, cb);
    this.child.stdin!.write(line);
  }

  request(method: string, params: unknown): Promise<Record<string, unknown>> {
    const id = freshId();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${method}: no answer`)), 10_000);
      this.send(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`, id, (msg) => {
        clearTimeout(timer);
        if (msg && 'result' in msg) resolve(msg);
        else reject(new Error(`${method} failed: ${JSON.stringify(msg)?.slice(0, 300)}`));
      });
    });
  }

  notify(method: string): void {
    this.child.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', method })}\n`);
  }

  driver(): Driver {
    return {
      call: (done) => {
        const id = freshId();
        this.send(`${toolCallBody(id, 'echo')}\n`, id, (msg) => done(goodToolReply(msg, id)));
      },
      close: () => {},
    };
  }
}

/** What measure() needs of a running target (targets.ts's Running). */
export interface Measurable {
  /** The process whose CPU and memory are reported. */
  pid: number;
  /** The upstream whose CPU is reported separately, if any. */
  upstreamPid?: number;
  driver(concurrency: number): Promise<Driver>;
}

/** The warm-up and the measured window of a cell (BENCH_WARMUP, BENCH_SECONDS), and BENCH_WAIT_QUIET. */
export interface CellWindow {
  warmupS: number;
  measureS: number;
  waitQuietS: number;
}

export const MAX_NOISY_RETRIES = 2;

/**
 * One cell. With BENCH_WAIT_QUIET (`waitQuietS` > 0): first wait for other processes to leave the machine quiet,
 * and measure again (up to MAX_NOISY_RETRIES times) when they used NOISE_LIMIT_CORES or more during the window.
 */
export async function measureCell(target: string, run: Measurable, c: number, timing: CellWindow): Promise<CellResult> {
  let r: CellResult;
  for (let attempt = 1; ; attempt++) {
    if (
      timing.waitQuietS > 0 &&
      !(await waitQuiet(timing.waitQuietS, [run.pid, ...(run.upstreamPid !== undefined ? [run.upstreamPid] : [])]))
    ) {
      process.stdout.write(`  (machine not quiet after ${timing.waitQuietS} s: measuring anyway)\n`);
    }
    r = await measure(target, run, c, timing);
    if (timing.waitQuietS === 0 || r.otherCpuCores < NOISE_LIMIT_CORES || attempt > MAX_NOISY_RETRIES) break;
    process.stdout.write(
      `  c=${String(c).padEnd(3)} disturbed (other processes used ${r.otherCpuCores.toFixed(2)} cores): measuring again\n`,
    );
  }
  return r;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** The closed loop of one cell: `concurrency` workers, the warm-up, then the measured window (bench/README.md). */
async function measure(target: string, run: Measurable, concurrency: number, timing: CellWindow): Promise<CellResult> {
  const driver = await run.driver(concurrency);
  let latencies = new Float64Array(1 << 16);
  let n = 0;
  let errors = 0;
  let warmupErrors = 0;
  let phase: 'warmup' | 'measure' | 'stop' = 'warmup';
  let inflight = 0;
  let onDrained: (() => void) | undefined;

  const worker = (): void => {
    if (phase === 'stop') return;
    inflight++;
    const t0 = process.hrtime.bigint();
    driver.call((ok) => {
      inflight--;
      if (phase === 'measure') {
        if (ok) {
          if (n === latencies.length) {
            const bigger = new Float64Array(latencies.length * 2);
            bigger.set(latencies);
            latencies = bigger;
          }
          latencies[n++] = Number(process.hrtime.bigint() - t0) / 1e6;
        } else errors++;
      } else if (phase === 'warmup' && !ok) warmupErrors++;
      if (phase !== 'stop') {
        // A target that fails fast would spin: yield to the timers after an error.
        if (ok) worker();
        else setTimeout(worker, 1);
      } else if (inflight === 0) onDrained?.();
    });
  };

  const hasUpstream = run.upstreamPid !== undefined && alive(run.upstreamPid);
  const rssReset = resetPeakRss(run.pid);
  for (let i = 0; i < concurrency; i++) worker();
  await sleep(timing.warmupS * 1000);

  const cpu0 = cpuSeconds(run.pid);
  const up0 = hasUpstream ? cpuSeconds(run.upstreamPid!) : 0;
  const me0 = process.cpuUsage();
  const sys0 = machineBusySeconds();
  const t0 = process.hrtime.bigint();
  phase = 'measure';
  await sleep(timing.measureS * 1000);
  phase = 'stop';
  const t1 = process.hrtime.bigint();
  const me1 = process.cpuUsage(me0);
  const cpu1 = cpuSeconds(run.pid);
  const up1 = hasUpstream ? cpuSeconds(run.upstreamPid!) : 0;
  const sys1 = machineBusySeconds();
  const peakKb = statusKb(run.pid, 'VmHWM');

  if (inflight > 0) {
    const drained = new Promise<void>((resolve) => (onDrained = resolve));
    const timeout = sleep(DRAIN_TIMEOUT_MS).then(() => 'timeout' as const);
    if ((await Promise.race([drained, timeout])) === 'timeout') {
      errors += inflight;
      process.stderr.write(`  (${inflight} calls still in flight after ${DRAIN_TIMEOUT_MS} ms: counted as errors)\n`);
    }
  }
  driver.close();

  const seconds = Number(t1 - t0) / 1e9;
  const sorted = latencies.subarray(0, n).sort();
  const perCall = (s: number): number => (n > 0 ? (s * 1e6) / n : Number.NaN);
  return {
    target,
    concurrency,
    seconds: round(seconds, 3),
    calls: n,
    callsPerSec: round(n / seconds, 0),
    p50Ms: round(percentile(sorted, 50), 3),
    p90Ms: round(percentile(sorted, 90), 3),
    p99Ms: round(percentile(sorted, 99), 3),
    maxMs: round(n > 0 ? sorted[n - 1]! : Number.NaN, 3),
    errors,
    warmupErrors,
    targetCpuUsPerCall: round(perCall(cpu1 - cpu0), 1),
    upstreamCpuUsPerCall: hasUpstream ? round(perCall(up1 - up0), 1) : null,
    clientCpuUsPerCall: round(perCall((me1.user + me1.system) / 1e6), 1),
    peakRssMb: round(peakKb / 1024, 1),
    peakRssCumulative: !rssReset,
    otherCpuCores: round(
      Math.max(0, sys1 - sys0 - (cpu1 - cpu0) - (up1 - up0) - (me1.user + me1.system) / 1e6) / seconds,
      2,
    ),
  };
}
