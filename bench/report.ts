/**
 * The benchmark's results as data: the JSON written to bench/results/, medians over runs, the ratios, the
 * targets of the performance issue, and the Markdown tables (run.ts prints them, table.ts rebuilds them from a
 * results file so the tables of docs/performance.md are reproducible).
 */
import type { PolicyBenchResult } from './policy-decide.js';

export interface CellResult {
  target: string;
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
  /** The target process only (for gateways / proxies: not the echo upstream). */
  targetCpuUsPerCall: number;
  /** The echo upstream behind a gateway or proxy. */
  upstreamCpuUsPerCall: number | null;
  /** The load generator (the bench process). */
  clientCpuUsPerCall: number;
  peakRssMb: number;
  peakRssCumulative: boolean;
  /** Cores busy with anything but the target, its upstream and the load generator during the window (noise). */
  otherCpuCores: number;
}

export interface IdleSessionsResult {
  sessions: number;
  /** VmRSS of the gateway (gatehouse-full, one upstream) after start and after opening the sessions. */
  rssBeforeMb: number;
  rssAfterMb: number;
  kbPerSession: number;
  openSeconds: number;
}

export interface ReadyResult {
  upstreams: number;
  attempts: number;
  /** From spawn to the `gatehouse listening` log line (its own timestamp). */
  spawnToListeningMs: number | null;
  /** From spawn to the first 200 of /readyz (polled every 5 ms). */
  spawnToReadyMs: number;
}

export interface ToolsListResult {
  upstreams: number;
  toolsPerUpstream: number;
  toolsListed: number;
  responseBytes: number;
  calls: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** From spawn to ready with all the upstreams (not a target: for the record). */
  startMs: number;
}

export interface Extras {
  idleSessions?: IdleSessionsResult;
  ready?: ReadyResult;
  toolsList?: ToolsListResult;
  policy?: PolicyBenchResult;
}

export interface Ratio {
  concurrency: number;
  fullOverBare: number | null;
  fullOverMcpProxy: number | null;
  fullOverSupergateway: number | null;
  /** gatehouse-full / gatehouse-bare: what the protections cost in throughput. */
  fullOverGatehouseBare: number | null;
  redisOverFull: number | null;
}

export interface Goal {
  id: string;
  label: string;
  target: string;
  measured: number | null;
  unit: string;
  /** null: not measured (or not judged, see note). */
  met: boolean | null;
  note?: string;
}

export interface BenchReport {
  date: string;
  mode: 'quick' | 'full';
  runs: number;
  warmupSeconds: number;
  measureSeconds: number;
  waitQuietSeconds: number;
  concurrency: number[];
  machine: Record<string, unknown>;
  git: { commit: string | null; dirty: boolean | null };
  workload: Record<string, unknown>;
  targets: Record<string, { notes: string[]; descendants: { pid: number; cmd: string }[] }>;
  /** Medians over the runs (the run itself when runs = 1). */
  results: CellResult[];
  ratios: Ratio[];
  extras: Extras;
  goals: Goal[];
  /** Every run's own figures (runs > 1). */
  perRun?: { results: CellResult[]; extras: Extras }[];
  skipped: Record<string, string>;
  failures: Record<string, string>;
  /** Figures that make a cell meaningless: errors in a gatehouse cell, an empty audit file, … */
  problems: string[];
}

export function median(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** Field by field: the median of the numbers, the first value of anything else; errors are summed. */
export function medianRecord<T extends object>(records: readonly T[], sumKeys: readonly string[] = []): T {
  const first = records[0]!;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(first)) {
    const values = records.map((r) => (r as Record<string, unknown>)[k]);
    if (typeof v === 'number' && values.every((x) => typeof x === 'number')) {
      out[k] = sumKeys.includes(k)
        ? (values as number[]).reduce((a, b) => a + b, 0)
        : round(median(values as number[]), 3);
    } else if (
      v !== null &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      values.every((x) => x !== null && typeof x === 'object')
    ) {
      out[k] = medianRecord(values as object[], sumKeys);
    } else out[k] = v;
  }
  return out as T;
}

/** One cell per target × concurrency, each field the median of the runs that measured it (errors: the sum). */
export function medianCells(runs: readonly CellResult[][]): CellResult[] {
  const keys: string[] = [];
  const groups = new Map<string, CellResult[]>();
  for (const run of runs) {
    for (const c of run) {
      const k = `${c.target}@${c.concurrency}`;
      if (!groups.has(k)) {
        groups.set(k, []);
        keys.push(k);
      }
      groups.get(k)!.push(c);
    }
  }
  return keys.map((k) => medianRecord(groups.get(k)!, ['calls', 'errors', 'warmupErrors']));
}

export function medianExtras(runs: readonly Extras[]): Extras {
  const out: Extras = {};
  for (const key of ['idleSessions', 'ready', 'toolsList', 'policy'] as const) {
    const values = runs.map((r) => r[key]).filter((v) => v !== undefined);
    if (values.length > 0) (out as Record<string, unknown>)[key] = medianRecord(values as object[]);
  }
  return out;
}

export function computeRatios(cells: readonly CellResult[], concurrency: readonly number[]): Ratio[] {
  const get = (t: string, c: number): CellResult | undefined =>
    cells.find((r) => r.target === t && r.concurrency === c);
  const ratio = (a: CellResult | undefined, b: CellResult | undefined): number | null =>
    a && b && b.callsPerSec > 0 && a.errors === 0 ? round(a.callsPerSec / b.callsPerSec, 2) : null;
  return concurrency.map((c) => {
    const full = get('gatehouse-full', c);
    return {
      concurrency: c,
      fullOverBare: ratio(full, get('bare', c)),
      fullOverMcpProxy: ratio(full, get('mcp-proxy', c)),
      fullOverSupergateway: ratio(full, get('supergateway', c)),
      fullOverGatehouseBare: ratio(full, get('gatehouse-bare', c)),
      redisOverFull: ratio(get('gatehouse-redis', c), full),
    };
  });
}

/** The targets of the performance issue (medians of three runs, c=64 unless stated). */
export function evaluateGoals(
  cells: readonly CellResult[],
  ratios: readonly Ratio[],
  extras: Extras,
  fullIdleSessions: number,
): Goal[] {
  const full = (c: number): CellResult | undefined =>
    cells.find((r) => r.target === 'gatehouse-full' && r.concurrency === c && r.errors === 0);
  const r64 = ratios.find((r) => r.concurrency === 64);
  const judge = (
    measured: number | null | undefined,
    ok: (x: number) => boolean,
  ): { measured: number | null; met: boolean | null } =>
    measured === null || measured === undefined || !Number.isFinite(measured)
      ? { measured: null, met: null }
      : { measured, met: ok(measured) };
  const goals: Goal[] = [
    {
      id: 'throughput-vs-mcp-proxy',
      label: 'gatehouse-full throughput / mcp-proxy, c=64',
      target: '≥ 5×',
      unit: '×',
      ...judge(r64?.fullOverMcpProxy, (x) => x >= 5),
    },
    {
      id: 'throughput-vs-bare',
      label: 'gatehouse-full throughput / bare HTTP, c=64',
      target: '≥ 0.5×',
      unit: '×',
      ...judge(r64?.fullOverBare, (x) => x >= 0.5),
    },
    {
      id: 'cpu-per-call',
      label: 'gatehouse-full CPU per call, c=64',
      target: '≤ 80 µs',
      unit: 'µs',
      ...judge(full(64)?.targetCpuUsPerCall, (x) => x <= 80),
    },
    {
      id: 'p99-c16',
      label: 'gatehouse-full p99 latency, c=16',
      target: '≤ 3 ms',
      unit: 'ms',
      ...judge(full(16)?.p99Ms, (x) => x <= 3),
    },
  ];
  const idle = extras.idleSessions;
  const idleGoal: Goal = {
    id: 'idle-sessions-rss',
    label: 'gatehouse-full RSS with 1,000 idle sessions',
    target: '≤ 150 MB',
    unit: 'MB',
    ...judge(idle?.rssAfterMb, (x) => x <= 150),
  };
  if (idle !== undefined && idle.sessions < fullIdleSessions) {
    idleGoal.met = null;
    idleGoal.note = `${idle.sessions} sessions only`;
  }
  goals.push(
    idleGoal,
    {
      id: 'ready',
      label: 'ready after start, three upstreams (spawn → /readyz 200)',
      target: '≤ 1,000 ms',
      unit: 'ms',
      ...judge(extras.ready?.spawnToReadyMs, (x) => x <= 1000),
    },
    {
      id: 'tools-list',
      label: 'tools/list over 20 upstreams × 100 tools (p50)',
      target: '≤ 5 ms',
      unit: 'ms',
      ...judge(extras.toolsList?.p50Ms, (x) => x <= 5),
    },
    {
      id: 'policy-decision',
      label: 'policy decision at 1,000 rules',
      target: '≤ 10 µs',
      unit: 'µs',
      ...judge(extras.policy?.usPerDecision, (x) => x <= 10),
    },
  );
  return goals;
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

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
