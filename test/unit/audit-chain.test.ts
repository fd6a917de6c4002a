/**
 * The hash chain and its verifier on files written here: a good chain verifies; an edited, a deleted and a
 * reordered record are each reported at their line; HMAC records need the key; restarts and an incomplete
 * line left by a killed writer are accepted only when the next run continues from the record before it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { GENESIS_HASH, HashChain, recordHash } from '../../src/audit/chain.js';
import { readFileHead } from '../../src/audit/chain-head.js';
import { verifyAuditFiles } from '../../src/audit/verify.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-chain-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function lines(chain: HashChain, n: number, from = 0): string[] {
  const out: string[] = [];
  if (from === 0) out.push(JSON.stringify(chain.seal({ level: 30, audit: { type: 'chain.start' } })));
  for (let i = out.length; i < n; i++) out.push(JSON.stringify(chain.seal({ level: 30, time: `t${i}`, audit: { type: 'mcp.request', requestId: String(i) } })));
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
    expect(verifyAuditFiles([f], { key: 'x'.repeat(32) }).problem).toMatchObject({ kind: 'altered', line: 1 });
    expect(verifyAuditFiles([file('p.jsonl', lines(new HashChain({ id: 'c' }), 2))], { key }).problem).toMatchObject({ kind: 'key' });
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
