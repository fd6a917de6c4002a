/**
 * The rotation watcher (src/config/secret-rotation.ts) over an injected file system and fake timers: a change is
 * read after the debounce (one read for a burst of events), the poll finds what the watch missed, a bad new file
 * keeps the old value and is said once, and every holder of the SecretValue sees the new value.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  SecretRotation,
  type RotationEvent,
  type RotationFs,
  type RotationProblem,
} from '../../src/config/secret-rotation.js';
import { readSecretFile, secretValue } from '../../src/config/secrets.js';

/** Files in memory: content and a stamp that moves on every write; folder watchers to fire by hand. */
function memoryFs(files: Record<string, string>): RotationFs & {
  write(file: string, text: string): void;
  fire(dir: string): void;
  reads: number;
} {
  const stamps = new Map<string, number>();
  const watchers = new Map<string, () => void>();
  let n = 0;
  const mfs = {
    reads: 0,
    stamp(file: string) {
      if (!(file in files)) throw Object.assign(new Error('gone'), { code: 'ENOENT' });
      return String(stamps.get(file) ?? 0);
    },
    read(file: string, maxBytes: number) {
      mfs.reads += 1;
      return readSecretFile(file, maxBytes, (f) => {
        if (!(f in files)) throw Object.assign(new Error('gone'), { code: 'ENOENT' });
        return { size: files[f]!.length, isDirectory: false, text: () => files[f]! };
      });
    },
    watch(dir: string, onEvent: () => void) {
      watchers.set(dir, onEvent);
      return { close: () => watchers.delete(dir) };
    },
    write(file: string, text: string) {
      files[file] = text;
      stamps.set(file, ++n);
    },
    fire(dir: string) {
      watchers.get(dir)?.();
    },
  };
  return mfs;
}

const OLD = 'old-upstream-key-0001';
const NEW = 'new-upstream-key-0002';

let rotated: RotationEvent[];
let problems: RotationProblem[];

beforeEach(() => {
  vi.useFakeTimers();
  rotated = [];
  problems = [];
});
afterEach(() => vi.useRealTimers());

function watcher(fs: RotationFs, check: (v: string) => string | undefined = () => undefined) {
  const a = secretValue('file:/run/secrets/api-key', OLD);
  // The same file referenced twice (two upstreams): both values move together.
  const b = secretValue('file:/run/secrets/api-key', OLD);
  const env = secretValue('env:OTHER_KEY', 'from-the-environment');
  const r = new SecretRotation({
    secrets: [
      { secret: a, use: 'upstreams[a].headers.X-Api-Key', check },
      { secret: b, use: 'upstreams[b].headers.X-Api-Key', check },
      { secret: env, use: 'upstreams[c].headers.X-Api-Key', check },
    ],
    fs,
    intervalMs: 10_000,
    debounceMs: 250,
    onRotated: (e) => rotated.push(e),
    onProblem: (p) => problems.push(p),
  });
  return { r, a, b, env };
}

describe('SecretRotation', () => {
  it('reads a changed file once after the debounce and replaces the value everywhere it is held', () => {
    const fs = memoryFs({ '/run/secrets/api-key': OLD });
    const { r, a, b, env } = watcher(fs);
    r.start();
    expect(r.size).toBe(1); // the environment secret is not watched
    const readsAtStart = fs.reads;
    fs.write('/run/secrets/api-key', `${NEW}\n`);
    // A Kubernetes swap is several events in a row: one read after the folder is quiet.
    fs.fire('/run/secrets');
    vi.advanceTimersByTime(100);
    fs.fire('/run/secrets');
    vi.advanceTimersByTime(200);
    expect(a.reveal()).toBe(OLD);
    vi.advanceTimersByTime(100);
    expect(fs.reads - readsAtStart).toBe(1);
    expect([a.reveal(), b.reveal(), env.reveal()]).toEqual([NEW, NEW, 'from-the-environment']);
    expect([a.generation, b.generation]).toEqual([1, 1]);
    expect(rotated).toEqual([
      {
        source: 'file:/run/secrets/api-key',
        file: '/run/secrets/api-key',
        usedBy: ['upstreams[a].headers.X-Api-Key', 'upstreams[b].headers.X-Api-Key'],
      },
    ]);
    expect(JSON.stringify(rotated)).not.toContain(NEW);
    r.close();
  });

  it('finds a change the watch missed at the next poll; an unchanged stamp costs no read', () => {
    const fs = memoryFs({ '/run/secrets/api-key': OLD });
    const { r, a } = watcher(fs);
    r.start();
    const reads = fs.reads;
    vi.advanceTimersByTime(30_000);
    expect(fs.reads).toBe(reads);
    fs.write('/run/secrets/api-key', NEW);
    vi.advanceTimersByTime(10_000);
    expect(a.reveal()).toBe(NEW);
    expect(rotated).toHaveLength(1);
    r.close();
  });

  it('keeps the old value when the new file is empty, gone or unfit; says so once; recovers', () => {
    const fs = memoryFs({ '/run/secrets/api-key': OLD });
    const { r, a } = watcher(fs, (v) => (v.includes('\n') ? 'holds a line break' : undefined));
    r.start();
    fs.write('/run/secrets/api-key', '');
    vi.advanceTimersByTime(10_000);
    expect(a.reveal()).toBe(OLD);
    expect(problems.map((p) => p.message)).toEqual(['secret file /run/secrets/api-key is empty']);
    expect(r.status()).toMatchObject({
      watched: 1,
      rotations: 0,
      problems: [{ source: 'file:/run/secrets/api-key', problem: 'secret file /run/secrets/api-key is empty' }],
    });
    // The poll sees the same bad file again: not said again.
    fs.write('/run/secrets/api-key', '');
    vi.advanceTimersByTime(20_000);
    expect(problems).toHaveLength(1);
    fs.write('/run/secrets/api-key', 'two\nlines-of-key');
    vi.advanceTimersByTime(10_000);
    expect(a.reveal()).toBe(OLD);
    expect(problems[1]!.message).toContain('holds a line break (upstreams[a].headers.X-Api-Key)');
    expect(problems[1]!.message).not.toContain('lines-of-key');
    fs.write('/run/secrets/api-key', NEW);
    vi.advanceTimersByTime(10_000);
    expect(a.reveal()).toBe(NEW);
    expect(problems[2]!.message).toBeUndefined();
    expect(r.status().problems).toBeUndefined();
    expect(r.status().rotations).toBe(1);
    r.close();
  });

  it('a file rewritten with the value it had is no rotation', () => {
    const fs = memoryFs({ '/run/secrets/api-key': OLD });
    const { r, a } = watcher(fs);
    r.start();
    fs.write('/run/secrets/api-key', `${OLD}\n`);
    vi.advanceTimersByTime(10_000);
    expect(a.generation).toBe(0);
    expect(rotated).toEqual([]);
    r.close();
  });
});
