#!/usr/bin/env node
/**
 * Policy decision cost: compiles a set of 1,000 rules over 1,000 tool names (mostly exact names and globs,
 * some deny rules, scope conditions, identity conditions and argument schemas) and measures the time per
 * `decide` call over a mixed stream of requests (allowed, denied by rule, default deny, missing scope, bad
 * arguments), plus `visible` as `tools/list` filtering uses it. Target: ≤ 10 µs per decision.
 *
 *   npm run build && node dist/bench/policy-decide.js        (POLICY_BENCH_ITERATIONS=200000 to change the count)
 *
 * `runPolicyDecideBench()` is exported for `npm run bench` (bench/lib/extras.ts).
 */
import { fileURLToPath } from 'node:url';
import type { Principal } from '../src/identity/principal.js';
import { compilePolicy } from '../src/policy/compile.js';
import { decide, visible } from '../src/policy/decide.js';
import type { DecisionInput } from '../src/policy/decision.js';

export interface PolicyBenchResult {
  rules: number;
  tools: number;
  compileMs: number;
  decisions: number;
  usPerDecision: number;
  usPerVisible: number;
  outcomes: Record<string, number>;
  targetUs: number;
  withinTarget: boolean;
}

const UPSTREAMS = 20;
const TOOLS_PER_UPSTREAM = 50;

/** 1,000 rules: 700 exact (some with argument schemas), 200 globs, 50 deny globs, 50 identity-bound. */
export function buildBenchPolicyText(): string {
  const lines: string[] = ['version: 1', 'rules:'];
  let n = 0;
  const tool = (u: number, t: number): string => `up${u}__tool_${t}`;
  // 700 exact rules, one per tool, with scope conditions; every 5th narrows its arguments.
  for (let i = 0; i < 700; i++) {
    const u = i % UPSTREAMS;
    const t = Math.floor(i / UPSTREAMS);
    lines.push(
      `  - id: exact-${n++}`,
      '    effect: allow',
      `    match: { tools: [${tool(u, t)}] }`,
      `    when: { authenticated: true, scopes: { allOf: ["up${u}:use"] } }`,
    );
    if (i % 5 === 0) {
      lines.push(
        '    arguments:',
        '      required: [id]',
        '      properties:',
        '        id: { type: string, pattern: "^[a-z]{2}-[0-9]{1,8}$" }',
        '        note: { type: string, maxLength: 200 }',
        '      additionalProperties: false',
        '      constraints:',
        '        - { field: note, kind: noLeadingDash, optional: true }',
      );
    }
  }
  // 200 glob rules: prefixes (per upstream and per tool family) and suffixes.
  for (let i = 0; i < 200; i++) {
    const u = i % UPSTREAMS;
    const pattern = i % 3 === 0 ? `up${u}__tool_${i % 10}*` : i % 3 === 1 ? `*_${i}` : `up${u}__*_${i % 7}`;
    lines.push(
      `  - id: glob-${n++}`,
      '    effect: allow',
      `    match: { tools: ["${pattern}"] }`,
      `    when: { scopes: { anyOf: ["up${u}:read", "up${u}:use"] } }`,
    );
  }
  // 50 deny rules.
  for (let i = 0; i < 50; i++) {
    lines.push(
      `  - id: deny-${n++}`,
      '    effect: deny',
      `    match: { tools: ["*__danger_${i}", "up${i % UPSTREAMS}__tool_4${i % 10}"] }`,
      `    when: { groups: { anyOf: [blocked-${i % 5}] } }`,
    );
  }
  // 50 identity-bound rules.
  for (let i = 0; i < 50; i++) {
    lines.push(
      `  - id: ident-${n++}`,
      '    effect: allow',
      `    match: { tools: ["up${i % UPSTREAMS}__admin_*"] }`,
      `    when: { subjects: ["svc-${i}-*"], clients: [ops-console] }`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function principal(i: number): Principal {
  const u = i % UPSTREAMS;
  return {
    subject: i % 7 === 0 ? `svc-${i % 50}-worker` : `user-${i}`,
    clientId: i % 3 === 0 ? 'ops-console' : 'cli',
    // Most callers hold every upstream's use scope; every 4th only one read scope (insufficient_scope for exact rules).
    scopes: new Set(i % 4 === 0 ? [`up${u}:read`] : Array.from({ length: UPSTREAMS }, (_, k) => `up${k}:use`)),
    groups: i % 9 === 0 ? ['blocked-0', 'blocked-1', 'blocked-2', 'blocked-3', 'blocked-4'] : ['staff'],
    anonymous: false,
  };
}

function inputs(count: number): DecisionInput[] {
  const out: DecisionInput[] = [];
  const principals = Array.from({ length: 64 }, (_, i) => principal(i));
  for (let i = 0; i < count; i++) {
    const p = principals[i % principals.length]!;
    const u = (i * 7) % UPSTREAMS;
    const t = (i * 13) % TOOLS_PER_UPSTREAM;
    const kind = i % 10;
    const name =
      kind === 9
        ? `up${u}__danger_${i % 50}`
        : kind === 6
          ? `up${u}__tool_4${i % 10}`
          : kind === 8
            ? `up${u}__admin_${t}`
            : kind === 7
              ? `up${u}__nothing_${t}`
              : `up${u}__tool_${t}`;
    const args = i % 6 === 0 ? { id: 'ab-1234', note: 'hello' } : i % 6 === 1 ? { id: 'bad id' } : { id: 'cd-42' };
    out.push({
      principal: p,
      method: 'tools/call',
      target: { kind: 'tool', name, upstream: `up${u}` },
      args,
      now: 1_700_000_000_000 + i,
    });
  }
  return out;
}

export function runPolicyDecideBench(
  iterations = Number(process.env.POLICY_BENCH_ITERATIONS ?? 200_000),
): PolicyBenchResult {
  const text = buildBenchPolicyText();
  const t0 = performance.now();
  const policy = compilePolicy([{ file: 'bench.yaml', text }]);
  const compileMs = performance.now() - t0;

  const stream = inputs(4096);
  const outcomes: Record<string, number> = {};
  for (const input of stream) {
    const d = decide(input, policy);
    const key = d.effect === 'allow' ? 'allow' : d.reason;
    outcomes[key] = (outcomes[key] ?? 0) + 1;
  }
  // Warm-up, then measure.
  let sink = 0;
  for (let i = 0; i < 50_000; i++) sink += decide(stream[i % stream.length]!, policy).effect.length;
  const t1 = performance.now();
  for (let i = 0; i < iterations; i++) sink += decide(stream[i % stream.length]!, policy).effect.length;
  const decideMs = performance.now() - t1;
  const t2 = performance.now();
  for (let i = 0; i < iterations; i++) sink += visible(stream[i % stream.length]!, policy) ? 1 : 0;
  const visibleMs = performance.now() - t2;
  if (sink === -1) console.log(sink); // keep the loops observable

  const usPerDecision = (decideMs * 1000) / iterations;
  return {
    rules: policy.rules.length,
    tools: UPSTREAMS * TOOLS_PER_UPSTREAM,
    compileMs: round(compileMs),
    decisions: iterations,
    usPerDecision: round(usPerDecision, 3),
    usPerVisible: round((visibleMs * 1000) / iterations, 3),
    outcomes,
    targetUs: 10,
    withinTarget: usPerDecision <= 10,
  };
}

function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const r = runPolicyDecideBench();
  console.log(`policy: ${r.rules} rules over ${r.tools} tool names, compiled in ${r.compileMs} ms`);
  console.log(
    `decide:  ${r.usPerDecision} µs per decision (${r.decisions} decisions; target ≤ ${r.targetUs} µs) ${r.withinTarget ? 'OK' : 'SLOW'}`,
  );
  console.log(`visible: ${r.usPerVisible} µs per listed tool`);
  console.log(
    `mix: ${Object.entries(r.outcomes)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  console.log(JSON.stringify(r));
  if (process.env.BENCH_ENFORCE === '1' && !r.withinTarget) process.exitCode = 1;
}
