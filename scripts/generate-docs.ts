#!/usr/bin/env node
/**
 * Writes the generated references (docs/reference/*.md) from their sources of truth, or, with `--check`, fails when
 * a committed one is not what the sources give:
 *
 *   npm run docs          (build, then node dist/scripts/generate-docs.js)
 *   npm run docs:check    (build, then node dist/scripts/generate-docs.js --check; CI runs it)
 */
import fs from 'node:fs';
import path from 'node:path';
import { describeStaleness, generateReferences, repoRoot, staleReferences } from './docs/generate.js';

const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== '--check');
if (unknown.length > 0) {
  process.stderr.write(`generate-docs: unknown argument ${unknown.join(' ')} (usage: generate-docs [--check])\n`);
  process.exit(2);
}
const root = repoRoot();

if (args.includes('--check')) {
  const problems = staleReferences(root);
  if (problems.length > 0) {
    process.stderr.write(`docs:check: generated references are not current:\n${describeStaleness(problems)}\n`);
    process.exit(1);
  }
  process.stdout.write('docs:check: every generated reference is current\n');
} else {
  for (const file of generateReferences(root)) {
    const target = path.join(root, file.path);
    const before = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : undefined;
    if (before === file.content) {
      process.stdout.write(`unchanged ${file.path}\n`);
      continue;
    }
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, file.content);
    process.stdout.write(`wrote ${file.path} (from ${file.source})\n`);
  }
}
