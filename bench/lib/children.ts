/**
 * The bench's child processes: started, waited for, stopped — and killed on every way out (exit, error, signal,
 * watchdog), with the upstreams they spawned, their temp folders and their Redis keys.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { alive, descendants } from './proc.js';
import { unlinkLivePrefixesSync } from './redis.js';
import { sleep } from './sleep.js';

export const START_TIMEOUT_MS = 30_000;
export const STOP_GRACE_MS = 3_000;

const children = new Set<ChildProcess>();
/** Descendants (the upstreams of gatehouse / mcp-proxy) seen while running, killed by pid if they outlive their parent. */
const extraPids = new Set<number>();

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Temp folders (the gateway's generated config and log), removed on the way out. */
export const tempDirs = new Set<string>();
/** BENCH_KEEP_LOGS=1 (installCleanup): the temp folders stay. */
let keepTempDirs = false;

export function killNow(): void {
  for (const c of children)
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) safeKill(c.pid, 'SIGKILL');
  for (const pid of extraPids) if (alive(pid)) safeKill(pid, 'SIGKILL');
  unlinkLivePrefixesSync();
  if (!keepTempDirs) for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
}

function safeKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

export async function stopChild(child: ChildProcess, descendants: number[]): Promise<void> {
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

/** Kills what is left on exit, on SIGINT/SIGTERM/SIGHUP (exit 130) and on an uncaught exception (exit 1). */
export function installCleanup(keepLogs: boolean): void {
  keepTempDirs = keepLogs;
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
}

export function stderrTail(child: ChildProcess): () => string {
  let tail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (c: string) => {
    tail = (tail + c).slice(-4000);
  });
  return () => tail;
}

export function waitFor<T>(
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

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address() as net.AddressInfo;
      srv.close(() => resolve(addr.port));
    });
  });
}

export function getStatus(port: number, urlPath: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function settleDescendants(pid: number, expect: number): Promise<{ pid: number; cmd: string }[]> {
  let d = descendants(pid);
  for (let i = 0; i < 40 && d.length < expect; i++) {
    await sleep(50);
    d = descendants(pid);
  }
  for (const x of d) extraPids.add(x.pid);
  return d;
}
