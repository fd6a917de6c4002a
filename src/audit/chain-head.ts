/**
 * Where the chain in an audit file stands, read at start so the new process's chain links to it: the last
 * complete line's chain id, seq and hash. Read from the end in chunks (a record is at most a few hundred KiB).
 */
import fs from 'node:fs';
import type { ChainHead } from './chain.js';

export type FileHead =
  | { kind: 'empty' }
  | { kind: 'head'; head: ChainHead; /** The file does not end with a newline (a writer stopped mid-line). */ partialTail: boolean }
  | { kind: 'unknown'; reason: string; partialTail: boolean };

const CHUNK = 64 * 1024;
const MAX_SCAN = 4 * 1024 * 1024;

export function readFileHead(file: string): FileHead {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'empty' };
    return { kind: 'unknown', reason: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, partialTail: false };
  }
  try {
    const st = fs.fstatSync(fd);
    // A device (e.g. /dev/stdout, /dev/full) or a FIFO has no last record to read.
    if (!st.isFile() || st.size === 0) return { kind: 'empty' };
    let end = st.size;
    let tail = Buffer.alloc(0);
    let partialTail: boolean | undefined;
    while (end > 0 && st.size - end < MAX_SCAN) {
      const start = Math.max(0, end - CHUNK);
      const chunk = Buffer.alloc(end - start);
      fs.readSync(fd, chunk, 0, chunk.length, start);
      tail = Buffer.concat([chunk, tail]);
      end = start;
      partialTail ??= tail[tail.length - 1] !== 0x0a;
      // The last complete line lies between the last two newlines at or before the last complete line's end.
      const text = tail.toString('utf8');
      const lastNl = text.lastIndexOf('\n');
      if (lastNl < 0) continue;
      const prevNl = text.lastIndexOf('\n', lastNl - 1);
      if (prevNl < 0 && end > 0) continue;
      return parseHead(text.slice(prevNl + 1, lastNl), partialTail);
    }
    return { kind: 'unknown', reason: 'no complete record at the end of the file', partialTail: partialTail ?? false };
  } finally {
    fs.closeSync(fd);
  }
}

function parseHead(line: string, partialTail: boolean): FileHead {
  try {
    const r = JSON.parse(line) as { chain?: unknown; seq?: unknown; hash?: unknown };
    if (typeof r.chain === 'string' && typeof r.seq === 'number' && typeof r.hash === 'string') return { kind: 'head', head: { chain: r.chain, seq: r.seq, hash: r.hash }, partialTail };
    return { kind: 'unknown', reason: 'the last record has no hash chain', partialTail };
  } catch {
    return { kind: 'unknown', reason: 'the last line is not a JSON record', partialTail };
  }
}
