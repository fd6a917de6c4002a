/**
 * The hash chain and its verifier on files written here: a good chain verifies; an edited, a deleted and a
 * reordered record are each reported at their line; HMAC records need the key; restarts and an incomplete
 * line left by a killed writer are accepted only when the next run continues from the record before it.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { auditKeyId, GENESIS_HASH, HashChain, recordHash } from '../../src/audit/chain.js';
import { readFileHead } from '../../src/audit/chain-head.js';
import { createAuditSink } from '../../src/audit/create-audit-sink.js';
import type { AuditConfig } from '../../src/config/types.js';
import { verifyAuditFiles } from '../../src/audit/verify.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-chain-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function lines(chain: HashChain, n: number, from = 0): string[] {
  const out: string[] = [];
  if (from === 0) out.push(JSON.stringify(chain.seal({ level: 30, audit: { type: 'chain.start' } })));
  for (let i = out.length; i < n; i++)
    out.push(
      JSON.stringify(chain.seal({ level: 30, time: `t${i}`, audit: { type: 'mcp.request', requestId: String(i) } })),
    );
  return out;
}

function file(name: string, ls: string[]): string {
  const f = join(dir, name);
  writeFileSync(f, `${ls.join('\n')}\n`);
  return f;
}

describe('canonicalJson', () => {
  it('sorts keys at every depth and survives a JSON round trip', () => {
    const v = { b: 1, a: { d: [1, { z: 1, y: 'x\n"}' }], c: null }, u: undefined };
    expect(canonicalJson(v)).toBe('{"a":{"c":null,"d":[1,{"y":"x\\n\\"}","z":1}]},"b":1}');
    expect(canonicalJson(JSON.parse(JSON.stringify(v)))).toBe(canonicalJson(v));
  });

  it('a record as pino writes it verifies, also after a collector re-serialises it (other key order, \\u escapes); unicode forms stay distinct', async () => {
    const f = join(dir, 'canon.jsonl');
    const log = createAuditSink(
      { sink: 'file', file: f, onFailure: 'closed', hashChain: { enabled: true }, redact: [] },
      { logger: pino({ level: 'silent' }) },
    );
    const args = {
      é: 'e\u0301',
      'e\u0301': 'é',
      emoji: '🦊',
      sep: '\u2028\u2029',
      ctl: '\u0000\u001f',
      n: [0.1 + 0.2, 1e21, -0, 2 ** 53 + 1, 5e-324, -1.5e-7],
      z: { b: 1, a: 2 },
    };
    log.record({ type: 'mcp.request', method: 'tools/call', arguments: args, outcome: 'ok', durationMs: 0.37 });
    await log.close();
    expect(verifyAuditFiles([f]).ok).toBe(true);
    // NFC and NFD spellings are different keys and values: no normalisation, so no two records hash alike by accident.
    const rec = JSON.parse(readFileSync(f, 'utf8').trim().split('\n')[1]!) as {
      audit: { arguments: Record<string, unknown> };
    };
    expect(Object.keys(rec.audit.arguments)).toContain('e\u0301');
    // Re-serialised with keys reversed and every non-ASCII character escaped: still the same record.
    const reverse = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(reverse)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, reverse(x)]),
            )
          : v;
    const rewritten = readFileSync(f, 'utf8')
      .trim()
      .split('\n')
      .map((l) =>
        JSON.stringify(reverse(JSON.parse(l))).replace(
          /[\u007f-\uffff]/g,
          (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
        ),
      );
    const g = join(dir, 'canon2.jsonl');
    writeFileSync(g, `${rewritten.join('\n')}\n`);
    expect(verifyAuditFiles([g]).ok).toBe(true);
  });
});

describe('HashChain', () => {
  it('links each record to the one before, from the genesis hash', () => {
    const c = new HashChain({ id: 'c1' });
    const a = c.seal({ x: 1 });
    const b = c.seal({ x: 2 });
    expect(a).toMatchObject({ chain: 'c1', seq: 0, prevHash: GENESIS_HASH });
    expect(b).toMatchObject({ seq: 1, prevHash: a.hash });
    expect(recordHash(b)).toBe(b.hash);
    expect(String(a.hash)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('uses HMAC-SHA-256 with a key, and a different key gives a different hash', () => {
    const k1 = new HashChain({ id: 'c', key: 'k'.repeat(32) }).seal({ x: 1 });
    const k2 = new HashChain({ id: 'c', key: 'j'.repeat(32) }).seal({ x: 1 });
    expect(String(k1.hash)).toMatch(/^hmac-sha256:/);
    expect(k1.hash).not.toBe(k2.hash);
  });
});

describe('verifyAuditFiles', () => {
  it('passes a good chain and summarises it', () => {
    const f = file('a.jsonl', lines(new HashChain({ id: 'c1' }), 5));
    const r = verifyAuditFiles([f]);
    expect(r.ok).toBe(true);
    expect(r.records).toBe(5);
    expect(r.chains).toEqual([expect.objectContaining({ chain: 'c1', firstSeq: 0, lastSeq: 4, records: 5 })]);
  });

  it('reports an edited record at its line', () => {
    const ls = lines(new HashChain({ id: 'c1' }), 6);
    ls[3] = ls[3]!.replace('"requestId":"3"', '"requestId":"33"');
    const r = verifyAuditFiles([file('a.jsonl', ls)]);
    expect(r.problem).toMatchObject({ kind: 'altered', line: 4 });
  });

  it('reports a member inserted before its real twin (JSON.parse keeps the last, so the hash alone would still match)', () => {
    const ls = lines(new HashChain({ id: 'c' }), 3);
    const forged = ls[1]!.replace(
      /^\{/,
      '{"audit":{"type":"mcp.request","decision":"allow","subject":"someone-else"},',
    );
    expect(JSON.parse(forged)).toEqual(JSON.parse(ls[1]!));
    expect(verifyAuditFiles([file('dup.jsonl', [ls[0]!, forged, ls[2]!])]).problem).toMatchObject({
      kind: 'altered',
      line: 2,
    });
    // Equal keys in different objects are fine.
    const c = new HashChain({ id: 'd' });
    const ok = [JSON.stringify(c.seal({ audit: { type: 'chain.start', x: { type: 1, a: ['"type"', { type: 2 }] } } }))];
    expect(verifyAuditFiles([file('nodup.jsonl', ok)]).ok).toBe(true);
  });

  it('reports an edited record whose hash was recomputed at the next line (the link breaks)', () => {
    const ls = lines(new HashChain({ id: 'c1' }), 6);
    const rec = JSON.parse(ls[2]!) as Record<string, unknown>;
    rec.time = 'forged';
    rec.hash = recordHash(rec);
    ls[2] = JSON.stringify(rec);
    expect(verifyAuditFiles([file('a.jsonl', ls)]).problem).toMatchObject({ kind: 'link', line: 4 });
  });

  it('reports a deleted record at the line where it is missing', () => {
    const ls = lines(new HashChain({ id: 'c1' }), 6);
    ls.splice(2, 1);
    const r = verifyAuditFiles([file('a.jsonl', ls)]);
    expect(r.problem).toMatchObject({ kind: 'missing', line: 3 });
    expect(r.problem?.message).toContain('seq 2');
  });

  it('reports two swapped records as reordered, at the first of them', () => {
    const ls = lines(new HashChain({ id: 'c1' }), 6);
    [ls[3], ls[4]] = [ls[4]!, ls[3]!];
    const r = verifyAuditFiles([file('a.jsonl', ls)]);
    expect(r.problem).toMatchObject({ kind: 'reordered', line: 4 });
  });

  it('needs the key for HMAC records, and refuses plain records when a key is given', () => {
    const key = 'k'.repeat(32);
    const f = file('h.jsonl', lines(new HashChain({ id: 'c', key }), 3));
    expect(verifyAuditFiles([f]).problem).toMatchObject({ kind: 'key', line: 1 });
    expect(verifyAuditFiles([f], { key }).ok).toBe(true);
    // Each record names its key (kid): another key is said to be the wrong one, not an edit.
    expect(verifyAuditFiles([f], { key: 'x'.repeat(32) }).problem).toMatchObject({ kind: 'key', line: 1 });
    expect(verifyAuditFiles([file('p.jsonl', lines(new HashChain({ id: 'c' }), 2))], { key }).problem).toMatchObject({
      kind: 'key',
    });
  });

  it('verifies a chain whose HMAC key rotated midway with both keys, each record by its kid', () => {
    const [k1, k2] = ['1'.repeat(32), '2'.repeat(32)];
    const c = new HashChain({ id: 'r', key: k1 });
    const before = [0, 1].map((i) =>
      JSON.stringify(c.seal({ level: 30, audit: { type: i === 0 ? 'chain.start' : 'config' } })),
    );
    c.setKey(k2);
    const after = [0, 1].map(() => JSON.stringify(c.seal({ level: 30, audit: { type: 'secret.rotated' } })));
    const f = file('rot.jsonl', [...before, ...after]);
    expect(JSON.parse(before[0]!).kid).toBe(auditKeyId(k1));
    expect(JSON.parse(after[0]!).kid).toBe(auditKeyId(k2));
    expect(verifyAuditFiles([f], { keys: [k1, k2] }).ok).toBe(true);
    expect(verifyAuditFiles([f], { keys: [k2, k1] }).ok).toBe(true);
    // Only the old key: the records after the rotation name a key not given.
    expect(verifyAuditFiles([f], { keys: [k1] }).problem).toMatchObject({ kind: 'key', line: 3 });
    // A kid swapped for the other key's is an edit (kid is inside the hash).
    const forged = after[0]!.replace(auditKeyId(k2), auditKeyId(k1));
    expect(
      verifyAuditFiles([file('forged.jsonl', [...before, forged, after[1]!])], { keys: [k1, k2] }).problem,
    ).toMatchObject({
      kind: 'altered',
      line: 3,
    });
  });

  it('still verifies HMAC records written before key ids (no kid) with the key among several', () => {
    const key = 'o'.repeat(32);
    const c = new HashChain({ id: 'old', key });
    const old = [0, 1, 2].map((i) => {
      const {
        kid: _kid,
        hash: _hash,
        ...body
      } = c.seal({ level: 30, audit: { type: i === 0 ? 'chain.start' : 'config' } });
      return body;
    });
    // Re-seal as the earlier format did: the same body without kid, chained by hand.
    let prev = old[0]!.prevHash as string;
    const text = old.map((b) => {
      const r: Record<string, unknown> = { ...b, prevHash: prev };
      r.hash = recordHash(r, key);
      prev = r.hash as string;
      return JSON.stringify(r);
    });
    expect(verifyAuditFiles([file('old.jsonl', text)], { keys: ['n'.repeat(32), key] }).ok).toBe(true);
  });

  it('follows a restart (a new chain whose chain.start links to the last record) and rotation across files', () => {
    const first = new HashChain({ id: 'run1' });
    const a = lines(first, 3);
    const second = new HashChain({ id: 'run2', previous: first.head.hash });
    const b = lines(second, 4);
    const one = file('one.jsonl', [...a, ...b.slice(0, 2)]);
    const two = file('two.jsonl', b.slice(2));
    const r = verifyAuditFiles([one, two]);
    expect(r.ok).toBe(true);
    expect(r.chains.map((c) => c.chain)).toEqual(['run1', 'run2']);
    // The second file alone: its first record anchors the run (with a note), the rest must follow.
    const alone = verifyAuditFiles([two]);
    expect(alone.ok).toBe(true);
    expect(alone.notes[0]).toContain('starts after');
    // In the wrong order the rotated file's records come after their successors.
    expect(verifyAuditFiles([two, one]).ok).toBe(false);
  });

  it('refuses a second chain that does not start with chain.start', () => {
    const a = lines(new HashChain({ id: 'a' }), 2);
    const b = lines(new HashChain({ id: 'b' }), 3).slice(1);
    expect(verifyAuditFiles([file('x.jsonl', [...a, ...b])]).problem).toMatchObject({ kind: 'link', line: 3 });
  });

  it('accepts an incomplete line a killed writer left only when the next run continues from the record before it', () => {
    const first = new HashChain({ id: 'run1' });
    const a = lines(first, 3);
    const cut = a[2]!.slice(0, 20);
    const good = new HashChain({ id: 'run2', previous: JSON.parse(a[1]!).hash as string });
    const ok = verifyAuditFiles([file('k.jsonl', [a[0]!, a[1]!, cut, ...lines(good, 2)])]);
    expect(ok.ok).toBe(true);
    expect(ok.notes.join()).toContain('incomplete record');
    const bad = verifyAuditFiles([file('m.jsonl', [a[0]!, a[1]!, cut, a[2]!])]);
    expect(bad.problem).toMatchObject({ kind: 'malformed', line: 3 });
  });
});

describe('a killed writer, restarted (the file a SIGKILLed replica leaves)', () => {
  const config = (f: string): AuditConfig => ({
    sink: 'file',
    file: f,
    onFailure: 'closed',
    hashChain: { enabled: true },
    redact: [],
  });
  const run = async (f: string, n: number): Promise<void> => {
    const log = createAuditSink(config(f), { logger: pino({ level: 'silent' }) });
    for (let i = 0; i < n; i++)
      log.record({ type: 'mcp.request', method: 'tools/call', requestId: String(i), outcome: 'ok' });
    await log.close();
  };
  const recs = (f: string): { chain: string; seq: number; prevHash: string; hash: string; audit: { type: string } }[] =>
    readFileSync(f, 'utf8')
      .split('\n')
      .flatMap((l) => {
        try {
          return [
            JSON.parse(l) as { chain: string; seq: number; prevHash: string; hash: string; audit: { type: string } },
          ];
        } catch {
          return [];
        }
      });

  it('a torn last line is a note (the end of a file is what a verifier cannot vouch for), not a failure', async () => {
    const f = join(dir, 'a.jsonl');
    await run(f, 3);
    appendFileSync(f, '{"level":30,"stream":"audit","ti');
    const r = verifyAuditFiles([f]);
    expect(r.ok).toBe(true);
    expect(r.notes.join()).toContain('incomplete last record');
  });

  it('a crash loop (torn line, restart killed before its first write, torn again): the next run links past every torn line and the file verifies', async () => {
    const f = join(dir, 'b.jsonl');
    await run(f, 3);
    const head = recs(f).at(-1)!;
    appendFileSync(f, '{"level":30,"stream":"audit","ti');
    // The second run ended the torn line, then was killed while writing its chain.start.
    appendFileSync(f, '\n{"level":30,"stream":"audit","time":"2026-');
    await run(f, 2);
    const start = recs(f)
      .filter((x) => x.audit.type === 'chain.start')
      .at(-1)!;
    expect(start.prevHash).toBe(head.hash);
    const r = verifyAuditFiles([f]);
    expect(r.problem).toBeUndefined();
    expect(r.notes.join()).toContain('2 incomplete records');
  });

  it('a whole last record without its newline is the head the next run continues', async () => {
    const f = join(dir, 'c.jsonl');
    await run(f, 2);
    writeFileSync(f, readFileSync(f, 'utf8').replace(/\n$/, ''));
    const last = recs(f).at(-1)!;
    await run(f, 1);
    const start = recs(f)
      .filter((x) => x.audit.type === 'chain.start')
      .at(-1)!;
    expect(start.prevHash).toBe(last.hash);
    expect(verifyAuditFiles([f]).ok).toBe(true);
  });
});

describe('readFileHead', () => {
  it('reads the last complete record, and notices a partial last line', () => {
    const c = new HashChain({ id: 'h' });
    const ls = lines(c, 3);
    const f = file('head.jsonl', ls);
    expect(readFileHead(f)).toEqual({ kind: 'head', head: c.head, partialTail: false });
    writeFileSync(f, `${readFileSync(f, 'utf8')}{"partial`);
    expect(readFileHead(f)).toEqual({ kind: 'head', head: c.head, partialTail: true });
    expect(readFileHead(join(dir, 'none.jsonl'))).toEqual({ kind: 'empty' });
    expect(readFileHead('/dev/null')).toEqual({ kind: 'empty' });
  });
});
