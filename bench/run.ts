#!/usr/bin/env node
/**
 * `npm run bench`: throughput, latency, CPU and memory of the gateway against its baselines, on loopback only.
 *
 * Targets (each a child process; the load generator runs in this process):
 *   bare          a bare node:http server that parses each JSON-RPC request and answers it (bench/bare-server.ts)
 *   direct-stdio  the echo upstream (bench/echo-server.ts) driven over its own stdin/stdout
 *   gatehouse     `node dist/src/main.js start` in front of the echo upstream over stdio
 *   mcp-proxy     `mcp-proxy` (node_modules/.bin) in front of the same echo upstream over stdio
 *
 * For every target × concurrency: closed loop (N workers, each sends its next call when its reply arrives),
 * warm-up, then a measured window: calls/s, p50/p99 latency, errors, the target process's CPU per call (from
 * /proc/<pid>/stat, the target process only — not its upstream child) and its peak RSS (VmHWM).
 *
 * Environment:
 *   BENCH_SECONDS=5       measured seconds per cell          BENCH_WARMUP=2   warm-up seconds per cell
 *   BENCH_QUICK=1         1 s measured + 0.5 s warm-up (CI smoke test, < 60 s in all)
 *   BENCH_CONCURRENCY=1,16,64                                 BENCH_TARGETS=bare,direct-stdio,gatehouse,mcp-proxy
 *   BENCH_GATEHOUSE_LOG_LEVEL=info  the gateway's logging.level (info = audit records on, as in production)
 *   BENCH_GATEHOUSE_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'  extra node flags for the gateway process
 *   BENCH_KEEP_LOGS=1     keep the gateway's generated config and log in their temp folder
 *   BENCH_ENFORCE=1       exit 1 when the c=64 goals (≥ 3× mcp-proxy, < 120 µs gateway CPU per call) are missed
 *   BENCH_NO_WRITE=1      do not write bench/results/*.json (full mode writes <ISO date>.json and latest.json,
 *                         quick mode only latest.quick.json)
 *   BENCH_WAIT_QUIET=S    before each cell wait up to S s until other processes leave the machine idle, and measure
 *                         a cell again (up to 2 times) when others used ≥ 0.1 cores during it (shared machines)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPolicyDecideBench } from './policy-decide.js';

// ------------------------------------------------------------------------------------------- settings

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = path.resolve(HERE, '..', '..');
const ECHO_SERVER = path.join(HERE, 'echo-server.js');
const BARE_SERVER = path.join(HERE, 'bare-server.js');
const GATEHOUSE_MAIN = path.join(ROOT, 'dist', 'src', 'main.js');
const MCP_PROXY_BIN = path.join(ROOT, 'node_modules', '.bin', 'mcp-proxy');
const RESULTS_DIR = path.join(ROOT, 'bench', 'results');

const QUICK = process.env.BENCH_QUICK === '1';
const MEASURE_S = numberEnv('BENCH_SECONDS', QUICK ? 1 : 5);
const WARMUP_S = numberEnv('BENCH_WARMUP', QUICK ? 0.5 : 2);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,16,64').split(',').map((s) => Number.parseInt(s.trim(), 10));
const ALL_TARGETS = ['bare', 'direct-stdio', 'gatehouse', 'mcp-proxy'] as const;
type TargetName = (typeof ALL_TARGETS)[number];
const TARGETS = (process.env.BENCH_TARGETS ?? ALL_TARGETS.join(',')).split(',').map((s) => s.trim()) as TargetName[];
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
for (const t of TARGETS) if (!ALL_TARGETS.includes(t)) fail(`BENCH_TARGETS: unknown target ${t} (known: ${ALL_TARGETS.join(', ')})`);
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
  for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) safeKill(c.pid, 'SIGKILL');
  for (const pid of extraPids) if (alive(pid)) safeKill(pid, 'SIGKILL');
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
        cmd = fs.readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0').filter(Boolean).map((a) => path.basename(a)).join(' ');
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
function parseReply(contentType: string | undefined, text: string, id: number | null): Record<string, unknown> | undefined {
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
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency, keepAliveMsecs: 30_000 });
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
        res.on('end', () => finish(res.statusCode === 200 && goodToolReply(parseReply(res.headers['content-type'], text, id), id)));
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
function post(ep: HttpEndpoint, headers: Record<string, string>, body: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: ep.host,
        port: ep.port,
        path: ep.path,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': String(Buffer.byteLength(body)), ...headers },
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

/** initialize → mcp-session-id → notifications/initialized, then checks that `tool` is listed and echoes. */
async function openMcpSession(ep: HttpEndpoint, tool: string): Promise<McpSession> {
  const init = await post(ep, {}, JSON.stringify({
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'gatehouse-bench', version: '1.0.0' } },
  }));
  const sid = init.headers['mcp-session-id'];
  const reply = parseReply(init.headers['content-type'], init.text, 0);
  if (init.status !== 200 || typeof sid !== 'string' || reply === undefined || !('result' in reply)) {
    throw new Error(`initialize failed: HTTP ${init.status}, session ${String(sid)}: ${init.text.slice(0, 300)}`);
  }
  const version = ((reply.result as { protocolVersion?: unknown }).protocolVersion as string | undefined) ?? PROTOCOL_VERSION;
  const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': version };
  const note = await post(ep, headers, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
  if (note.status !== 202 && note.status !== 200) throw new Error(`notifications/initialized: HTTP ${note.status}: ${note.text.slice(0, 300)}`);

  const list = await post(ep, headers, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }));
  const tools = (parseReply(list.headers['content-type'], list.text, 1)?.result as { tools?: { name: string }[] } | undefined)?.tools ?? [];
  if (!tools.some((t) => t.name === tool)) throw new Error(`tools/list has no ${tool}: ${list.text.slice(0, 300)}`);
  const call = await post(ep, headers, toolCallBody(2, tool));
  const msg = parseReply(call.headers['content-type'], call.text, 2);
  const text = (msg?.result as { content?: { text?: string }[] } | undefined)?.content?.[0]?.text;
  if (call.status !== 200 || text !== ECHO_TEXT) throw new Error(`check call failed: HTTP ${call.status}: ${call.text.slice(0, 300)}`);
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

function waitFor<T>(what: string, child: ChildProcess, errTail: () => string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
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
      } else setTimeout(() => void tick(), 50);
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
    rpc.request('initialize', { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'gatehouse-bench', version: '1.0.0' } }),
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

async function startGatehouse(): Promise<Running> {
  if (!fs.existsSync(GATEHOUSE_MAIN)) throw new Error(`${GATEHOUSE_MAIN} missing: build first (npm run build)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-'));
  tempDirs.add(dir);
  const configFile = path.join(dir, 'gatehouse.yaml');
  const logFile = path.join(dir, 'gatehouse.log');
  // Below info the `gatehouse listening` line (which names the port) is not logged: pick the port here then.
  const logsListening = ['info', 'debug', 'trace'].includes(GATEHOUSE_LOG_LEVEL);
  const fixedPort = logsListening ? 0 : await freePort();
  fs.writeFileSync(
    configFile,
    [
      '# generated by bench/run.ts',
      'server:',
      '  host: 127.0.0.1',
      `  port: ${fixedPort}`,
      '  path: /mcp',
      'auth:',
      '  mode: none',
      'logging:',
      `  level: ${GATEHOUSE_LOG_LEVEL}`,
      'upstreams:',
      '  - name: bench',
      '    transport: stdio',
      `    command: ${JSON.stringify(process.execPath)}`,
      `    args: [${JSON.stringify(ECHO_SERVER)}]`,
      '    envAllow: [PATH, HOME]',
      '',
    ].join('\n'),
  );
  // The gateway logs (audit records included) to a file: reading them here would cost the load generator CPU.
  const logFd = fs.openSync(logFile, 'w');
  const child = track(spawn(process.execPath, [...GATEHOUSE_NODE_ARGS, GATEHOUSE_MAIN, 'start', '--config', configFile], { cwd: ROOT, stdio: ['ignore', logFd, 'pipe'] }));
  fs.closeSync(logFd);
  const errTail = stderrTail(child);
  const address = await waitFor('gatehouse', child, errTail, async () => {
    if (!logsListening) return (await getStatus(fixedPort, '/readyz')) === 200 ? `http://127.0.0.1:${fixedPort}/mcp` : undefined;
    const text = fs.readFileSync(logFile, 'utf8');
    for (const line of text.split('\n')) {
      if (!line.includes('gatehouse listening')) continue;
      const rec = JSON.parse(line) as { msg?: string; address?: string };
      if (rec.msg === 'gatehouse listening' && typeof rec.address === 'string') return rec.address;
    }
    return undefined;
  });
  const url = new URL(address);
  const ep = { host: url.hostname, port: Number(url.port), path: url.pathname };
  const desc = await settleDescendants(child.pid!, 1);
  const upstream = desc.find((d) => d.cmd.includes('echo-server'));
  const notes = [`logging.level ${GATEHOUSE_LOG_LEVEL}`, ...(GATEHOUSE_NODE_ARGS.length ? [`node ${GATEHOUSE_NODE_ARGS.join(' ')}`] : [])];
  if (process.env.BENCH_KEEP_LOGS === '1') notes.push(`config ${configFile}`, `log ${logFile}`);
  return {
    pid: child.pid!,
    descendants: desc,
    ...(upstream ? { upstreamPid: upstream.pid } : {}),
    notes,
    driver: async (c) => {
      const s = await openMcpSession(ep, 'bench__echo');
      return httpDriver(ep, c, 'bench__echo', s.headers);
    },
    stop: async () => {
      await stopChild(child, desc.map((d) => d.pid));
      if (process.env.BENCH_KEEP_LOGS !== '1') fs.rmSync(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    },
  };
}

async function startMcpProxy(): Promise<Running> {
  if (!fs.existsSync(MCP_PROXY_BIN)) throw new Error(`${MCP_PROXY_BIN} missing`);
  // Run the bin's script with this node directly, so the pid measured is the proxy itself (no shell, no npx).
  const script = fs.realpathSync(MCP_PROXY_BIN);
  const port = await freePort();
  const args = [script, '--host', '127.0.0.1', '--port', String(port), '--server', 'stream', '--', process.execPath, ECHO_SERVER];
  const child = track(spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  const errTail = stderrTail(child);
  child.stdout!.resume(); // a startup line only; drain it
  await waitFor('mcp-proxy', child, errTail, async () => ((await canConnect(port)) ? true : undefined));
  const ep = { host: '127.0.0.1', port, path: '/mcp' };
  const desc = await settleDescendants(child.pid!, 1);
  const upstream = desc.find((d) => d.cmd.includes('echo-server'));
  const notes = [`mcp-proxy ${args.slice(1, -3).join(' ')} (defaults otherwise: event store on)`];
  const others = desc.filter((d) => d !== upstream);
  notes.push(others.length === 0 ? 'mcp-proxy runs as one process (+ the echo upstream): no fork' : `mcp-proxy also runs: ${others.map((d) => d.cmd).join('; ')}`);
  return {
    pid: child.pid!,
    descendants: desc,
    ...(upstream ? { upstreamPid: upstream.pid } : {}),
    notes,
    driver: async (c) => {
      const s = await openMcpSession(ep, 'echo');
      return httpDriver(ep, c, 'echo', s.headers);
    },
    stop: () => stopChild(child, desc.map((d) => d.pid)),
  };
}

const STARTERS: Record<TargetName, () => Promise<Running>> = {
  bare: startBare,
  'direct-stdio': startDirectStdio,
  gatehouse: startGatehouse,
  'mcp-proxy': startMcpProxy,
};

// ------------------------------------------------------------------------------------------- measuring

interface CellResult {
  target: TargetName;
  concurrency: number;
  seconds: number;
  calls: number;
  callsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  warmupErrors: number;
  /** The target process only (for gatehouse / mcp-proxy: not the echo upstream). */
  targetCpuUsPerCall: number;
  /** The echo upstream behind gatehouse / mcp-proxy. */
  upstreamCpuUsPerCall: number | null;
  /** The load generator (this process). */
  clientCpuUsPerCall: number;
  peakRssMb: number;
  peakRssCumulative: boolean;
  /** Cores busy with anything but the target, its upstream and the load generator during the window (noise). */
  otherCpuCores: number;
}

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
    otherCpuCores: round(Math.max(0, sys1 - sys0 - (cpu1 - cpu0) - (up1 - up0) - (me1.user + me1.system) / 1e6) / seconds, 2),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ------------------------------------------------------------------------------------------- reporting

function table(headers: string[], rows: string[][], rightAlign: boolean[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (rightAlign[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function fmt(x: number | null, digits = 0): string {
  if (x === null || !Number.isFinite(x)) return '–';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function gitInfo(): { commit: string | null; dirty: boolean | null } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim().length > 0;
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

// ------------------------------------------------------------------------------------------- main

async function main(): Promise<number> {
  const cells = TARGETS.length * CONCURRENCY.length;
  const budgetMs = cells * (WARMUP_S + MEASURE_S) * 1000 + TARGETS.length * (START_TIMEOUT_MS + 2 * STOP_GRACE_MS) + cells * DRAIN_TIMEOUT_MS + 30_000 +
    (WAIT_QUIET_S > 0 ? cells * (MAX_NOISY_RETRIES + 1) * (WAIT_QUIET_S * 1000 + (WARMUP_S + MEASURE_S) * 1000 + 3000) : 0);
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: over the time budget (${Math.round(budgetMs / 1000)} s): stopping\n`);
    killNow();
    process.exit(1);
  }, budgetMs);
  watchdog.unref();

  const started = new Date();
  process.stdout.write(
    `gatehouse bench — ${QUICK ? 'QUICK' : 'full'} mode: ${WARMUP_S} s warm-up + ${MEASURE_S} s measured per cell; ` +
      `concurrency ${CONCURRENCY.join(', ')}; targets ${TARGETS.join(', ')}\n` +
      `node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, CLK_TCK ${CLK_TCK}\n\n`,
  );

  const results: CellResult[] = [];
  const targetNotes: Record<string, { notes: string[]; descendants: { pid: number; cmd: string }[] }> = {};
  const failures: Record<string, string> = {};
  for (const target of TARGETS) {
    let run: Running | undefined;
    try {
      process.stdout.write(`${target}: starting… `);
      run = await STARTERS[target]();
      targetNotes[target] = { notes: run.notes, descendants: run.descendants };
      process.stdout.write(`pid ${run.pid}${run.descendants.length ? ` (children: ${run.descendants.map((d) => `${d.pid} ${d.cmd}`).join(', ')})` : ''}\n`);
      for (const c of CONCURRENCY) {
        if (!alive(run.pid)) throw new Error(`${target} (pid ${run.pid}) died`);
        let r: CellResult;
        for (let attempt = 1; ; attempt++) {
          if (WAIT_QUIET_S > 0 && !(await waitQuiet(WAIT_QUIET_S, [run.pid, ...(run.upstreamPid !== undefined ? [run.upstreamPid] : [])]))) {
            process.stdout.write(`  (machine not quiet after ${WAIT_QUIET_S} s: measuring anyway)\n`);
          }
          r = await measure(target, run, c);
          if (WAIT_QUIET_S === 0 || r.otherCpuCores < NOISE_LIMIT_CORES || attempt > MAX_NOISY_RETRIES) break;
          process.stdout.write(`  c=${String(c).padEnd(3)} disturbed (other processes used ${r.otherCpuCores.toFixed(2)} cores): measuring again\n`);
        }
        results.push(r);
        process.stdout.write(
          `  c=${String(c).padEnd(3)} ${fmt(r.callsPerSec).padStart(7)} calls/s  p50 ${fmt(r.p50Ms, 2)} ms  p99 ${fmt(r.p99Ms, 2)} ms  ` +
            `errors ${r.errors}  cpu ${fmt(r.targetCpuUsPerCall, 1)} µs/call  rss ${fmt(r.peakRssMb, 1)} MB` +
            `${r.otherCpuCores >= NOISE_LIMIT_CORES ? `  (noise: other processes used ${r.otherCpuCores.toFixed(2)} cores)` : ''}\n`,
        );
      }
    } catch (err) {
      failures[target] = err instanceof Error ? err.message : String(err);
      process.stdout.write(`\n  ${target} FAILED: ${failures[target]}\n`);
    } finally {
      if (run) await run.stop();
    }
  }

  // ratios
  const get = (t: TargetName, c: number): CellResult | undefined => results.find((r) => r.target === t && r.concurrency === c);
  const ratios = CONCURRENCY.map((c) => {
    const g = get('gatehouse', c);
    const p = get('mcp-proxy', c);
    const b = get('bare', c);
    return {
      concurrency: c,
      gatehouseOverMcpProxy: g && p && p.callsPerSec > 0 ? round(g.callsPerSec / p.callsPerSec, 2) : null,
      gatehouseOverBare: g && b && b.callsPerSec > 0 ? round(g.callsPerSec / b.callsPerSec, 2) : null,
    };
  });
  const g64 = get('gatehouse', 64);
  const r64 = ratios.find((r) => r.concurrency === 64);
  const goals = {
    throughputAtLeast3xMcpProxyAtC64: r64?.gatehouseOverMcpProxy == null ? null : r64.gatehouseOverMcpProxy >= 3,
    cpuUnder120UsPerCallAtC64: g64 === undefined ? null : g64.targetCpuUsPerCall < 120,
  };

  // readable table
  const headers = ['target', 'c', 'calls/s', 'p50 ms', 'p99 ms', 'errors', 'cpu µs/call', 'upstream µs/call', 'client µs/call', 'peak RSS MB', 'noise cores'];
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
  process.stdout.write(`\n${table(headers, rows, right)}\n\n`);
  process.stdout.write(
    `${table(
      ['c', 'gatehouse / mcp-proxy', 'gatehouse / bare'],
      ratios.map((r) => [String(r.concurrency), r.gatehouseOverMcpProxy === null ? '–' : `${r.gatehouseOverMcpProxy.toFixed(2)}×`, r.gatehouseOverBare === null ? '–' : `${r.gatehouseOverBare.toFixed(2)}×`]),
      [true, true, true],
    )}\n\n`,
  );
  const verdict = (v: boolean | null): string => (v === null ? 'not measured' : v ? 'MET' : 'MISSED');
  process.stdout.write(
    `goal at c=64: gatehouse ≥ 3× mcp-proxy throughput — ${verdict(goals.throughputAtLeast3xMcpProxyAtC64)}` +
      (r64?.gatehouseOverMcpProxy != null ? ` (${r64.gatehouseOverMcpProxy.toFixed(2)}×)` : '') +
      `\ngoal at c=64: gateway CPU < 120 µs per call — ${verdict(goals.cpuUnder120UsPerCallAtC64)}` +
      (g64 ? ` (${fmt(g64.targetCpuUsPerCall, 1)} µs)` : '') +
      '\n',
  );
  for (const [t, n] of Object.entries(targetNotes)) if (n.notes.length > 0) process.stdout.write(`note ${t}: ${n.notes.join('; ')}\n`);
  const noisy = results.filter((r) => r.otherCpuCores >= NOISE_LIMIT_CORES);
  if (noisy.length > 0) {
    process.stdout.write(`warning: other processes used CPU during ${noisy.length} cell(s) (up to ${Math.max(...noisy.map((r) => r.otherCpuCores)).toFixed(2)} cores): numbers are disturbed, rerun on a quiet machine\n`);
  }
  for (const [t, msg] of Object.entries(failures)) process.stdout.write(`FAILED ${t}: ${msg}\n`);

  // markdown
  const md = [
    `| target | c | calls/s | p50 ms | p99 ms | errors | target CPU µs/call | peak RSS MB |`,
    `|---|--:|--:|--:|--:|--:|--:|--:|`,
    ...results.map((r) => `| ${r.target} | ${r.concurrency} | ${fmt(r.callsPerSec)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${r.errors} | ${fmt(r.targetCpuUsPerCall, 1)} | ${fmt(r.peakRssMb, 1)} |`),
    '',
    `| c | gatehouse / mcp-proxy | gatehouse / bare |`,
    `|--:|--:|--:|`,
    ...ratios.map((r) => `| ${r.concurrency} | ${r.gatehouseOverMcpProxy === null ? '–' : `${r.gatehouseOverMcpProxy.toFixed(2)}×`} | ${r.gatehouseOverBare === null ? '–' : `${r.gatehouseOverBare.toFixed(2)}×`} |`),
  ].join('\n');
  process.stdout.write(`\nMarkdown (for the README):\n\n${md}\n\n`);

  // The policy decision at 1,000 rules (in process: a pure function, no server involved).
  const policy = runPolicyDecideBench(QUICK ? 20_000 : 200_000);
  process.stdout.write(
    `\npolicy decide: ${policy.usPerDecision} µs per decision over ${policy.rules} rules (target ≤ ${policy.targetUs} µs: ${policy.withinTarget ? 'MET' : 'MISSED'}); compiled in ${policy.compileMs} ms\n`,
  );
  const report = {
    date: started.toISOString(),
    mode: QUICK ? 'quick' : 'full',
    warmupSeconds: WARMUP_S,
    waitQuietSeconds: WAIT_QUIET_S,
    measureSeconds: MEASURE_S,
    concurrency: CONCURRENCY,
    machine: { node: process.version, platform: `${os.platform()} ${os.release()}`, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, clkTck: CLK_TCK },
    git: gitInfo(),
    workload: { tool: 'echo', text: ECHO_TEXT, protocolVersion: PROTOCOL_VERSION, gatehouseLogLevel: GATEHOUSE_LOG_LEVEL },
    targets: targetNotes,
    results,
    ratios,
    goals,
    policy,
    failures,
  };
  if (process.env.BENCH_NO_WRITE !== '1') {
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    const text = `${JSON.stringify(report, null, 2)}\n`;
    if (QUICK) {
      // A smoke test: one file, overwritten each time, never mistaken for a real measurement.
      fs.writeFileSync(path.join(RESULTS_DIR, 'latest.quick.json'), text);
      process.stdout.write('wrote bench/results/latest.quick.json (quick mode)\n');
    } else {
      const stamp = started.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
      const file = path.join(RESULTS_DIR, `${stamp}.json`);
      fs.writeFileSync(file, text);
      fs.writeFileSync(path.join(RESULTS_DIR, 'latest.json'), text);
      process.stdout.write(`wrote ${path.relative(ROOT, file)} and bench/results/latest.json\n`);
    }
  }
  clearTimeout(watchdog);
  const missed = goals.throughputAtLeast3xMcpProxyAtC64 === false || goals.cpuUnder120UsPerCallAtC64 === false;
  if (Object.keys(failures).length > 0) return 1;
  return process.env.BENCH_ENFORCE === '1' && missed ? 1 : 0;
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
