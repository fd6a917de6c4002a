#!/usr/bin/env node
/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): the functions with the most self time, and
 * optionally the inclusive time of functions matching a pattern.
 *
 *   node dist/bench/cpuprofile-top.js FILE.cpuprofile [N=30] [INCLUSIVE_REGEX]
 */
import fs from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, nArg, pattern] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: cpuprofile-top FILE.cpuprofile [N] [INCLUSIVE_REGEX]\n');
  process.exit(2);
}
const top = Number(nArg ?? 30);
const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const key = (n: ProfileNode): string => {
  const url = n.callFrame.url.replace(/^.*node_modules\//, '~/').replace(/^file:\/\/.*?\/dist\//, 'dist/');
  return `${n.callFrame.functionName || '(anonymous)'}  ${url}${url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
};

const perNode = new Map<number, number>();
let total = 0;
prof.samples.forEach((id, i) => {
  const d = prof.timeDeltas[i] ?? 0;
  perNode.set(id, (perNode.get(id) ?? 0) + d);
  total += d;
});

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let idle = 0;
for (const [id, t] of perNode) {
  const node = byId.get(id)!;
  if (node.callFrame.functionName === '(idle)') idle += t;
  const k = key(node);
  self.set(k, (self.get(k) ?? 0) + t);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const ck = key(byId.get(cur)!);
    if (seen.has(ck)) continue;
    seen.add(ck);
    inclusive.set(ck, (inclusive.get(ck) ?? 0) + t);
  }
}
const busy = total - idle;
const pct = (t: number): string => `${((100 * t) / busy).toFixed(1).padStart(5)}%`;
const ms = (t: number): string => `${(t / 1000).toFixed(0).padStart(6)} ms`;

process.stdout.write(
  `${file}\nsampled ${(total / 1000).toFixed(0)} ms: busy ${(busy / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms\n\nself time (share of busy):\n`,
);
for (const [k, t] of [...self]
  .filter(([k]) => !k.startsWith('(idle)'))
  .sort((a, b) => b[1] - a[1])
  .slice(0, top)) {
  process.stdout.write(`${pct(t)} ${ms(t)}  ${k}\n`);
}
if (pattern !== undefined) {
  const re = new RegExp(pattern);
  process.stdout.write(`\ninclusive time of /${pattern}/ (share of busy):\n`);
  for (const [k, t] of [...inclusive]
    .filter(([k]) => re.test(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)) {
    process.stdout.write(`${pct(t)} ${ms(t)}  ${k}\n`);
  }
}
