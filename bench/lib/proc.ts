/**
 * Probes of this machine through /proc (Linux): a process's CPU seconds, RSS and children, the machine's busy
 * CPU, and waiting until other processes leave it quiet.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sleep } from './sleep.js';

/** Other processes using this many cores or more during a cell disturb it (bench/README.md, "noise cores"). */
export const NOISE_LIMIT_CORES = 0.1;

/** Whether a process with this pid exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const CLK_TCK = (() => {
  try {
    const n = Number.parseInt(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim(), 10);
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of one process, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // comm (field 2) may contain spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineBusySeconds(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …
  return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)) / CLK_TCK;
}

export function statusKb(pid: number, key: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

/**
 * Waits until processes other than ours leave the machine (nearly) idle for 2 s, or `maxS` pass.
 * Shared CI machines and agents running tests next to the bench otherwise skew every number.
 */
export async function waitQuiet(maxS: number, ownPids: number[]): Promise<boolean> {
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
export function resetPeakRss(pid: number): boolean {
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

export function descendants(pid: number): { pid: number; cmd: string }[] {
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
