/**
 * The official MCP conformance suite's server scenarios through the gateway, one leg per protocol generation
 * (scripts/conformance.sh; docs/development.md "Conformance"). Each leg passes when the suite's verdict matches
 * test/conformance/expected-failures-<leg>.yaml: a new failure fails it, and so does a listed one that now passes.
 *
 * The suite needs Node 22 and is no project dependency: `scripts/conformance.sh install` (a step of .ci/run) puts it
 * in a cache folder. In CI a missing install or dist build fails the test; elsewhere it is skipped, saying how.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/spawn-server.js';

const SCRIPT = join(REPO_ROOT, 'scripts/conformance.sh');
const NOT_INSTALLED = 77;

function run(leg: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [SCRIPT, 'run', leg], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code: code ?? 1, output }));
  });
}

describe('MCP conformance suite through the gateway', () => {
  for (const leg of ['2025-11-25', '2026-07-28']) {
    it(`matches the expected failures of the ${leg} leg`, { timeout: 180_000 }, async (ctx) => {
      const missingBuild = !existsSync(join(REPO_ROOT, 'dist/src/main.js'));
      if (missingBuild && process.env.CI !== 'true') {
        ctx.skip('no dist build: run `npm run build`, then `scripts/conformance.sh run ' + leg + '`');
      }
      const { code, output } = await run(leg);
      if (code === NOT_INSTALLED && process.env.CI !== 'true') {
        ctx.skip('conformance tools not installed: run `scripts/conformance.sh install` (npm registry, ~130 MB)');
      }
      // The summary and the suite's verdict (which check was unexpected) are at the end of the output.
      expect(code, output.slice(-6000)).toBe(0);
      expect(output).toMatch(/Baseline check passed|Total: \d+ passed, 0 failed/);
    });
  }
});
