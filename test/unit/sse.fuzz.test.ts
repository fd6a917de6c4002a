/**
 * Property tests of the SSE parser (lib/sse.ts), seeded and bounded: for any event stream — CR, LF and CRLF
 * endings, a BOM, multi-byte text, bytes that are not UTF-8, fields we keep and fields we skip, a small cap —
 *  1. any split of its bytes into chunks gives the same events and the same drops as one chunk;
 *  2. what it dispatches is what a plain reading of WHATWG HTML §9.2.6 over the whole byte array gives (the model
 *     below), with sizes in bytes and text strictly UTF-8.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SseParser } from '../../src/lib/sse.js';
import { findResponseId } from '../../src/upstream/line-splitter.js';

type Outcome =
  { event: string; data: string; id?: string } | { dropped: 'oversized' | 'not-utf8'; bytes: number; id?: number };

function run(chunks: readonly Uint8Array[], cap: number): Outcome[] {
  const out: Outcome[] = [];
  const p = new SseParser(
    cap,
    (e) => out.push(e),
    (d) => {
      const id = findResponseId(d.head, d.tail);
      out.push(id === undefined ? { dropped: d.reason, bytes: d.bytes } : { dropped: d.reason, bytes: d.bytes, id });
    },
  );
  for (const c of chunks) p.push(c);
  return out;
}

/** The stream cut at these points (sorted, deduplicated, within it). */
function split(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const c of at) {
    parts.push(bytes.subarray(from, c));
    from = c;
  }
  parts.push(bytes.subarray(from));
  return parts;
}

/** Where a streaming UTF-8 decoder first fails on `bytes` (bytes consumed), Infinity if never, `length + 1` at the flush. */
function firstError(bytes: Uint8Array): number {
  const d = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  for (let i = 0; i < bytes.length; i++) {
    try {
      d.decode(bytes.subarray(i, i + 1), { stream: true });
    } catch {
      return i + 1;
    }
  }
  try {
    d.decode();
  } catch {
    return bytes.length + 1;
  }
  return Infinity;
}

/** The model: the spec's steps over the whole stream, written plainly. */
function model(stream: Buffer, cap: number): Outcome[] {
  let s = stream;
  if (s[0] === 0xef && s[1] === 0xbb && s[2] === 0xbf) s = s.subarray(3);
  const lines: Buffer[] = [];
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== 0x0a && s[i] !== 0x0d) continue;
    lines.push(s.subarray(from, i));
    if (s[i] === 0x0d && s[i + 1] === 0x0a) i++;
    from = i + 1;
  }
  const out: Outcome[] = [];
  let data: string[] = [];
  let bytes = 0;
  let type = '';
  let lastId: string | undefined;
  let dropped: 'oversized' | 'not-utf8' | undefined;
  let ends = '';
  let dataLines = 0;
  for (const line of lines) {
    if (line.length === 0) {
      if (dropped) {
        const id = findResponseId(ends.slice(0, 256), ends.slice(-256));
        out.push(id === undefined ? { dropped, bytes } : { dropped, bytes, id });
      } else if (data.length > 0 && data.join('\n') !== '')
        out.push({ event: type || 'message', data: data.join('\n'), ...(lastId !== undefined ? { id: lastId } : {}) });
      data = [];
      bytes = 0;
      type = '';
      dropped = undefined;
      ends = '';
      dataLines = 0;
      continue;
    }
    const colon = line.indexOf(0x3a);
    const name = (colon === -1 ? line : line.subarray(0, colon)).toString('latin1');
    let value = colon === -1 ? Buffer.alloc(0) : line.subarray(colon + 1);
    if (value[0] === 0x20) value = value.subarray(1);
    if (name !== 'data' && name !== 'event' && name !== 'id') continue;
    const join = name === 'data' && dataLines > 0 ? 1 : 0;
    if (name === 'data') dataLines++;
    if (dropped) {
      if (name === 'data') {
        bytes += join + value.length;
        ends += (join ? '\n' : '') + value.toString('utf8');
      }
      continue;
    }
    // The first problem in byte order names a drop: the byte past the cap, or the byte where decoding fails.
    const room = name === 'data' ? cap - bytes - join : cap;
    const error = firstError(value);
    if (room < 0 || (value.length > room && error > room)) dropped = 'oversized';
    else if (error !== Infinity) dropped = 'not-utf8';
    if (dropped) {
      if (name === 'data') {
        ends = [...data, value.toString('utf8')].join('\n');
        bytes += join + value.length;
      } else ends = data.join('\n');
      data = [];
      continue;
    }
    const text = value.toString('utf8');
    if (name === 'data') {
      data.push(text);
      bytes += join + value.length;
    } else if (name === 'event') type = text;
    else if (!text.includes('\0')) lastId = text;
  }
  return out;
}

const EOL = fc.constantFrom('\n', '\r', '\r\n');
const NAME = fc.constantFrom(
  'data',
  'data',
  'data',
  'data',
  'event',
  'id',
  'retry',
  '',
  'dat',
  'datas',
  'a-very-long-field-name',
);
const VALUE = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme', maxLength: 10 }).map((s) => Buffer.from(s)) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom('{"jsonrpc":"2.0","id":7,"result":{}}', '{"result":{},"jsonrpc":"2.0","id":8}', '')
      .map((s) => Buffer.from(s)),
  },
  // Anything at all: overlong forms, lone continuation bytes, a sequence cut short, CR and LF inside.
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b)) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom([0xc0, 0xaf], [0xff], [0xed, 0xa0, 0x80], [0xe6, 0x97], [0xf0, 0x9d, 0x84, 0x9e])
      .map((b) => Buffer.from(b)),
  },
);
const LINE = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(NAME, fc.constantFrom(': ', ':', ':  ', ''), fc.array(VALUE, { maxLength: 3 }), EOL)
      .map(([n, sep, v, e]) => Buffer.concat([Buffer.from(n + sep), ...v, Buffer.from(e)])),
  },
  { weight: 2, arbitrary: EOL.map((e) => Buffer.from(e)) }, // a blank line: dispatch
  { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 8 }), EOL).map(([c, e]) => Buffer.from(`:${c}${e}`)) },
);
const STREAM = fc
  .tuple(
    fc.constantFrom(Buffer.alloc(0), Buffer.alloc(0), Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from([0xef, 0xbb])),
    fc.array(LINE, { maxLength: 24 }),
  )
  .map(([bom, lines]) => Buffer.concat([bom, ...lines]));
const CAP = fc.integer({ min: 0, max: 48 });
const CUTS = fc.array(fc.nat(), { maxLength: 12 });

describe('SseParser properties (fast-check, fixed seeds)', () => {
  it('any split of the bytes into chunks gives the same events and drops (one byte at a time included)', () => {
    fc.assert(
      fc.property(STREAM, CAP, CUTS, (stream, cap, cuts) => {
        const whole = run([stream], cap);
        expect(run(split(stream, cuts), cap)).toEqual(whole);
        expect(
          run(
            [...stream].map((b) => Uint8Array.of(b)),
            cap,
          ),
        ).toEqual(whole);
      }),
      { seed: 20261207, numRuns: 250 },
    );
  });

  it('dispatches what the spec reading of the whole stream gives: CR/LF/CRLF, sizes in bytes, strict UTF-8', () => {
    fc.assert(
      fc.property(STREAM, CAP, CUTS, (stream, cap, cuts) => {
        expect(run(split(stream, cuts), cap)).toEqual(model(stream, cap));
      }),
      { seed: 7, numRuns: 400 },
    );
  });

  it('never dispatches an event whose data is over the cap in bytes', () => {
    fc.assert(
      fc.property(STREAM, CAP, CUTS, (stream, cap, cuts) => {
        for (const o of run(split(stream, cuts), cap))
          if ('data' in o) expect(Buffer.byteLength(o.data)).toBeLessThanOrEqual(cap);
      }),
      { seed: 99, numRuns: 300 },
    );
  });
});
