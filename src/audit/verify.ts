/**
 * `gatehouse audit verify FILE [FILE…]`: checks the hash chain of audit files given in order (a rotated file
 * first, then its successor) and reports the FIRST problem with its file and line — a record edited (its hash
 * no longer matches its content), deleted (a gap in its chain's `seq`), reordered (a `seq` out of order) or
 * replaced (a `prevHash` that is not the previous record's hash). Several chains may share a file (one per
 * process: a restart starts a new chain whose `chain.start` links to the record before it).
 *
 * What it cannot see: records removed from the very end (keep the printed head, or ship records elsewhere as
 * they are written) — so an incomplete last line (a writer killed mid-line) is a note, not a failure — and — without an HMAC key — a file rewritten from the edit onward with recomputed hashes.
 */
import fs from 'node:fs';
import { auditKeyId, GENESIS_HASH, hashAlgOf, recordHash } from './chain.js';

export interface VerifyOptions {
  /** `audit.hashChain.hmacKey`: records must then be HMAC-SHA-256. */
  key?: string;
  /**
   * Every HMAC key the files were sealed with (the key rotated while the gateway ran): a record's `kid` picks its
   * key; a record without one (written before key ids) must verify with one of them.
   */
  keys?: readonly string[];
}

export type VerifyProblemKind = 'malformed' | 'unchained' | 'key' | 'altered' | 'missing' | 'reordered' | 'link';

export interface VerifyProblem {
  kind: VerifyProblemKind;
  file: string;
  line: number;
  message: string;
}

export interface ChainSummary {
  chain: string;
  firstSeq: number;
  lastSeq: number;
  records: number;
  head: string;
}

export interface VerifyReport {
  ok: boolean;
  records: number;
  files: readonly string[];
  chains: ChainSummary[];
  /** Notes that do not fail the check (the first record continues a chain not in these files, …). */
  notes: string[];
  problem?: VerifyProblem;
}

interface Line {
  file: string;
  line: number;
  text: string;
  /** The last line of its file and not ended by a newline. */
  partial: boolean;
}

interface Sealed {
  chain: string;
  seq: number;
  prevHash: string;
  hash: string;
  audit?: { type?: unknown };
  [k: string]: unknown;
}

export function verifyAuditFiles(files: readonly string[], opts: VerifyOptions = {}): VerifyReport {
  const keys = [...(opts.key !== undefined ? [opts.key] : []), ...(opts.keys ?? [])];
  const byKid = new Map(keys.map((k) => [auditKeyId(k), k]));
  const lines: Line[] = [];
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    const parts = text.split('\n');
    const endsWithNewline = text.endsWith('\n');
    if (endsWithNewline) parts.pop();
    parts.forEach((t, i) => {
      if (t.trim() !== '')
        lines.push({ file, line: i + 1, text: t, partial: !endsWithNewline && i === parts.length - 1 });
    });
  }
  const report: VerifyReport = { ok: false, records: 0, files, chains: [], notes: [] };
  const chains = new Map<string, ChainSummary>();
  const seen = new Set<string>([GENESIS_HASH]);
  let lastHash: string | undefined;
  let lastWhere: Line | undefined;
  /**
   * Lines killed writers left incomplete (one per kill: a crash loop leaves several in a row): accepted only when
   * the next run's chain.start continues from the record before them, or at the very end of the files (records
   * cut off at the end are what a verifier cannot see anyway; it is noted).
   */
  let incomplete: { at: Line; before: string | undefined; lines: number } | undefined;
  const fail = (at: Line, kind: VerifyProblemKind, message: string): VerifyReport => {
    report.problem = { kind, file: at.file, line: at.line, message };
    report.chains = [...chains.values()];
    return report;
  };

  for (let i = 0; i < lines.length; i++) {
    const at = lines[i]!;
    const r = parse(at.text);
    if (r === undefined) {
      if (incomplete !== undefined) incomplete.lines += 1;
      else incomplete = { at, before: lastHash, lines: 1 };
      continue;
    }
    if (!isSealed(r)) return fail(at, 'unchained', 'record without a hash chain (chain, seq, prevHash, hash)');
    const alg = hashAlgOf(r.hash);
    if (alg === undefined) return fail(at, 'unchained', `unknown hash algorithm in "${r.hash.slice(0, 20)}"`);
    if (alg === 'hmac-sha256' && keys.length === 0)
      return fail(at, 'key', 'records are HMAC-SHA-256: pass the key (--key-env NAME or --key-file FILE)');
    if (alg === 'sha256' && keys.length > 0)
      return fail(at, 'key', 'record is plain SHA-256 although a key was given (HMAC records expected)');
    let key: string | undefined;
    if (alg === 'hmac-sha256' && typeof r.kid === 'string') {
      key = byKid.get(r.kid);
      if (key === undefined)
        return fail(
          at,
          'key',
          `record sealed with key ${r.kid}, which none of the keys given is: pass every key the file was sealed with (the key rotated?)`,
        );
    } else if (alg === 'hmac-sha256') {
      // Written before key ids: whichever key given makes the hash.
      key = keys.find((k) => recordHash(r, k) === r.hash) ?? keys[0];
    }
    if (recordHash(r, key) !== r.hash)
      return fail(at, 'altered', `record altered: its hash does not match its content (chain ${r.chain} seq ${r.seq})`);
    // JSON.parse keeps the last of two equal keys, so a member inserted before the real one leaves the hash intact
    // while a reader that takes the first (or a human) sees the forgery. The gateway never writes one.
    const dup = duplicateKey(at.text);
    if (dup !== undefined)
      return fail(
        at,
        'altered',
        `record altered: key ${JSON.stringify(dup.slice(0, 40))} appears twice in one object (chain ${r.chain} seq ${r.seq})`,
      );

    const isStart = r.audit?.type === 'chain.start';
    if (incomplete !== undefined) {
      if (!(isStart && r.seq === 0 && r.prevHash === (incomplete.before ?? r.prevHash)))
        return fail(incomplete.at, 'malformed', 'not a complete JSON record');
      report.notes.push(
        `${incomplete.at.file}:${incomplete.at.line}: ${incomplete.lines === 1 ? 'an incomplete record' : `${incomplete.lines} incomplete records`} (a writer stopped mid-line); the next run continued from the record before it`,
      );
      incomplete = undefined;
    }
    const known = chains.get(r.chain);
    if (known !== undefined) {
      const expected = known.lastSeq + 1;
      if (r.seq > expected) {
        const later = lines.slice(i + 1).find((l) => {
          const o = parse(l.text);
          return o !== undefined && isSealed(o) && o.chain === r.chain && o.seq === expected;
        });
        if (later !== undefined)
          return fail(
            at,
            'reordered',
            `record out of order: chain ${r.chain} seq ${r.seq} where seq ${expected} was expected (found later at ${later.file}:${later.line})`,
          );
        return fail(
          at,
          'missing',
          `record missing before this one: chain ${r.chain} seq ${expected}${r.seq - 1 > expected ? `..${r.seq - 1}` : ''} not found (deleted?)`,
        );
      }
      if (r.seq < expected)
        return fail(
          at,
          'reordered',
          `record out of order: chain ${r.chain} seq ${r.seq} after seq ${known.lastSeq} (reordered or duplicated)`,
        );
      if (r.prevHash !== known.head)
        return fail(
          at,
          'link',
          `prevHash does not match the previous record of chain ${r.chain} (seq ${known.lastSeq}): a record before this one was replaced`,
        );
      known.lastSeq = r.seq;
      known.records += 1;
      known.head = r.hash;
    } else {
      if (lastWhere === undefined) {
        // The first record of the run anchors it: what came before is in a file not given (or was rotated away).
        if (r.prevHash !== GENESIS_HASH)
          report.notes.push(
            `${at.file}:${at.line}: starts after ${r.prevHash} (chain ${r.chain} seq ${r.seq}), a record not in these files`,
          );
      } else {
        if (!isStart || r.seq !== 0)
          return fail(
            at,
            'link',
            `record of chain ${r.chain} (seq ${r.seq}) without that chain's chain.start before it: records missing or reordered`,
          );
        if (!seen.has(r.prevHash))
          return fail(at, 'link', `chain.start of chain ${r.chain} links to ${r.prevHash}, which is no earlier record`);
        if (r.prevHash === GENESIS_HASH)
          report.notes.push(
            `${at.file}:${at.line}: chain ${r.chain} starts afresh (its writer could not read the previous head)`,
          );
      }
      chains.set(r.chain, { chain: r.chain, firstSeq: r.seq, lastSeq: r.seq, records: 1, head: r.hash });
    }
    seen.add(r.hash);
    lastHash = r.hash;
    lastWhere = at;
    report.records += 1;
  }
  if (incomplete !== undefined) {
    if (report.records === 0)
      return fail(incomplete.at, 'malformed', 'not a complete JSON record (no record in these files)');
    report.notes.push(
      `${incomplete.at.file}:${incomplete.at.line}: incomplete last record (the writer stopped mid-line); what it was writing is lost`,
    );
  }
  report.chains = [...chains.values()];
  report.ok = true;
  return report;
}

export function formatVerifyReport(r: VerifyReport): string {
  const out: string[] = [];
  for (const n of r.notes) out.push(`note: ${n}`);
  if (r.problem !== undefined) {
    out.push(`${r.problem.file}:${r.problem.line}: ${r.problem.message}`);
    out.push(`FAILED after ${r.records} good record${r.records === 1 ? '' : 's'}`);
    return out.join('\n');
  }
  const files = r.files.length === 1 ? r.files[0]! : `${r.files.length} files`;
  out.push(
    `OK: ${r.records} record${r.records === 1 ? '' : 's'} in ${files}, ${r.chains.length} chain${r.chains.length === 1 ? '' : 's'}`,
  );
  for (const c of r.chains)
    out.push(`  chain ${c.chain}: seq ${c.firstSeq}..${c.lastSeq} (${c.records} records), head ${c.head}`);
  return out.join('\n');
}

function parse(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The first key that appears twice in one object of a well-formed JSON text, if any. */
function duplicateKey(text: string): string | undefined {
  const objects: (Set<string> | undefined)[] = []; // undefined: an array
  let keyNext = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (keyNext) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const seen = objects[objects.length - 1]!;
        if (seen.has(key)) return key;
        seen.add(key);
        keyNext = false;
      }
      i = j;
    } else if (c === '{') {
      objects.push(new Set());
      keyNext = true;
    } else if (c === '[') {
      objects.push(undefined);
      keyNext = false;
    } else if (c === '}' || c === ']') {
      objects.pop();
      keyNext = false;
    } else if (c === ',') {
      keyNext = objects[objects.length - 1] !== undefined;
    }
  }
  return undefined;
}

function isSealed(r: Record<string, unknown>): r is Sealed {
  return (
    typeof r.chain === 'string' &&
    typeof r.seq === 'number' &&
    Number.isSafeInteger(r.seq) &&
    typeof r.prevHash === 'string' &&
    typeof r.hash === 'string'
  );
}
