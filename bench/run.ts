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
 *   gatehouse-redis  gatehouse-full with `limits.store: redis` (127.0.0.1:6379; skipped when Redis is not answering,
 *                    unless BENCH_REQUIRE_REDIS=1)
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
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { loadOrCreateDevKey } from '../src/auth/dev-keys.js';
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
} from './gatehouse-config.js';
import { runPolicyDecideBench } from './policy-decide.js';
import {
  caption,
  computeRatios,
  evaluateGoals,
  fmt,
  markdown,
  median,
  medianCells,
  medianExtras,
  round,
  verdict,
  type BenchReport,
  type CellResult,
  type Extras,
  type IdleSessionsResult,
  type ReadyResult,
  type ToolsListResult,
} from './report.js';

// ------------------------------------------------------------------------------------------- settings

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = path.resolve(HERE, '..', '..');
const ECHO_SERVER = path.join(HERE, 'echo-server.js');
const BARE_SERVER = path.join(HERE, 'bare-server.js');
const GATEHOUSE_MAIN = path.join(ROOT, 'dist', 'src', 'main.js');
const MANY_TOOLS_SERVER = path.join(HERE, 'many-tools-server.js');
const MCP_PROXY_BIN = path.join(ROOT, 'node_modules', '.bin', 'mcp-proxy');
const SUPERGATEWAY_BIN = path.join(ROOT, 'node_modules', '.bin', 'supergateway');
const RESULTS_DIR = path.join(ROOT, 'bench', 'results');

const QUICK = process.env.BENCH_QUICK === '1';
const MEASURE_S = numberEnv('BENCH_SECONDS', QUICK ? 1 : 5);
const WARMUP_S = numberEnv('BENCH_WARMUP', QUICK ? 0.5 : 2);
const RUNS = numberEnv('BENCH_RUNS', 1);
// Quick mode skips c=1: it says little about the gateway and is the slowest cell to fill.
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? (QUICK ? '16,64' : '1,16,64'))
  .split(',')
  .map((s) => Number.parseInt(s.trim(), 10));
const ALL_TARGETS = [
  'bare',
  'direct-stdio',
  'gatehouse-bare',
  'gatehouse-full',
  'gatehouse-redis',
  'mcp-proxy',
  'supergateway',
] as const;
type TargetName = (typeof ALL_TARGETS)[number];
/** `gatehouse` (the name before the protected targets existed) still selects the unprotected gateway. */
const TARGETS = (process.env.BENCH_TARGETS ?? ALL_TARGETS.join(','))
  .split(',')
  .map((s) => (s.trim() === 'gatehouse' ? 'gatehouse-bare' : s.trim()))
  .filter((s) => s !== '' && s !== 'none') as TargetName[];
const ALL_EXTRAS = ['idle-sessions', 'ready', 'tools-list', 'policy'] as const;
type ExtraName = (typeof ALL_EXTRAS)[number];
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
const PROTOCOL_VERSION = '2025-11-25';
const ECHO_TEXT = 'hello from the gatehouse bench!!'; // 32 bytes
/** BENCH_WAIT_QUIET=S: before each cell wait up to S seconds for other processes to go quiet; re-measure disturbed cells. */
const WAIT_QUIET_S = numberEnv('BENCH_WAIT_QUIET', 0);
const NOISE_LIMIT_CORES = 0.1;
const MAX_NOISY_RETRIES = 2;
const START_TIMEOUT_MS = 30_000;
const DRAIN_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;
/** Ids are 10 digits, so every request body of a run has the same length and one headers object serves all. */
const ID_BASE = 1_000_000_000;

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

// ------------------------------------------------------------------------------------------- child processes & cleanup

const children = new Set<ChildProcess>();
/** Descendants (the upstreams of gatehouse / mcp-proxy) seen while running, killed by pid if they outlive their parent. */
const extraPids = new Set<number>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Temp folders (the gateway's generated config and log), removed on the way out. */
const tempDirs = new Set<string>();

function killNow(): void {
  for (const c of children)
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) safeKill(c.pid, 'SIGKILL');
  for (const pid of extraPids) if (alive(pid)) safeKill(pid, 'SIGKILL');
  // Redis keys of a gatehouse-redis interrupted half-way: best effort, in a child (exit handlers cannot wait).
  for (const prefix of redisPrefixes) {
    try {
      const u = new URL(REDIS_URL);
      const where = ['-h', u.hostname, '-p', u.port || '6379'];
      execFileSync('redis-cli', [...where, '--scan', '--pattern', `${prefix}*`], { encoding: 'utf8', timeout: 5000 })
        .split('\n')
        .filter(Boolean)
        .forEach((key) => execFileSync('redis-cli', [...where, 'UNLINK', key], { timeout: 2000 }));
    } catch {
      // no redis-cli, or Redis gone
    }
  }
  redisPrefixes.clear();
  if (process.env.BENCH_KEEP_LOGS !== '1') for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
}

function safeKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

async function stopChild(child: ChildProcess, descendants: number[]): Promise<void> {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  if (child.pid !== undefined) safeKill(child.pid, 'SIGTERM');
  child.stdin?.end();
  const timer = setTimeout(() => child.pid !== undefined && safeKill(child.pid, 'SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
  // The upstream normally exits with its parent (stdin closes); make sure.
  const deadline = Date.now() + STOP_GRACE_MS;
  for (const pid of descendants) {
    while (alive(pid) && Date.now() < deadline) await sleep(50);
    if (alive(pid)) safeKill(pid, 'SIGKILL');
    extraPids.delete(pid);
  }
}

process.on('exit', killNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}, stopping the targets\n`);
    killNow();
    process.exit(130);
  });
}
process.on('uncaughtException', (err) => {
  process.stderr.write(`bench: ${err.stack ?? String(err)}\n`);
  killNow();
  process.exit(1);
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ------------------------------------------------------------------------------------------- /proc

const CLK_TCK = (() => {
  try {
    const n = Number.parseInt(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim(), 10);
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of one process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // comm (field 2) may contain spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
function machineBusySeconds(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …
  return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)) / CLK_TCK;
}

function statusKb(pid: number, key: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

/**
 * Waits until processes other than ours leave the machine (nearly) idle for 2 s, or `maxS` pass.
 * Shared CI machines and agents running tests next to the bench otherwise skew every number.
 */
async function waitQuiet(maxS: number, ownPids: number[]): Promise<boolean> {
  const deadline = Date.now() + maxS * 1000;
  const own = (): number => ownPids.reduce((sum, pid) => sum + (alive(pid) ? cpuSeconds(pid) : 0), 0);
  for (;;) {
    const m0 = machineBusySeconds();
    const o0 = own();
    const me0 = process.cpuUsage();
    await sleep(2000);
    const me = process.cpuUsage(me0);
    const other = machineBusySeconds() - m0 - (own() - o0) - (me.user + me.system) / 1e6;
    if (other / 2 < NOISE_LIMIT_CORES) return true;
    if (Date.now() > deadline) return false;
    await sleep(1000);
  }
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0) so each cell reports its own peak. */
function resetPeakRss(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
      const text = fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
    return out;
  } catch {
    // No children file: scan /proc for the parent pid.
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
      } catch {
        // gone
      }
    }
    return out;
  }
}

function descendants(pid: number): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of childPids(queue.shift()!)) {
      let cmd = '?';
      try {
        cmd = fs
          .readFileSync(`/proc/${child}/cmdline`, 'utf8')
          .split('\0')
          .filter(Boolean)
          .map((a) => path.basename(a))
          .join(' ');
      } catch {
        // gone
      }
      out.push({ pid: child, cmd });
      queue.push(child);
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------- drivers

/** One call: `done(true)` for a correct reply, `done(false)` for an HTTP error, a JSON-RPC error or a bad reply. */
type Call = (done: (ok: boolean) => void) => void;

interface Driver {
  call: Call;
  close(): void;
}

let nextId = 0;
function freshId(): number {
  nextId += 1;
  return ID_BASE + nextId;
}

function toolCallBody(id: number, tool: string): string {
  return `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"${tool}","arguments":{"text":"${ECHO_TEXT}"}}}`;
}

/** A JSON body, or the JSON-RPC message of an SSE body's `data:` line that answers `id`. */
function parseReply(
  contentType: string | undefined,
  text: string,
  id: number | null,
): Record<string, unknown> | undefined {
  try {
    if (contentType?.startsWith('text/event-stream')) {
      let found: Record<string, unknown> | undefined;
      for (const line of text.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data.length === 0) continue; // a priming event (resumability) carries no message
        const msg = JSON.parse(data) as Record<string, unknown>;
        if (id === null || msg.id === id) found = msg;
      }
      return found;
    }
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function goodToolReply(msg: Record<string, unknown> | undefined, id: number): boolean {
  if (msg === undefined || msg.id !== id || 'error' in msg) return false;
  const result = msg.result as { isError?: boolean; content?: unknown } | undefined;
  return result !== undefined && result.isError !== true && Array.isArray(result.content);
}

interface HttpEndpoint {
  host: string;
  port: number;
  path: string;
}

/** A closed-loop friendly HTTP driver: raw node:http, a keep-alive agent with maxSockets = concurrency. */
function httpDriver(ep: HttpEndpoint, concurrency: number, tool: string, extraHeaders: Record<string, string>): Driver {
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
    'content-length': String(toolCallBody(ID_BASE, tool).length),
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
      req.end(toolCallBody(id, tool));
    },
    close() {
      agent.destroy();
    },
  };
}

/** One POST outside the measured loop (initialize, notifications, checks). */
function post(
  ep: HttpEndpoint,
  headers: Record<string, string>,
  body: string,
  agent: http.Agent | false = false,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: ep.host,
        port: ep.port,
        path: ep.path,
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'content-length': String(Buffer.byteLength(body)),
          ...headers,
        },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

interface McpSession {
  headers: Record<string, string>;
  protocolVersion: string;
}

/** initialize → mcp-session-id → notifications/initialized; the session's headers (`base` included). */
async function initSession(ep: HttpEndpoint, base: Record<string, string>): Promise<McpSession> {
  const init = await post(
    ep,
    base,
    JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: 'gatehouse-bench', version: '1.0.0' },
      },
    }),
  );
  const sid = init.headers['mcp-session-id'];
  const reply = parseReply(init.headers['content-type'], init.text, 0);
  if (init.status !== 200 || typeof sid !== 'string' || reply === undefined || !('result' in reply)) {
    throw new Error(`initialize failed: HTTP ${init.status}, session ${String(sid)}: ${init.text.slice(0, 300)}`);
  }
  const version =
    ((reply.result as { protocolVersion?: unknown }).protocolVersion as string | undefined) ?? PROTOCOL_VERSION;
  const headers = { ...base, 'mcp-session-id': sid, 'mcp-protocol-version': version };
  const note = await post(ep, headers, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
  if (note.status !== 202 && note.status !== 200)
    throw new Error(`notifications/initialized: HTTP ${note.status}: ${note.text.slice(0, 300)}`);
  return { headers, protocolVersion: version };
}

/** A session (initSession), then checks that `tool` is listed and echoes. */
async function openMcpSession(ep: HttpEndpoint, tool: string, base: Record<string, string> = {}): Promise<McpSession> {
  const { headers, protocolVersion: version } = await initSession(ep, base);

  const list = await post(ep, headers, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }));
  const tools =
    (parseReply(list.headers['content-type'], list.text, 1)?.result as { tools?: { name: string }[] } | undefined)
      ?.tools ?? [];
  if (!tools.some((t) => t.name === tool)) throw new Error(`tools/list has no ${tool}: ${list.text.slice(0, 300)}`);
  const call = await post(ep, headers, toolCallBody(2, tool));
  const msg = parseReply(call.headers['content-type'], call.text, 2);
  const text = (msg?.result as { content?: { text?: string }[] } | undefined)?.content?.[0]?.text;
  if (call.status !== 200 || text !== ECHO_TEXT)
    throw new Error(`check call failed: HTTP ${call.status}: ${call.text.slice(0, 300)}`);
  return { headers, protocolVersion: version };
}

/** Newline-delimited JSON-RPC over a child's stdin/stdout; many calls in flight, matched by id. */
class StdioRpc {
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

// ------------------------------------------------------------------------------------------- targets

interface Running {
  /** The process whose CPU and memory are reported. */
  pid: number;
  /** Its children (upstreams), for the record. */
  descendants: { pid: number; cmd: string }[];
  /** The upstream whose CPU is reported separately, if any. */
  upstreamPid?: number;
  notes: string[];
  driver(concurrency: number): Promise<Driver>;
  /** After the cells: problems that make the numbers meaningless (e.g. the audit file stayed empty). */
  check?(): Promise<string[]>;
  stop(): Promise<void>;
}

function stderrTail(child: ChildProcess): () => string {
  let tail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (c: string) => {
    tail = (tail + c).slice(-4000);
  });
  return () => tail;
}

function waitFor<T>(
  what: string,
  child: ChildProcess,
  errTail: () => string,
  probe: () => T | undefined | Promise<T | undefined>,
  pollMs = 50,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + START_TIMEOUT_MS;
    const onExit = (code: number | null, signal: string | null): void => {
      reject(new Error(`${what} exited (${code ?? signal}) before it was ready:\n${errTail()}`));
    };
    child.once('exit', onExit);
    const tick = async (): Promise<void> => {
      let value: T | undefined;
      try {
        value = await probe();
      } catch {
        value = undefined;
      }
      if (value !== undefined) {
        child.off('exit', onExit);
        resolve(value);
      } else if (Date.now() > deadline) {
        child.off('exit', onExit);
        reject(new Error(`${what} not ready after ${START_TIMEOUT_MS} ms:\n${errTail()}`));
      } else setTimeout(() => void tick(), pollMs);
    };
    void tick();
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address() as net.AddressInfo;
      srv.close(() => resolve(addr.port));
    });
  });
}

function getStatus(port: number, urlPath: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function settleDescendants(pid: number, expect: number): Promise<{ pid: number; cmd: string }[]> {
  let d = descendants(pid);
  for (let i = 0; i < 40 && d.length < expect; i++) {
    await sleep(50);
    d = descendants(pid);
  }
  for (const x of d) extraPids.add(x.pid);
  return d;
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
    rpc.request('initialize', {
      protocolVersion: PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: 'gatehouse-bench', version: '1.0.0' },
    }),
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

/** A gateway process of one profile (bench/gatehouse-config.ts), ready (`/readyz` 200) and with its token minted. */
interface Gatehouse {
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

async function launchGatehouse(
  profile: GatehouseProfile,
  upstreams: readonly BenchUpstream[],
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
  if (redisKeyPrefix !== null) redisPrefixes.add(redisKeyPrefix);
  let authHeaders: Record<string, string> = {};
  if (protectedProfile) {
    writeBenchPolicy(dir);
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
      logLevel: GATEHOUSE_LOG_LEVEL,
      upstreams,
      ...(metricsPort !== null ? { metricsPort } : {}),
      ...(redisKeyPrefix !== null ? { redisKeyPrefix, redisUrl: REDIS_URL } : {}),
    }),
  );
  // The gateway logs (audit records included, for `bare`) to a file: reading them here would cost the load generator CPU.
  const logFd = fs.openSync(logFile, 'w');
  const spawnedAt = Date.now();
  const child = track(
    spawn(process.execPath, [...GATEHOUSE_NODE_ARGS, GATEHOUSE_MAIN, 'start', '--config', configFile], {
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
        await deleteRedisPrefix(redisKeyPrefix);
        redisPrefixes.delete(redisKeyPrefix);
      }
      if (process.env.BENCH_KEEP_LOGS !== '1') fs.rmSync(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    },
  };
}

/** Why Redis cannot be used (undefined: it answers PING). */
async function redisUnavailable(): Promise<string | undefined> {
  const r = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // The 'error' event carries the cause (ECONNREFUSED …); the rejected promise only says the connection closed.
  let cause: string | undefined;
  r.on('error', (err: Error) => {
    cause ??= err.message;
  });
  try {
    await r.connect();
    const pong = await r.ping();
    return pong === 'PONG' ? undefined : `PING answered ${pong}`;
  } catch (err) {
    return cause ?? (err instanceof Error ? err.message : String(err));
  } finally {
    r.disconnect();
  }
}

/** Key prefixes of gatehouse-redis instances still running (removed from Redis on the way out too). */
const redisPrefixes = new Set<string>();

/** Calls `each` with every batch of keys under `prefix` (SCAN, on a short-lived connection; Redis is shared). */
async function scanPrefix(prefix: string, each: (r: Redis, keys: string[]) => Promise<void>): Promise<void> {
  const r = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  r.on('error', () => {});
  try {
    await r.connect();
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await each(r, keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

/** Removes every key under `prefix` (SCAN + UNLINK: never FLUSH, Redis is shared). */
async function deleteRedisPrefix(prefix: string): Promise<number> {
  let removed = 0;
  try {
    await scanPrefix(prefix, async (r, keys) => {
      removed += await r.unlink(...keys);
    });
  } catch (err) {
    process.stderr.write(
      `bench: could not remove the Redis keys under ${prefix}: ${err instanceof Error ? err.message : String(err)}\n`,
    );
  }
  return removed;
}

const ECHO_UPSTREAM: BenchUpstream = { name: 'bench', command: process.execPath, args: [ECHO_SERVER] };

function gatehouseStarter(profile: GatehouseProfile): () => Promise<Running> {
  return async () => {
    if (profile === 'redis') {
      const why = await redisUnavailable();
      if (why !== undefined) {
        if (REQUIRE_REDIS) throw new Error(`Redis at ${REDIS_URL} is not answering (${why}) and BENCH_REQUIRE_REDIS=1`);
        throw new SkipTarget(
          `Redis at ${REDIS_URL} is not answering (${why}): gatehouse-redis skipped (BENCH_REQUIRE_REDIS=1 makes this an error)`,
        );
      }
    }
    const g = await launchGatehouse(profile, [ECHO_UPSTREAM]);
    const upstream = g.descendants.find((d) => d.cmd.includes('echo-server'));
    const notes = [
      profile === 'bare'
        ? 'auth none, no policy, no limits, audit on stdout (log file)'
        : `auth dev (ES256 JWT), policy with argument constraints, limits store ${profile === 'redis' ? `redis (prefix ${g.redisKeyPrefix})` : 'memory'}, audit file + hash chain, prometheus :${g.metricsPort}`,
      `logging.level ${GATEHOUSE_LOG_LEVEL}`,
      ...(GATEHOUSE_NODE_ARGS.length ? [`node ${GATEHOUSE_NODE_ARGS.join(' ')}`] : []),
    ];
    if (process.env.BENCH_KEEP_LOGS === '1') notes.push(`config ${g.configFile}`, `log ${g.logFile}`);
    return {
      pid: g.pid,
      descendants: g.descendants,
      ...(upstream ? { upstreamPid: upstream.pid } : {}),
      notes,
      driver: async (c) => {
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
          const keys = await countRedisKeys(g.redisKeyPrefix);
          if (keys === 0) problems.push(`no Redis key under ${g.redisKeyPrefix}: are the limits really in Redis?`);
        }
        return problems;
      },
      stop: () => g.stop(),
    };
  };
}

async function countRedisKeys(prefix: string): Promise<number> {
  let n = 0;
  try {
    await scanPrefix(prefix, async (_r, keys) => {
      n += keys.length;
    });
  } catch {
    return -1;
  }
  return n;
}

/** Thrown by a starter when its target cannot run here (not a failure: reported as skipped). */
class SkipTarget extends Error {}

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

const STARTERS: Record<TargetName, () => Promise<Running>> = {
  bare: startBare,
  'direct-stdio': startDirectStdio,
  'gatehouse-bare': gatehouseStarter('bare'),
  'gatehouse-full': gatehouseStarter('full'),
  'gatehouse-redis': gatehouseStarter('redis'),
  'mcp-proxy': startMcpProxy,
  supergateway: startSupergateway,
};

// ------------------------------------------------------------------------------------------- measuring

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function measure(target: TargetName, run: Running, concurrency: number): Promise<CellResult> {
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
  await sleep(WARMUP_S * 1000);

  const cpu0 = cpuSeconds(run.pid);
  const up0 = hasUpstream ? cpuSeconds(run.upstreamPid!) : 0;
  const me0 = process.cpuUsage();
  const sys0 = machineBusySeconds();
  const t0 = process.hrtime.bigint();
  phase = 'measure';
  await sleep(MEASURE_S * 1000);
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

// ------------------------------------------------------------------------------------------- reporting

function table(headers: string[], rows: string[][], rightAlign: boolean[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (rightAlign[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function gitInfo(): { commit: string | null; dirty: boolean | null } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim().length > 0;
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

// ------------------------------------------------------------------------------------------- the other targets

/** RSS of gatehouse-full (one upstream) with `count` idle sessions: initialize + notifications/initialized each. */
async function measureIdleSessions(count: number): Promise<IdleSessionsResult> {
  const g = await launchGatehouse('full', [ECHO_UPSTREAM]);
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

/** initSession over a keep-alive agent (the many sessions of one client). */
async function initSessionVia(ep: HttpEndpoint, base: Record<string, string>, agent: http.Agent): Promise<void> {
  const init = await post(
    ep,
    base,
    JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: 'gatehouse-bench-idle', version: '1.0.0' },
      },
    }),
    agent,
  );
  const sid = init.headers['mcp-session-id'];
  if (init.status !== 200 || typeof sid !== 'string')
    throw new Error(`initialize: HTTP ${init.status}: ${init.text.slice(0, 300)}`);
  const note = await post(
    ep,
    { ...base, 'mcp-session-id': sid, 'mcp-protocol-version': PROTOCOL_VERSION },
    JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    agent,
  );
  if (note.status !== 202 && note.status !== 200)
    throw new Error(`notifications/initialized: HTTP ${note.status}: ${note.text.slice(0, 300)}`);
}

/** From spawn to /readyz 200 (polled every 5 ms) of gatehouse-full with three stdio echo upstreams. */
async function measureReady(attempts: number): Promise<ReadyResult> {
  const upstreams: BenchUpstream[] = ['up1', 'up2', 'up3'].map((name) => ({
    name,
    command: process.execPath,
    args: [ECHO_SERVER],
  }));
  const ready: number[] = [];
  const listening: number[] = [];
  for (let i = 0; i < attempts; i++) {
    const g = await launchGatehouse('full', upstreams, { readyPollMs: 5 });
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
async function measureToolsList(calls: number): Promise<ToolsListResult> {
  const UPSTREAMS = 20;
  const TOOLS = 100;
  const upstreams: BenchUpstream[] = Array.from({ length: UPSTREAMS }, (_, i) => ({
    name: `m${i + 1}`,
    command: process.execPath,
    args: [MANY_TOOLS_SERVER, String(TOOLS)],
  }));
  const g = await launchGatehouse('full', upstreams);
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

async function runExtras(failures: Record<string, string>): Promise<Extras> {
  const extras: Extras = {};
  const step = async <T>(
    name: ExtraName,
    what: string,
    fn: () => Promise<T> | T,
    show: (r: T) => string,
  ): Promise<T | undefined> => {
    if (!EXTRAS.includes(name)) return undefined;
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
    `idle sessions: opening ${IDLE_SESSIONS} on gatehouse-full`,
    () => measureIdleSessions(IDLE_SESSIONS),
    (r) =>
      `RSS ${fmt(r.rssBeforeMb, 1)} → ${fmt(r.rssAfterMb, 1)} MB (${fmt(r.kbPerSession, 1)} kB per session; opened in ${fmt(r.openSeconds, 1)} s)`,
  );
  if (idle) extras.idleSessions = idle;
  const ready = await step(
    'ready',
    'ready time: gatehouse-full with three stdio upstreams',
    () => measureReady(QUICK ? 1 : 3),
    (r) =>
      `listening after ${fmt(r.spawnToListeningMs)} ms, /readyz 200 after ${fmt(r.spawnToReadyMs)} ms (median of ${r.attempts})`,
  );
  if (ready) extras.ready = ready;
  const list = await step(
    'tools-list',
    'tools/list: gatehouse-full over 20 upstreams × 100 tools',
    () => measureToolsList(QUICK ? 100 : 500),
    (r) =>
      `${r.toolsListed} tools (${fmt(r.responseBytes / 1024)} kB): p50 ${fmt(r.p50Ms, 2)} ms, p99 ${fmt(r.p99Ms, 2)} ms over ${r.calls} calls (started in ${fmt(r.startMs)} ms)`,
  );
  if (list) extras.toolsList = list;
  // The policy decision at 1,000 rules (in process: a pure function, no server involved).
  const policy = await step(
    'policy',
    'policy decision at 1,000 rules',
    () => runPolicyDecideBench(QUICK ? 20_000 : 200_000),
    (r) => `${r.usPerDecision} µs per decision over ${r.rules} rules (compiled in ${r.compileMs} ms)`,
  );
  if (policy) extras.policy = policy;
  return extras;
}

// ------------------------------------------------------------------------------------------- main

interface RunOutput {
  results: CellResult[];
  extras: Extras;
}

async function runOnce(
  runIndex: number,
  targetNotes: BenchReport['targets'],
  failures: Record<string, string>,
  skipped: Record<string, string>,
  problems: string[],
): Promise<RunOutput> {
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
        let r: CellResult;
        for (let attempt = 1; ; attempt++) {
          if (
            WAIT_QUIET_S > 0 &&
            !(await waitQuiet(WAIT_QUIET_S, [run.pid, ...(run.upstreamPid !== undefined ? [run.upstreamPid] : [])]))
          ) {
            process.stdout.write(`  (machine not quiet after ${WAIT_QUIET_S} s: measuring anyway)\n`);
          }
          r = await measure(target, run, c);
          if (WAIT_QUIET_S === 0 || r.otherCpuCores < NOISE_LIMIT_CORES || attempt > MAX_NOISY_RETRIES) break;
          process.stdout.write(
            `  c=${String(c).padEnd(3)} disturbed (other processes used ${r.otherCpuCores.toFixed(2)} cores): measuring again\n`,
          );
        }
        results.push(r);
        if (target.startsWith('gatehouse') && (r.errors > 0 || r.warmupErrors > 0)) {
          problems.push(
            `run ${runIndex + 1}: ${target} c=${c}: ${r.errors} errors (+${r.warmupErrors} in warm-up): a gatehouse target must have none (refused by a limit or the policy?)`,
          );
        }
        process.stdout.write(
          `  c=${String(c).padEnd(3)} ${fmt(r.callsPerSec).padStart(7)} calls/s  p50 ${fmt(r.p50Ms, 2)} ms  p99 ${fmt(r.p99Ms, 2)} ms  ` +
            `errors ${r.errors}  cpu ${fmt(r.targetCpuUsPerCall, 1)} µs/call  rss ${fmt(r.peakRssMb, 1)} MB` +
            `${r.otherCpuCores >= NOISE_LIMIT_CORES ? `  (noise: other processes used ${r.otherCpuCores.toFixed(2)} cores)` : ''}\n`,
        );
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
  const extras = await runExtras(failures);
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
  const runs: RunOutput[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await runOnce(i, targetNotes, failures, skipped, problems));

  const results = RUNS === 1 ? runs[0]!.results : medianCells(runs.map((r) => r.results));
  const extras = RUNS === 1 ? runs[0]!.extras : medianExtras(runs.map((r) => r.extras));
  const ratios = computeRatios(results, CONCURRENCY);
  const goals = evaluateGoals(results, ratios, extras, 1000);

  // readable table
  const headers = [
    'target',
    'c',
    'calls/s',
    'p50 ms',
    'p99 ms',
    'errors',
    'cpu µs/call',
    'upstream µs/call',
    'client µs/call',
    'peak RSS MB',
    'noise cores',
  ];
  const rows = results.map((r) => [
    r.target,
    String(r.concurrency),
    fmt(r.callsPerSec),
    fmt(r.p50Ms, 2),
    fmt(r.p99Ms, 2),
    String(r.errors),
    fmt(r.targetCpuUsPerCall, 1),
    fmt(r.upstreamCpuUsPerCall, 1),
    fmt(r.clientCpuUsPerCall, 1),
    fmt(r.peakRssMb, 1),
    r.otherCpuCores.toFixed(2),
  ]);
  const right = headers.map((_, i) => i > 0);
  process.stdout.write(`\n${RUNS > 1 ? `medians of ${RUNS} runs:\n` : ''}${table(headers, rows, right)}\n\n`);
  const x = (v: number | null): string => (v === null ? '–' : `${v.toFixed(2)}×`);
  process.stdout.write(
    `${table(
      ['c', 'full / bare', 'full / mcp-proxy', 'full / supergateway', 'full / gatehouse-bare', 'redis / full'],
      ratios.map((r) => [
        String(r.concurrency),
        x(r.fullOverBare),
        x(r.fullOverMcpProxy),
        x(r.fullOverSupergateway),
        x(r.fullOverGatehouseBare),
        x(r.redisOverFull),
      ]),
      [true, true, true, true, true, true],
    )}\n\n`,
  );
  process.stdout.write('targets of the issue (gatehouse-full, c=64 unless stated):\n');
  for (const g of goals) {
    const m =
      g.measured === null
        ? '–'
        : g.unit === '×'
          ? `${g.measured.toFixed(2)}×`
          : `${fmt(g.measured, g.measured < 10 ? 2 : 0)} ${g.unit}`;
    process.stdout.write(`  ${verdict(g).padEnd(12)} ${g.label}: ${m} (goal ${g.target})\n`);
  }
  for (const [t, n] of Object.entries(targetNotes))
    if (n.notes.length > 0) process.stdout.write(`note ${t}: ${n.notes.join('; ')}\n`);
  const noisy = results.filter((r) => r.otherCpuCores >= NOISE_LIMIT_CORES);
  if (noisy.length > 0) {
    process.stdout.write(
      `warning: other processes used CPU during ${noisy.length} cell(s) (up to ${Math.max(...noisy.map((r) => r.otherCpuCores)).toFixed(2)} cores): numbers are disturbed, rerun on a quiet machine\n`,
    );
  }
  for (const [t, msg] of Object.entries(skipped)) process.stdout.write(`SKIPPED ${t}: ${msg}\n`);
  for (const p of problems) process.stdout.write(`PROBLEM ${p}\n`);
  for (const [t, msg] of Object.entries(failures)) process.stdout.write(`FAILED ${t}: ${msg}\n`);

  const report: BenchReport = {
    date: started.toISOString(),
    mode: QUICK ? 'quick' : 'full',
    runs: RUNS,
    warmupSeconds: WARMUP_S,
    measureSeconds: MEASURE_S,
    waitQuietSeconds: WAIT_QUIET_S,
    concurrency: CONCURRENCY,
    machine: {
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? null,
      clkTck: CLK_TCK,
    },
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
  process.stdout.write(
    `\nMarkdown (for docs/performance.md; also: node dist/bench/table.js FILE):\n\n${caption(report)}\n\n${markdown(report)}\n\n`,
  );
  if (process.env.BENCH_NO_WRITE !== '1') {
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    const text = `${JSON.stringify(report, null, 2)}\n`;
    if (QUICK) {
      // A smoke test: one file, overwritten each time, never mistaken for a real measurement.
      fs.writeFileSync(path.join(RESULTS_DIR, 'latest.quick.json'), text);
      process.stdout.write('wrote bench/results/latest.quick.json (quick mode)\n');
    } else {
      const stamp = started
        .toISOString()
        .replace(/\.\d+Z$/, 'Z')
        .replace(/:/g, '-');
      const file = path.join(RESULTS_DIR, `${stamp}.json`);
      fs.writeFileSync(file, text);
      fs.writeFileSync(path.join(RESULTS_DIR, 'latest.json'), text);
      process.stdout.write(`wrote ${path.relative(ROOT, file)} and bench/results/latest.json\n`);
    }
  }
  clearTimeout(watchdog);
  if (Object.keys(failures).length > 0 || problems.length > 0) return 1;
  if (process.env.BENCH_ENFORCE === '1') {
    const missed = goals.filter((g) => g.met === false);
    const unjudged = goals.filter((g) => g.met === null);
    if (missed.length > 0 || unjudged.length > 0) {
      process.stdout.write(
        `BENCH_ENFORCE: ${missed.length} target(s) missed${unjudged.length > 0 ? `, ${unjudged.length} not measured or not judged` : ''}: ${[...missed, ...unjudged].map((g) => g.id).join(', ')}\n`,
      );
      return 1;
    }
  }
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
