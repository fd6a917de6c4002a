/**
 * Spawns a TypeScript server file as a real child process (`node --import tsx <file>`) and waits
 * for its readiness line on stderr: `... listening on http://HOST:PORT/path` or `... ready ...`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Matches the readiness lines of the orders and fixture servers; `url` is set for HTTP servers. */
const DEFAULT_READY = /listening on (?<url>https?:\/\/\S+)|\bready\b/;
const DEFAULT_TIMEOUT_MS = 20_000;
const KILL_GRACE_MS = 2_000;

export interface SpawnServerOptions {
  args?: readonly string[];
  /** Merged over process.env; an undefined value removes the variable. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Readiness pattern; a named group `url` becomes `SpawnedServer.url`. */
  ready?: RegExp;
  timeoutMs?: number;
  /** Keep stdout as a pipe for the caller to read (default: discarded). */
  stdout?: 'pipe' | 'ignore';
}

export interface SpawnedServer extends AsyncDisposable {
  /** From the readiness line, e.g. http://127.0.0.1:41234/mcp. */
  readonly url: string | undefined;
  readonly port: number | undefined;
  readonly proc: ChildProcess;
  /** Every stderr line so far (keeps growing after readiness). */
  readonly stderrLines: string[];
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | NodeJS.Signals>;
  /** Ends stdin, sends SIGTERM, SIGKILL after 2 s; resolves once the process has exited. */
  close(): Promise<void>;
}

const live = new Set<ChildProcess>();
// Last resort if a test file forgets to close: never leave servers behind the test worker.
process.once('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

export async function spawnServer(file: string, options: SpawnServerOptions = {}): Promise<SpawnedServer> {
  const path = isAbsolute(file) ? file : resolve(REPO_ROOT, file);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  const proc = spawn(process.execPath, ['--import', 'tsx', path, ...(options.args ?? [])], {
    cwd: REPO_ROOT, // --import tsx resolves from the working directory
    env,
    stdio: ['pipe', options.stdout ?? 'ignore', 'pipe'],
  });
  live.add(proc);

  const exited = new Promise<number | NodeJS.Signals>((resolveExit) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      resolveExit(code ?? signal ?? 'SIGKILL');
    });
  });
  // A child that exits first makes writes to its stdin fail with EPIPE; that is not our error.
  proc.stdin?.on('error', () => undefined);

  const stderrLines: string[] = [];
  const readyPattern = options.ready ?? DEFAULT_READY;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const describe = (): string => `${path}\n--- stderr ---\n${stderrLines.join('\n')}`;

  const readyMatch = await new Promise<RegExpMatchArray>((resolveReady, rejectReady) => {
    let partial = '';
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(
      () => settle(() => rejectReady(new Error(`server not ready after ${timeoutMs} ms: ${describe()}`))),
      timeoutMs,
    );
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        stderrLines.push(line);
        if (process.env.GATEHOUSE_TEST_VERBOSE) process.stderr.write(`[${proc.pid}] ${line}\n`);
        const match = readyPattern.exec(line);
        if (match) settle(() => resolveReady(match));
      }
    });
    proc.once('error', (error) =>
      settle(() => rejectReady(new Error(`spawn failed: ${error.message}: ${describe()}`))),
    );
    void exited.then((code) =>
      settle(() => rejectReady(new Error(`server exited (${String(code)}) before it was ready: ${describe()}`))),
    );
  }).catch(async (error: unknown) => {
    proc.kill('SIGKILL');
    await exited;
    throw error;
  });

  const url = readyMatch.groups?.url;
  const port = url === undefined ? undefined : Number(new URL(url).port);

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.stdin?.end();
      proc.kill('SIGTERM');
      const killTimer = setTimeout(() => proc.kill('SIGKILL'), KILL_GRACE_MS);
      await exited;
      clearTimeout(killTimer);
    })();
    return closing;
  };

  return { url, port, proc, stderrLines, exited, close, [Symbol.asyncDispose]: close };
}
