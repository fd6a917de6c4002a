/** `PolicyReloader`: the status it keeps, and that a watched folder reloads once per burst of writes. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CompiledPolicyEngine } from '../../src/policy/engine.js';
import { loadPolicyDir } from '../../src/policy/compile.js';
import { PolicyReloader, type PolicyReloadOutcome } from '../../src/policy/reloader.js';

const policy = (tool: string): string =>
  `version: 1\nrules:\n  - id: r.${tool.slice(0, 1)}\n    effect: allow\n    match:\n      tools: ["${tool}"]\n`;

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-reloader-'));
  fs.writeFileSync(path.join(dir, 'a.yaml'), policy('a__*'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function setup(debounceMs = 200): {
  reloader: PolicyReloader;
  engine: CompiledPolicyEngine;
  outcomes: PolicyReloadOutcome[];
} {
  const engine = new CompiledPolicyEngine(loadPolicyDir(dir));
  const outcomes: PolicyReloadOutcome[] = [];
  const reloader = new PolicyReloader({
    dir,
    engine,
    onReload: (o) => outcomes.push(o),
    debounceMs,
    now: () => Date.UTC(2026, 0, 1),
  });
  return { reloader, engine, outcomes };
}

describe('PolicyReloader', () => {
  it('starts with the loaded revision and no error', () => {
    const { reloader, engine } = setup();
    expect(reloader.status).toEqual({
      revision: engine.revision,
      lastReloadAt: '2026-01-01T00:00:00.000Z',
      failures: 0,
    });
  });

  it('a failed reload keeps the engine, records the error with file:line and counts it; a good one clears it', () => {
    const { reloader, engine, outcomes } = setup();
    const before = engine.revision;
    fs.writeFileSync(path.join(dir, 'b.yaml'), 'version: 1\nrules:\n  - id: x\n    effect: maybe\n');
    const bad = reloader.reload('SIGHUP');
    expect(bad.ok).toBe(false);
    expect(engine.revision).toBe(before);
    expect(reloader.status.revision).toBe(before);
    expect(reloader.status.failures).toBe(1);
    expect(reloader.status.lastError).toContain(`${path.join(dir, 'b.yaml')}:4: /rules/0/effect:`);
    expect(outcomes).toEqual([bad]);

    fs.writeFileSync(path.join(dir, 'b.yaml'), policy('b__*'));
    const good = reloader.reload('SIGHUP');
    expect(good).toMatchObject({ ok: true, previous: before, changed: true, trigger: 'SIGHUP' });
    expect(engine.revision).not.toBe(before);
    expect(reloader.status).toEqual({
      revision: engine.revision,
      lastReloadAt: '2026-01-01T00:00:00.000Z',
      failures: 1,
    });
  });

  it('a vanished folder is a failed reload, not a throw', () => {
    const { reloader } = setup();
    fs.rmSync(dir, { recursive: true, force: true });
    expect(reloader.reload('SIGHUP').ok).toBe(false);
    expect(reloader.status.failures).toBe(1);
  });

  it('watching: a burst of writes reloads once, after the quiet time', async () => {
    const { reloader, outcomes } = setup(100);
    reloader.watch();
    try {
      for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(dir, 'a.yaml'), policy(`a${i}__*`));
      const until = Date.now() + 3000;
      while (outcomes.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 250));
      expect(outcomes).toHaveLength(1);
      expect(outcomes[0]).toMatchObject({ ok: true, changed: true, trigger: 'watch' });
    } finally {
      reloader.close();
    }
  });
});
