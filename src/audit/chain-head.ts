/**
 * Where the chain in an audit file stands, read at start so the new process's chain links to it: the last
 * record's chain id, seq and hash, skipping torn lines a killed writer left. Read from the end in growing chunks.
 */
import fs from 'node:fs';
import type { ChainHead } from './chain.js';

export type FileHead =
  | { kind: 'empty' }
  | {
      kind: 'head';
      head: ChainHead;
      /** The file does not end with a newline (a writer stopped mid-line). */ partialTail: boolean;
    }
  | { kind: 'unknown'; reason: string; partialTail: boolean };

const CHUNK = 64 * 1024;
const MAX_SCAN = 4 * 1024 * 1024;

export function readFileHead(file: string): FileHead {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'empty' };
    return {
      kind: 'unknown',
      reason: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      partialTail: false,
    };
  }
  try {
    const st = fs.fstatSync(fd);
    // A device (e.g. /dev/stdout, /dev/full) or a FIFO has no last record to read.
    if (!st.isFile() || st.size === 0) return { kind: 'empty' };
    const last = Buffer.alloc(1);
    fs.readSync(fd, last, 0, 1, st.size - 1);
    const partialTail = last[0] !== 0x0a;
    // Read a growing tail until it holds a record: a writer killed mid-line (once, or again and again in a crash
    // loop, each restart ending the torn line) leaves lines that are not JSON after the last record.
    for (let want = CHUNK; ; want *= 2) {
      const start = Math.max(0, st.size - Math.min(want, MAX_SCAN));
      const buf = Buffer.alloc(st.size - start);
      fs.readSync(fd, buf, 0, buf.length, start);
      const parts = buf.toString('utf8').split('\n');
      if (start > 0) parts.shift(); // may begin mid-line
      for (let i = parts.length - 1; i >= 0; i--) {
        const line = parts[i]!;
        if (line.trim() === '') continue;
        const head = parseHead(line);
        // A killed writer may have written a whole record but not its newline: that record is the head.
        if (head !== undefined) return { ...head, partialTail };
      }
      if (start === 0) return { kind: 'unknown', reason: 'no complete record in the file', partialTail };
      if (want >= MAX_SCAN)
        return { kind: 'unknown', reason: `no complete record in the last ${MAX_SCAN} bytes`, partialTail };
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The chain head a line names; undefined for a line that is not a JSON record (torn). */
function parseHead(line: string): { kind: 'head'; head: ChainHead } | { kind: 'unknown'; reason: string } | undefined {
  let r: { chain?: unknown; seq?: unknown; hash?: unknown };
  try {
    r = JSON.parse(line) as typeof r;
  } catch {
    return undefined;
  }
  if (
    typeof r === 'object' &&
    r !== null &&
    typeof r.chain === 'string' &&
    typeof r.seq === 'number' &&
    typeof r.hash === 'string'
  )
    return { kind: 'head', head: { chain: r.chain, seq: r.seq, hash: r.hash } };
  return { kind: 'unknown', reason: 'the last record has no hash chain' };
}
