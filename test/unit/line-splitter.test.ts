import { describe, expect, it } from 'vitest';
import { findResponseId, LineSplitter } from '../../src/upstream/line-splitter.js';

interface Seen {
  lines: string[];
  oversized: { bytes: number; head: string; tail: string }[];
}

function splitter(max: number): { s: LineSplitter; seen: Seen; push: (...parts: (string | Buffer)[]) => void } {
  const seen: Seen = { lines: [], oversized: [] };
  const s = new LineSplitter(max, {
    line: (bytes) => seen.lines.push(bytes.toString('utf8')),
    oversized: (bytes, head, tail) => seen.oversized.push({ bytes, head, tail }),
  });
  return { s, seen, push: (...parts) => parts.forEach((p) => s.push(typeof p === 'string' ? Buffer.from(p) : p)) };
}

describe('LineSplitter', () => {
  it('frames lines across chunk boundaries', () => {
    const { seen, push } = splitter(1024);
    push('{"a":', '1}\n{"b"', ':2}\n', '{"c":3}');
    expect(seen.lines).toEqual(['{"a":1}', '{"b":2}']);
    push('\n');
    expect(seen.lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
  });

  it('delivers several lines of one chunk in order and skips empty lines', () => {
    const { seen, push } = splitter(1024);
    push('one\n\ntwo\nthree\n\n');
    expect(seen.lines).toEqual(['one', 'two', 'three']);
  });

  it('strips one CR of a CRLF line ending, even when the CR and LF arrive apart', () => {
    const { seen, push } = splitter(1024);
    push('a\r\n', 'b\r', '\nc\r\r\n', '\r\n');
    expect(seen.lines).toEqual(['a', 'b', 'c\r']);
  });

  it('keeps a multi-byte character split between chunks intact', () => {
    const { seen, push } = splitter(1024);
    const bytes = Buffer.from('{"t":"grüße ✓"}\n');
    for (let i = 0; i < bytes.length; i++) push(bytes.subarray(i, i + 1));
    expect(seen.lines).toEqual(['{"t":"grüße ✓"}']);
  });

  it('hands lines on as the bytes that arrived: bytes that are not UTF-8 are not repaired here', () => {
    const raw: Buffer[] = [];
    const s = new LineSplitter(1024, { line: (bytes) => raw.push(Buffer.from(bytes)), oversized: () => undefined });
    s.push(Buffer.from([0x61, 0xc0, 0xaf, 0xff, 0x0d, 0x0a, 0x62]));
    s.push(Buffer.from([0xe6, 0x0a]));
    expect(raw).toEqual([Buffer.from([0x61, 0xc0, 0xaf, 0xff]), Buffer.from([0x62, 0xe6])]);
  });

  it('copies what it buffers: a reused stream buffer does not corrupt a pending line', () => {
    const { seen, s } = splitter(1024);
    const buf = Buffer.from('abc');
    s.push(buf);
    buf.write('XYZ');
    s.push(Buffer.from('\n'));
    expect(seen.lines).toEqual(['abc']);
  });

  it('accepts a line exactly at the limit and drops one byte more', () => {
    const { seen, push } = splitter(10);
    push('0123456789\n');
    push('0123456789A\n');
    expect(seen.lines).toEqual(['0123456789']);
    expect(seen.oversized).toHaveLength(1);
    expect(seen.oversized[0]!.bytes).toBe(11);
  });

  it('drops an oversized line up to its newline, reports its size, head and tail, and carries on', () => {
    const { seen, push } = splitter(1000);
    const big = `{"result":{"content":[{"type":"text","text":"${'x'.repeat(5000)}"}]},"jsonrpc":"2.0","id":17}`;
    // Delivered in small chunks, with the next good line in the same chunk as the end of the big one.
    for (let i = 0; i < big.length; i += 300) push(big.slice(i, i + 300));
    push('\n{"jsonrpc":"2.0","id":18,"result":{}}\n');
    expect(seen.oversized).toHaveLength(1);
    const o = seen.oversized[0]!;
    expect(o.bytes).toBe(big.length);
    expect(o.head).toBe(big.slice(0, 256));
    expect(o.tail).toBe(big.slice(-256));
    expect(seen.lines).toEqual(['{"jsonrpc":"2.0","id":18,"result":{}}']);
    expect(findResponseId(o.head, o.tail)).toBe(17);
  });

  it('drops an oversized line that arrives in one chunk', () => {
    const { seen, push } = splitter(100);
    push(`${'y'.repeat(5000)}\nok\n`);
    expect(seen.oversized.map((o) => o.bytes)).toEqual([5000]);
    expect(seen.lines).toEqual(['ok']);
  });

  it('never buffers more than the limit while skipping', () => {
    const { s, seen } = splitter(64);
    for (let i = 0; i < 1000; i++) s.push(Buffer.alloc(1024, 0x61));
    // Internal state is private; what matters is that the tail kept is bounded and the line is reported once.
    s.push(Buffer.from('\n'));
    expect(seen.oversized).toHaveLength(1);
    expect(seen.oversized[0]!.bytes).toBe(1024 * 1000);
    expect(seen.oversized[0]!.tail).toHaveLength(256);
  });
});

describe('findResponseId', () => {
  it('finds a top-level id written last (the SDK order)', () => {
    const msg = '{"result":{"content":[]},"jsonrpc":"2.0","id":42}';
    expect(findResponseId(msg.slice(0, 10), msg)).toBe(42);
  });

  it('finds a top-level id written first', () => {
    expect(findResponseId('{"jsonrpc":"2.0","id":7,"result":{"content":[{"ty', 'xx"}]}}')).toBe(7);
    expect(findResponseId('{"id":8,"jsonrpc":"2.0","result":{', 'x"}}')).toBe(8);
  });

  it('tolerates whitespace around the members', () => {
    expect(findResponseId('', '"text":"a"}]} , "jsonrpc" : "2.0" , "id" : 9 }  ')).toBe(9);
    expect(findResponseId(' { "jsonrpc": "2.0", "id": 10, "result": {', '')).toBe(10);
  });

  it('does not take an "id" inside the payload for the message id', () => {
    // An order object with its own "id" at the end of the result: the message id is not visible in the kept
    // parts (the tail ends inside the payload), so nothing must be guessed.
    const head = '{"result":{"structuredContent":{"orders":[{"id":1001,"status":"x"';
    const tail = '{"id":1002,"customer_id":"cust-1","total":3}';
    expect(findResponseId(head, tail)).toBeUndefined();
    // A payload id that ends an object deep inside the result, followed by more payload.
    expect(findResponseId('{"result":{"a":[{"id":5}', '{"id":5}]}')).toBeUndefined();
  });

  it('does not take a payload "id" near the start for the message id', () => {
    expect(findResponseId('{"result":{"id":3,"content":[', '...')).toBeUndefined();
    expect(findResponseId('{"jsonrpc":"2.0","result":{"id":3,', '...')).toBeUndefined();
  });

  it('finds nothing in a message whose id is a string or missing', () => {
    expect(findResponseId('{"jsonrpc":"2.0","id":"abc","result":{', '"x"}}')).toBeUndefined();
    expect(findResponseId('{"jsonrpc":"2.0","method":"notifications/message","params":{', '"x"}}')).toBeUndefined();
    expect(findResponseId('', '')).toBeUndefined();
  });

  it('does not take the id of a request from the upstream (its own id space) for a response id', () => {
    // SDK order for requests: method, params, jsonrpc, id — the tail looks exactly like a response's.
    const sdkRequest = `{"method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":"${'z'.repeat(600)}"}}]},"jsonrpc":"2.0","id":3}`;
    expect(findResponseId(sdkRequest.slice(0, 256), sdkRequest.slice(-256))).toBeUndefined();
    expect(findResponseId('{"jsonrpc":"2.0","id":4,"method":"elicitation/create","params":{', '"x"}}')).toBeUndefined();
    expect(findResponseId('{"id":4,"jsonrpc":"2.0","method":"roots/list","params":{', '"x"}}')).toBeUndefined();
    expect(
      findResponseId('{"jsonrpc":"2.0","id":5,"params":{"a":"', '"},"method":"sampling/createMessage"}'),
    ).toBeUndefined();
  });

  it('prefers the tail over the head', () => {
    expect(findResponseId('{"jsonrpc":"2.0","id":1,"result":{', '"x"},"jsonrpc":"2.0","id":2}')).toBe(2);
  });
});
