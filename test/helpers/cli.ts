/** Runs the real `gatehouse` CLI (src/main.ts through tsx) as a child process, and reaps it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './spawn-server.js';

export const MAIN = join(REPO_ROOT, 'src/main.ts');

export interface CliRun {
  proc: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<number | null>;
}

const live = new Set<ChildProcess>();

/** Start `gatehouse <args>`; output is collected as it arrives. */
export function cli(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): CliRun {
  const proc = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
  });
  live.add(proc);
  const stdout: string[] = [];
  const stderr: string[] = [];
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => stdout.push(c));
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => stderr.push(c));
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      live.delete(proc);
      resolve(code);
    }),
  );
  return { proc, stdout, stderr, exited };
}

/** Wait for a run to end (SIGKILL after `timeoutMs`). */
export async function finished(
  run: CliRun,
  timeoutMs = 20_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const timer = setTimeout(() => run.proc.kill('SIGKILL'), timeoutMs);
  const code = await run.exited;
  clearTimeout(timer);
  return { code, stdout: run.stdout.join(''), stderr: run.stderr.join('') };
}

/** Kill whatever a test file left running (call from afterAll). */
export function killAllCli(): void {
  for (const p of live) p.kill('SIGKILL');
}
