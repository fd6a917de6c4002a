/**
 * The audit path's shortcuts give exactly what the long way gives: the one-pass pre-check never skips a string
 * a built-in pattern would change, ASCII key names fold as NFKC + lookalikes would fold them, cached key verdicts
 * stay right past the cache's bound, canonical JSON is unchanged, a record is serialised once (its line hashes to
 * its `hash` and keeps pino's member order), and the file output groups lines into few writes, in order.
 */
import fs, { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { recordHash } from '../../src/audit/chain.js';
import { FileOutput, type FileOps } from '../../src/audit/file-sink.js';
import { createRedactor, MAY_HOLD_SECRET, REDACTED, SECRET_PATTERNS } from '../../src/audit/redact.js';
import { verifyAuditFiles } from '../../src/audit/verify.js';
import { normaliseKey } from '../../src/lib/redact-entry.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-fast-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A small deterministic PRNG (xorshift32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** Pieces of every built-in shape (whole, cut short, in other cases) and of ordinary text. */
const PIECES = [
  '-----BEGIN PRIVATE KEY-----',
  '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----',
  '-----begin ',
  'Bearer ',
  'bEaReR ',
  'Basic ',
  'Digest ',
  'DPoP ',
  'abcdEFGH1234',
  '=',
  '==',
  'eyJ',
  'eyJhbGciOi',
  '.',
  '.eyJzdWIiOiJ4In0',
  'sk-',
  'pk-',
  'rk-',
  'proj-',
  'sk_live_',
  'pk_test_',
  'ghp_',
  'gho_',
  'github_pat_',
  'glpat-',
  'xoxb-',
  'xoxp-',
  'AIza',
  'AKIA',
  'ASIA',
  'AROA',
  'IOSFODNN7EXAMPLE',
  '0123456789abcdefghijABCDEFGHIJ',
  'https://',
  'redis://',
  '://',
  ':',
  'user',
  'pw',
  '@',
  'host',
  '/',
  '?',
  '&',
  ';',
  'access_token=',
  'Token=',
  'key=',
  'sig=',
  'x',
  ' ',
  '\n',
  '-',
  '_',
  'hello',
  'é',
  '\u{1F600}',
  '\uD800',
  '\uDC00',
  'ｐ',
  'tools/call',
  '1000000001',
];

function randomText(next: () => number): string {
  let s = '';
  const n = 1 + Math.floor(next() * 8);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(next() * PIECES.length)];
  return s;
}

describe('the pre-check before the secret patterns', () => {
  it('matches every string a built-in pattern (or a lone surrogate) would change', () => {
    const next = rng(0x5eed);
    const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
    let changing = 0;
    for (let i = 0; i < 20_000; i++) {
      const s = randomText(next);
      const changes =
        lone.test(s) || SECRET_PATTERNS.some(({ re }) => new RegExp(re.source, re.flags.replace('g', '')).test(s));
      if (changes) {
        changing += 1;
        expect(MAY_HOLD_SECRET.test(s), s).toBe(true);
      }
    }
    // The corpus really exercises the patterns.
    expect(changing).toBeGreaterThan(5_000);
  });

  it('still runs audit.redact patterns on strings the built-in ones skip', () => {
    const custom = createRedactor([{ kind: 'pattern', re: /\b\d{3}-\d{2}-\d{4}\b/g }]);
    expect(custom({ note: 'ssn 123-45-6789' })).toEqual({ note: `ssn ${REDACTED}` });
    expect(custom({ note: 'Bearer abcdefgh12345 and 123-45-6789' })).toEqual({
      note: `Bearer ${REDACTED} and ${REDACTED}`,
    });
  });
});

describe('normaliseKey', () => {
  /** The long way, as written before the ASCII shortcut (lookalikes are never ASCII). */
  const slow = (key: string): string =>
    key
      .normalize('NFKC')
      .toLowerCase()
      .normalize('NFKD')
      .replace(/[^\p{L}\p{N}]/gu, '');

  it('folds printable ASCII exactly as NFKC, lower-casing and dropping non-letters/digits do', () => {
    const next = rng(42);
    for (let i = 0; i < 5_000; i++) {
      let k = '';
      for (let j = Math.floor(next() * 24); j > 0; j--) k += String.fromCharCode(0x20 + Math.floor(next() * 95));
      expect(normaliseKey(k), k).toBe(slow(k));
    }
    expect(normaliseKey('X-Api-Key')).toBe('xapikey');
    // Not ASCII: the long way still runs (full-width, lookalike).
    expect(normaliseKey('ｐａｓｓｗｏｒｄ')).toBe('password');
    expect(normaliseKey('р\u0430ssword')).toBe('password');
  });
});

describe('the key cache', () => {
  it('gives the same verdicts on repeated records and past its bound', () => {
    const redact = createRedactor([{ kind: 'key', name: 'customerssn' }]);
    const input = { password: 'p', customer_ssn: '1', user: 'bob', headers: [{ name: 'Authorization', value: 'x' }] };
    const expected = {
      password: REDACTED,
      customer_ssn: REDACTED,
      user: 'bob',
      headers: [{ name: 'Authorization', value: REDACTED }],
    };
    for (let i = 0; i < 3; i++) expect(redact(input)).toEqual(expected);
    // Thousands of new names (more than the cache holds): secret ones are still hidden, the others kept.
    for (let i = 0; i < 5_000; i++) {
      expect(redact({ [`field${i}`]: 'v', [`password${i}`]: 'v', [`max_tokens${i % 2 === 0 ? '' : i}`]: 1 })).toEqual({
        [`field${i}`]: 'v',
        [`password${i}`]: REDACTED,
        [`max_tokens${i % 2 === 0 ? '' : i}`]: i % 2 === 0 ? 1 : REDACTED,
      });
    }
    expect(redact(input)).toEqual(expected);
    // A long name is not cached and still judged.
    const long = `${'x'.repeat(500)}_secret`;
    expect(redact({ [long]: 'v' })).toEqual({ [long]: REDACTED });
    // A key that is itself token-shaped is redacted as a key name too.
    expect(Object.keys(redact({ ghp_0123456789abcdefghijABCDEFGHIJklmnop: 1 }) as object)).toEqual([REDACTED]);
  });
});

describe('canonicalJson', () => {
  /** As written before: sort() and join. */
  const reference = (value: unknown): string => {
    if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
    if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : reference(v))).join(',')}]`;
    const record = value as Record<string, unknown>;
    const parts: string[] = [];
    for (const key of Object.keys(record).sort()) {
      const v = record[key];
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      parts.push(`${JSON.stringify(key)}:${reference(v)}`);
    }
    return `{${parts.join(',')}}`;
  };

  it('is unchanged: code-unit key order at every depth (few and many keys), members without a JSON value dropped', () => {
    const next = rng(7);
    const keyPool = [
      'a',
      'B',
      'b',
      '_',
      'é',
      'e\u0301',
      '\u{1F600}',
      '\uFF41',
      '10',
      '9',
      '',
      '__proto__',
      'type',
      'arguments',
      'z'.repeat(70),
    ];
    const build = (depth: number): unknown => {
      const r = next();
      if (depth > 3 || r < 0.3) return [1.5, -0, 'x"\n\u2028', true, null, undefined, 1e21][Math.floor(next() * 7)];
      if (r < 0.45) return Array.from({ length: Math.floor(next() * 4) }, () => build(depth + 1));
      const o: Record<string, unknown> = {};
      const n = depth === 0 && next() < 0.3 ? 40 : Math.floor(next() * 6);
      for (let i = 0; i < n; i++)
        Object.defineProperty(o, `${keyPool[Math.floor(next() * keyPool.length)]}${n === 40 ? i : ''}`, {
          value: build(depth + 1),
          enumerable: true,
          configurable: true,
          writable: true,
        });
      return o;
    };
    for (let i = 0; i < 500; i++) {
      const v = build(0);
      expect(canonicalJson(v)).toBe(reference(v));
    }
  });
});

describe('redactor.json (the record text in one pass)', () => {
  it('is canonicalJson of the redacted copy, for generated values with secrets, sensitive and rewritten keys, and the size bounds', () => {
    const next = rng(0xa0d17);
    const redact = createRedactor([
      { kind: 'key', name: 'customerssn' },
      { kind: 'pattern', re: /\b\d{3}-\d{2}-\d{4}\b/g },
    ]);
    // Ordinary, sensitive (`password`, a pair's `value` under a secret `name`), token-shaped (rewritten: two of them
    // collide into one `[REDACTED]` key) and name/value keys.
    const keyPool = [
      'a',
      'B',
      'b',
      'é',
      '',
      '__proto__',
      'password',
      'max_tokens',
      'customer_ssn',
      'name',
      'key',
      'value',
      'data',
      'ghp_0123456789abcdefghijABCDEFGHIJklmnop',
      'ghp_abcdefghij0123456789ABCDEFGHIJklmnop',
      '…',
    ];
    const leaves = (): unknown =>
      [
        1.5,
        -0,
        Number.NaN,
        'Bearer abcdefgh12345',
        'ssn 123-45-6789',
        'x"\n',
        'Authorization',
        '',
        true,
        null,
        undefined,
        () => 1,
        Symbol('s'),
        10n,
        'x'.repeat(5000),
      ][Math.floor(next() * 15)];
    const build = (depth: number): unknown => {
      const r = next();
      if (depth > 14 || r < 0.3) return leaves();
      if (r < 0.45)
        return next() < 0.05
          ? Array.from({ length: 300 }, leaves)
          : Array.from({ length: Math.floor(next() * 4) }, () => build(depth + 1));
      const o: Record<string, unknown> = {};
      // Sometimes more members than a record keeps (of leaves only: the value stays small).
      const n = next() < 0.03 ? 300 : Math.floor(next() * 6);
      for (let i = 0; i < n; i++) {
        const key = `${keyPool[Math.floor(next() * keyPool.length)]}${n === 300 ? i : ''}`;
        Object.defineProperty(o, key, {
          value: n === 300 ? leaves() : build(depth + (next() < 0.5 ? 1 : 4)),
          enumerable: true,
          configurable: true,
          writable: true,
        });
      }
      return o;
    };
    let rewritten = 0;
    for (let i = 0; i < 2_000; i++) {
      const v = build(0);
      const text = redact.json(v);
      expect(text).toBe(canonicalJson(redact(v)));
      if (text.includes(`"${REDACTED}":`)) rewritten++;
    }
    // The corpus reaches the two-step path too.
    expect(rewritten).toBeGreaterThan(20);
  });
});

describe('a record serialised once', () => {
  it('writes pino-shaped lines whose hash is the hash of the line as read back, and the chain verifies', async () => {
    const file = join(dir, 'audit.jsonl');
    const log = new AuditLog({
      sink: 'file',
      onFailure: 'closed',
      redact: createRedactor(),
      logger: pino({ level: 'silent' }),
      chain: {},
      output: (events) => new FileOutput(file, events),
    });
    log.record({
      type: 'mcp.request',
      requestId: '1',
      method: 'tools/call',
      arguments: { text: 'a "quoted"\nline}{', password: 'hunter2', ｋｅｙ: 'Bearer abcdefgh12345' },
      outcome: 'ok',
      durationMs: 1.5,
    });
    log.record({ type: 'config', outcome: 'ok', detail: 'x' });
    await log.close();
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines.at(-1)).toBe('');
    const records = lines.slice(0, -1).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toHaveLength(3);
    for (const r of records) {
      expect(Object.keys(r)).toEqual(['level', 'stream', 'time', 'audit', 'chain', 'seq', 'prevHash', 'hash']);
      expect(r.level).toBe(30);
      expect(r.hash).toBe(recordHash(r));
    }
    expect((records[1]!.audit as { arguments: unknown }).arguments).toEqual({
      text: 'a "quoted"\nline}{',
      password: REDACTED,
      ｋｅｙ: `Bearer ${REDACTED}`,
    });
    expect(verifyAuditFiles([file]).ok).toBe(true);
  });

  it('without a chain, writes the same line shape without chain members', async () => {
    const file = join(dir, 'plain.jsonl');
    const log = new AuditLog({
      sink: 'file',
      onFailure: 'open',
      redact: createRedactor(),
      logger: pino({ level: 'silent' }),
      output: (events) => new FileOutput(file, events),
    });
    log.record({ type: 'config', outcome: 'ok' });
    await log.close();
    const r = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    expect(Object.keys(r)).toEqual(['level', 'stream', 'time', 'audit']);
    expect(r.audit).toEqual({ type: 'config', outcome: 'ok' });
  });
});

describe('FileOutput batches', () => {
  it('groups a burst of lines into few writes, in order, and flush waits for all of them', async () => {
    const file = join(dir, 'batched.jsonl');
    let writes = 0;
    const ops: FileOps = {
      openSync: (p, flags, mode) => fs.openSync(p, flags, mode),
      closeSync: (fd) => fs.closeSync(fd),
      write: (fd, buffer, offset, length, position, cb) => {
        writes += 1;
        fs.write(fd, buffer, offset, length, position, cb);
      },
    };
    const out = new FileOutput(file, { onFailure: () => undefined, onRecovery: () => undefined }, { ops });
    for (let i = 0; i < 1_000; i++) expect(out.write(`{"n":${i},"s":"é"}\n`)).toBe(true);
    expect(out.unwrittenBytes).toBe(
      Buffer.byteLength(Array.from({ length: 1_000 }, (_, i) => `{"n":${i},"s":"é"}\n`).join('')),
    );
    await out.flush();
    expect(out.unwrittenBytes).toBe(0);
    expect(writes).toBeLessThanOrEqual(2);
    const got = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { n: number }).n);
    expect(got).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
    await out.close();
  });
});
