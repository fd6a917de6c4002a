#!/usr/bin/env node
/**
 * Prints the performance tables of docs/performance.md from a results file, so its figures are reproducible:
 *
 *   node dist/bench/table.js [bench/results/latest.json]          (or latest.quick.json, or a dated file)
 *
 * The tables are the ones `npm run bench` prints at its end (bench/lib/report.ts), preceded by a caption naming
 * the mode, the number of runs, the date, the machine and the commit.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { caption, markdown } from './lib/report.js';
import type { BenchReport } from './lib/results.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const file = process.argv[2] ?? path.join(ROOT, 'bench', 'results', 'latest.json');
let report: BenchReport;
try {
  report = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchReport;
} catch (err) {
  process.stderr.write(`table: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
}
if (!Array.isArray(report.goals) || !Array.isArray(report.ratios) || report.extras === undefined) {
  process.stderr.write(`table: ${file} was written by an older bench (no goals/extras): run npm run bench again\n`);
  process.exit(2);
}
process.stdout.write(`${caption(report)}\n\n${markdown(report)}\n`);
