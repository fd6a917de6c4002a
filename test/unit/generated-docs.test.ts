/**
 * The generated references (docs/reference/*.md, `npm run docs`): the committed files are what their sources give
 * today, so `npm test` fails on a stale one as `npm run docs:check` does in CI; and what they say is true — every
 * error code and top-level key is there, and the metrics table names the series and labels a real scrape shows.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeStaleness, generateReferences, repoRoot, staleReferences } from '../../scripts/docs/generate.js';
import { parseErrorCodes } from '../../scripts/docs/errors-reference.js';
import { prometheusSeries } from '../../scripts/docs/metrics-reference.js';
import {
  CONFIG_SCHEMA,
  ERRORS_SOURCE,
  ErrorCodes,
  METRICS,
  METRICS_SOURCE,
  POLICY_SCHEMA,
  REFERENCE_DIR,
} from '../../scripts/docs/sources.js';
import { shutdownTestMeters, testMeter } from '../helpers/test-meter.js';

const root = repoRoot();
const read = (file: string): string => fs.readFileSync(path.join(root, file), 'utf8');

afterEach(shutdownTestMeters);

describe('generated references', () => {
  it('the committed files are current (else: npm run docs)', () => {
    const problems = staleReferences(root);
    expect(describeStaleness(problems)).toBe('');
  });

  it('the check fails on a stale, missing or foreign file, naming it and the command to fix it', () => {
    // A copy of what the generator reads from disk, in a scratch repository.
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-docs-'));
    try {
      fs.writeFileSync(path.join(scratch, 'package.json'), JSON.stringify({ name: 'gatehouse' }));
      for (const file of [CONFIG_SCHEMA, POLICY_SCHEMA, ERRORS_SOURCE]) {
        fs.mkdirSync(path.dirname(path.join(scratch, file)), { recursive: true });
        fs.copyFileSync(path.join(root, file), path.join(scratch, file));
      }
      const ref = path.join(scratch, REFERENCE_DIR);
      fs.mkdirSync(ref, { recursive: true });
      for (const f of generateReferences(scratch)) fs.writeFileSync(path.join(scratch, f.path), f.content);
      expect(staleReferences(scratch)).toEqual([]);

      // A description edited in the schema without regenerating.
      const schema = path.join(scratch, CONFIG_SCHEMA);
      fs.writeFileSync(schema, read(CONFIG_SCHEMA).replace('Log output settings.', 'Log output settings!'));
      fs.rmSync(path.join(ref, 'metrics.md'));
      fs.writeFileSync(path.join(ref, 'notes.md'), '# by hand\n');
      const problems = staleReferences(scratch);
      expect(problems).toEqual([
        { path: `${REFERENCE_DIR}/config.md`, problem: 'stale', source: CONFIG_SCHEMA },
        { path: `${REFERENCE_DIR}/metrics.md`, problem: 'missing', source: METRICS_SOURCE },
        { path: `${REFERENCE_DIR}/notes.md`, problem: 'not generated' },
      ]);
      const message = describeStaleness(problems);
      expect(message).toContain(`${REFERENCE_DIR}/config.md: out of date (generated from ${CONFIG_SCHEMA})`);
      expect(message).toContain('run `npm run docs`');
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('the output does not depend on when or where it is generated', () => {
    const a = generateReferences(root);
    const b = generateReferences(root);
    expect(b).toEqual(a);
    for (const f of a) {
      expect(f.content).not.toContain(root);
      expect(f.content.endsWith('\n')).toBe(true);
    }
  });

  it('config.md has a section for every top-level key and a row for every key of the schema', () => {
    const doc = read(`${REFERENCE_DIR}/config.md`);
    const schema = JSON.parse(read(CONFIG_SCHEMA)) as { properties: Record<string, unknown> };
    for (const key of Object.keys(schema.properties)) expect(doc).toContain(`## \`${key}\``);
    // Spot checks deep in the tree: through $ref, arrays of objects and if/then rules.
    for (const row of [
      '| `server.tls.clientCertificates` | string | `none` |',
      '| `auth.builtin.clients[].jwksFile` |',
      '| `upstreams[].retry.tools` | list of strings | `[]` |',
      '| `limits.rules[].rate.perDay` | integer | — |',
    ])
      expect(doc).toContain(row);
    expect(doc).toContain(
      'When `upstreams[].transport` is `stdio`: `upstreams[].command` is required; `upstreams[].url`, `upstreams[].headers` and `upstreams[].tls` must not be set.',
    );
    expect(doc).toContain('### Secret reference');
  });

  it('policy.md has every key of a rule', () => {
    const doc = read(`${REFERENCE_DIR}/policy.md`);
    const schema = JSON.parse(read(POLICY_SCHEMA)) as {
      $defs: { rule: { properties: Record<string, unknown> } };
    };
    for (const key of Object.keys(schema.$defs.rule.properties)) expect(doc).toContain(`| \`rules[].${key}\` |`);
  });

  it('errors.md has every ErrorCodes entry with its statuses and message, and the comments beside them', () => {
    const doc = read(`${REFERENCE_DIR}/errors.md`);
    for (const [code, e] of Object.entries(ErrorCodes))
      expect(doc).toContain(`| \`${code}\` | ${e.http} | ${e.rpc} | \`${e.message}\` |`);
    const { groups } = parseErrorCodes(read(ERRORS_SOURCE));
    const denied = groups.flatMap((g) => g.entries).find((e) => e.name === 'GW_RELAY_DENIED');
    expect(denied?.comment).toMatch(/^The policy refused the upstream's request \(threat model #19\)\./);
    expect(groups.map((g) => g.comment.split(/ \(|: /, 1)[0])).toContain('Front door');
  });

  it('metrics.md lists every metric, and its series and labels are what a scrape shows', async () => {
    expect(read(METRICS_SOURCE)).toMatch(/^export const METRICS = \{/m);
    const doc = read(`${REFERENCE_DIR}/metrics.md`);
    // Every source and every audit event kind a metric is derived from, so every series exists.
    const { metrics, read: scrape } = testMeter({
      sessions: () => 1,
      upstreams: () => [{ name: 'fx', state: 'ready', breaker: { state: 'closed' } }],
      policy: () => ({ revision: 'abc123' }),
      auditLost: () => 0,
      redis: () => 'up',
      limits: () => ({ openPassed: 0, storeErrors: 0 }),
    });
    const call = { type: 'mcp.request', method: 'tools/call', tool: 'fx__echo', upstream: 'fx' } as const;
    metrics.observe({ ...call, outcome: 'ok', durationMs: 3, cache: 'hit', idempotency: 'replay' });
    metrics.observe({ ...call, outcome: 'denied', errorCode: 'rate_limited', rule: 'per-user', durationMs: 1 });
    metrics.observe({ ...call, outcome: 'ok', outputValid: false, durationMs: 2 });
    metrics.observe({ type: 'auth.failure', reason: 'expired', status: 401 });
    metrics.observe({ type: 'http.rejected', reason: 'overloaded', status: 503 });
    metrics.observe({ type: 'upstream.state', upstream: 'fx', outcome: 'error', detail: 'breaker open' });
    metrics.observe({ type: 'config', outcome: 'ok', detail: 'policy reload (watch): a -> b' });
    const { samples } = await scrape();

    for (const def of Object.values(METRICS)) {
      const series = prometheusSeries(def);
      expect(doc).toContain(`| \`${def.name}\` | ${series.map((s) => `\`${s}\``).join(' ')} | ${def.kind} |`);
      const mine = samples.filter((s) => series.includes(s.name));
      expect(mine.length, `${def.name}: no sample named ${series.join(' / ')}`).toBeGreaterThan(0);
      // `le` is the histogram's bucket; `otel_scope_*` is the exporter's own (the meter), not the gateway's.
      const labels = new Set(
        mine.flatMap((s) => Object.keys(s.labels)).filter((l) => l !== 'le' && !l.startsWith('otel_scope_')),
      );
      expect([...labels].sort(), def.name).toEqual([...def.labels].sort());
    }
  });
});
