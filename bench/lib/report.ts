/**
 * The benchmark's results as text: the tables printed at the end of a run, the Markdown tables of docs/performance.md
 * (table.ts rebuilds them from a results file, so its figures are reproducible), and the JSON files
 * written to bench/results/.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RESULTS_DIR, ROOT } from './paths.js';
import { CLK_TCK, NOISE_LIMIT_CORES } from './proc.js';
import type { BenchReport, CellResult, Goal } from './results.js';

export function fmt(x: number | null | undefined, digits = 0): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

const times = (x: number | null): string => (x === null ? '–' : `${x.toFixed(2)}×`);

export function verdict(g: Goal): string {
  if (g.met === null) return g.measured === null ? 'not measured' : `not judged${g.note ? ` (${g.note})` : ''}`;
  return g.met ? 'met' : 'MISSED';
}

/** The tables of docs/performance.md: cells, ratios, the other measurements and the targets. */
export function markdown(report: BenchReport): string {
  const out: string[] = [];
  out.push(
    `| target | c | calls/s | p50 ms | p99 ms | errors | target CPU µs/call | peak RSS MB |`,
    `|---|--:|--:|--:|--:|--:|--:|--:|`,
    ...report.results.map(
      (r) =>
        `| ${r.target} | ${r.concurrency} | ${fmt(r.callsPerSec)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${r.errors} | ${fmt(r.targetCpuUsPerCall, 1)} | ${fmt(r.peakRssMb, 1)} |`,
    ),
    '',
    `| c | full / bare | full / mcp-proxy | full / supergateway | full / gatehouse-bare | redis / full |`,
    `|--:|--:|--:|--:|--:|--:|`,
    ...report.ratios.map(
      (r) =>
        `| ${r.concurrency} | ${times(r.fullOverBare)} | ${times(r.fullOverMcpProxy)} | ${times(r.fullOverSupergateway)} | ${times(r.fullOverGatehouseBare)} | ${times(r.redisOverFull)} |`,
    ),
    '',
  );
  const e = report.extras;
  out.push('| measurement | result |', '|---|---|');
  if (e.idleSessions) {
    const i = e.idleSessions;
    out.push(
      `| idle sessions (gatehouse-full) | ${fmt(i.sessions)} sessions: RSS ${fmt(i.rssBeforeMb, 1)} → ${fmt(i.rssAfterMb, 1)} MB (${fmt(i.kbPerSession, 1)} kB per session) |`,
    );
  }
  if (e.ready) {
    out.push(
      `| ready, ${e.ready.upstreams} stdio upstreams (gatehouse-full) | listening ${fmt(e.ready.spawnToListeningMs)} ms, /readyz 200 ${fmt(e.ready.spawnToReadyMs)} ms after spawn |`,
    );
  }
  if (e.toolsList) {
    const t = e.toolsList;
    out.push(
      `| tools/list, ${t.upstreams} upstreams × ${t.toolsPerUpstream} tools (auth + policy) | ${fmt(t.toolsListed)} tools, ${fmt(t.responseBytes / 1024, 0)} kB: p50 ${fmt(t.p50Ms, 2)} ms, p99 ${fmt(t.p99Ms, 2)} ms |`,
    );
  }
  if (e.policy) {
    out.push(
      `| policy decision, ${fmt(e.policy.rules)} rules | ${fmt(e.policy.usPerDecision, 2)} µs per decision (${fmt(e.policy.usPerVisible, 2)} µs per listed tool) |`,
    );
  }
  out.push('', '| target (issue) | goal | measured | |', '|---|--:|--:|---|');
  for (const g of report.goals) {
    const m =
      g.measured === null
        ? '–'
        : g.unit === '×'
          ? `${g.measured.toFixed(2)}×`
          : `${fmt(g.measured, g.unit === 'MB' || g.unit === 'ms' ? (g.measured < 10 ? 2 : 0) : 1)} ${g.unit}`;
    out.push(`| ${g.label} | ${g.target} | ${m} | ${verdict(g)} |`);
  }
  return out.join('\n');
}

/** One line that says what the figures are (mode, runs, date, machine): goes above the tables. */
export function caption(report: BenchReport): string {
  const m = report.machine as { cpus?: number; node?: string; cpuModel?: string };
  return (
    `${report.mode === 'quick' ? '**QUICK run (smoke test, not a measurement)**' : 'Full run'}: ` +
    `${report.runs === 1 ? 'one run' : `medians of ${report.runs} runs`}, ${report.warmupSeconds} s warm-up + ${report.measureSeconds} s per cell, ` +
    `${report.date.slice(0, 10)}, ${m.cpus ?? '?'} × ${m.cpuModel ?? 'cpu'}, Node ${m.node ?? '?'}` +
    `${report.git.commit ? `, commit ${report.git.commit}${report.git.dirty ? ' (src modified)' : ''}` : ''}.`
  );
}

/** A plain-text table: columns padded to their widest cell, `rightAlign` for the figures. */
export function table(headers: string[], rows: string[][], rightAlign: boolean[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (rightAlign[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The machine of a run, for the record (CLK_TCK: the unit of /proc's CPU times). */
export function machineInfo(): Record<string, unknown> {
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? null,
    clkTck: CLK_TCK,
  };
}

export function gitInfo(): { commit: string | null; dirty: boolean | null } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim().length > 0;
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

/** The line printed as each cell is measured. */
export function cellLine(r: CellResult): string {
  return (
    `  c=${String(r.concurrency).padEnd(3)} ${fmt(r.callsPerSec).padStart(7)} calls/s  p50 ${fmt(r.p50Ms, 2)} ms  p99 ${fmt(r.p99Ms, 2)} ms  ` +
    `errors ${r.errors}  cpu ${fmt(r.targetCpuUsPerCall, 1)} µs/call  rss ${fmt(r.peakRssMb, 1)} MB` +
    `${r.otherCpuCores >= NOISE_LIMIT_CORES ? `  (noise: other processes used ${r.otherCpuCores.toFixed(2)} cores)` : ''}\n`
  );
}

/** The end of a run: the cells, the ratios, the targets of the issue, the notes, and what was skipped or failed. */
export function printSummary(report: BenchReport): void {
  const { results, ratios, goals, targets, skipped, problems, failures } = report;
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
  process.stdout.write(
    `\n${report.runs > 1 ? `medians of ${report.runs} runs:\n` : ''}${table(headers, rows, right)}\n\n`,
  );
  process.stdout.write(
    `${table(
      ['c', 'full / bare', 'full / mcp-proxy', 'full / supergateway', 'full / gatehouse-bare', 'redis / full'],
      ratios.map((r) => [
        String(r.concurrency),
        times(r.fullOverBare),
        times(r.fullOverMcpProxy),
        times(r.fullOverSupergateway),
        times(r.fullOverGatehouseBare),
        times(r.redisOverFull),
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
  for (const [t, n] of Object.entries(targets))
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
}

/** BENCH_ENFORCE=1: true when every goal is met; otherwise says which are missed or not judged. */
export function goalsAllMet(goals: readonly Goal[]): boolean {
  const missed = goals.filter((g) => g.met === false);
  const unjudged = goals.filter((g) => g.met === null);
  if (missed.length === 0 && unjudged.length === 0) return true;
  process.stdout.write(
    `BENCH_ENFORCE: ${missed.length} target(s) missed${unjudged.length > 0 ? `, ${unjudged.length} not measured or not judged` : ''}: ${[...missed, ...unjudged].map((g) => g.id).join(', ')}\n`,
  );
  return false;
}

/** bench/results/: full mode `<ISO date>.json` and latest.json, quick mode latest.quick.json only. */
export function writeResults(report: BenchReport): void {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const text = `${JSON.stringify(report, null, 2)}\n`;
  if (report.mode === 'quick') {
    // A smoke test: one file, overwritten each time, never mistaken for a real measurement.
    fs.writeFileSync(path.join(RESULTS_DIR, 'latest.quick.json'), text);
    process.stdout.write('wrote bench/results/latest.quick.json (quick mode)\n');
  } else {
    const stamp = report.date.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
    const file = path.join(RESULTS_DIR, `${stamp}.json`);
    fs.writeFileSync(file, text);
    fs.writeFileSync(path.join(RESULTS_DIR, 'latest.json'), text);
    process.stdout.write(`wrote ${path.relative(ROOT, file)} and bench/results/latest.json\n`);
  }
}
