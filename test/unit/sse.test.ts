import { describe, expect, it } from 'vitest';
import { SseParser, type SseDropped, type SseEvent } from '../../src/lib/sse.js';
import { findResponseId } from '../../src/upstream/line-splitter.js';

interface Harness {
  p: { push(part: string | Uint8Array): void };
  parser: SseParser;
  events: SseEvent[];
  oversized: number[];
  ends: { head: string; tail: string }[];
  dropped: SseDropped[];
}

function parser(max = 1024): Harness {
  const events: SseEvent[] = [];
  const dropped: SseDropped[] = [];
  const oversized: number[] = [];
  const ends: { head: string; tail: string }[] = [];
  const parser = new SseParser(
    max,
    (e) => events.push(e),
    (d) => {
      dropped.push(d);
      if (d.reason === 'oversized') oversized.push(d.bytes);
      ends.push({ head: d.head, tail: d.tail });
    },
  );
  return {
    parser,
    p: { push: (part) => parser.push(typeof part === 'string' ? Buffer.from(part) : part) },
    events,
    dropped,
    oversized,
    ends,
  };
}

describe('SseParser', () => {
  it('dispatches an event at the blank line, with the default type "message"', () => {
    const { p, events } = parser();
    p.push('data: {"a":1}\n');
    expect(events).toEqual([]);
    p.push('\n');
    expect(events).toEqual([{ event: 'message', data: '{"a":1}' }]);
  });

  it('joins multi-line data with newlines', () => {
    const { p, events } = parser();
    p.push('data: first\ndata: second\ndata:third\n\n');
    expect(events).toEqual([{ event: 'message', data: 'first\nsecond\nthird' }]);
  });

  it('reads event type and id, strips one leading space only; the type resets, the last event id persists', () => {
    const { p, events } = parser();
    p.push('event: endpoint\nid: 7\ndata:  /messages?sessionId=1\n\ndata: next\n\n');
    // WHATWG: the "last event ID buffer" is not cleared at dispatch; the event type is.
    expect(events).toEqual([
      { event: 'endpoint', id: '7', data: ' /messages?sessionId=1' },
      { event: 'message', id: '7', data: 'next' },
    ]);
  });

  it('ignores comments, retry and unknown fields', () => {
    const { p, events } = parser();
    p.push(': keep-alive\nretry: 1000\nfoo: bar\ndata: x\n: more comment\n\n');
    expect(events).toEqual([{ event: 'message', data: 'x' }]);
  });

  it('ignores an id that contains NUL', () => {
    const { p, events } = parser();
    p.push('id: a\0b\ndata: x\n\n');
    expect(events).toEqual([{ event: 'message', data: 'x' }]);
  });

  it('handles CRLF line endings and fields split across chunks', () => {
    const { p, events } = parser();
    for (const part of ['da', 'ta: {"x"', ':1}\r', '\n', '\r\n', 'event: message\r\ndata: y\r\n\r\n']) p.push(part);
    expect(events).toEqual([
      { event: 'message', data: '{"x":1}' },
      { event: 'message', data: 'y' },
    ]);
  });

  it('drops events without data (SEP-1699 priming events)', () => {
    const { p, events } = parser();
    p.push('id: 1\n\nevent: message\n\ndata: real\n\n');
    expect(events).toEqual([{ event: 'message', id: '1', data: 'real' }]);
  });

  it('reports a multi-line event over the cap instead of dispatching it, then carries on', () => {
    const { p, events, oversized } = parser(100);
    p.push(`data: ${'a'.repeat(60)}\n`);
    p.push(`data: ${'b'.repeat(60)}\n`);
    p.push('\n');
    p.push('data: small\n\n');
    // The data as it would have been dispatched: 60 + LF + 60 bytes.
    expect(oversized).toEqual([121]);
    expect(events).toEqual([{ event: 'message', data: 'small' }]);
  });

  it('drops a single huge line without a newline rather than buffering it', () => {
    const { p, events, oversized } = parser(100);
    p.push('data: ');
    for (let i = 0; i < 100; i++) p.push('x'.repeat(1000));
    p.push('\n\ndata: after\n\n');
    expect(oversized).toHaveLength(1);
    expect(oversized[0]).toBeGreaterThan(100);
    expect(events).toEqual([{ event: 'message', data: 'after' }]);
  });

  it('accepts an event exactly at the cap', () => {
    const { p, events, oversized } = parser(10);
    p.push(`data: ${'z'.repeat(10)}\n\n`);
    expect(oversized).toEqual([]);
    expect(events).toEqual([{ event: 'message', data: 'z'.repeat(10) }]);
  });

  it('does not dispatch an unterminated last event', () => {
    const { p, events } = parser();
    p.push('data: partial\n');
    expect(events).toEqual([]);
  });

  it('keeps the head and tail of an oversized event so its JSON-RPC id can still be found (one big data line)', () => {
    const { p, events, ends } = parser(1000);
    const message = `{"result":{"content":[{"type":"text","text":"${'x'.repeat(5000)}"}]},"jsonrpc":"2.0","id":12}`;
    p.push(`event: message\ndata: ${message}\n\ndata: next\n\n`);
    expect(ends).toEqual([{ head: message.slice(0, 256), tail: message.slice(-256) }]);
    expect(findResponseId(ends[0]!.head, ends[0]!.tail)).toBe(12);
    expect(events).toEqual([{ event: 'message', data: 'next' }]);
  });

  it('keeps the head and tail when the big line is dropped piecemeal before its newline arrives', () => {
    const { p, events, ends, oversized } = parser(1000);
    const message = `{"jsonrpc":"2.0","id":34,"result":{"content":[{"type":"text","text":"${'y'.repeat(20_000)}"}]}}`;
    const frame = `event: message\ndata: ${message}\n\nevent: message\ndata: {"jsonrpc":"2.0","id":35,"result":{}}\n\n`;
    for (let i = 0; i < frame.length; i += 700) p.push(frame.slice(i, i + 700));
    expect(oversized).toHaveLength(1);
    expect(oversized[0]).toBe(message.length);
    expect(ends[0]!.head.startsWith('{"jsonrpc":"2.0","id":34,')).toBe(true);
    expect(ends[0]!.tail).toBe(message.slice(-256));
    expect(findResponseId(ends[0]!.head, ends[0]!.tail)).toBe(34);
    // The rest of the dropped line is not mistaken for a field line, and the next event arrives intact.
    expect(events).toEqual([{ event: 'message', data: '{"jsonrpc":"2.0","id":35,"result":{}}' }]);
  });

  it('keeps the ends across several data lines of an oversized event', () => {
    const { p, ends } = parser(100);
    p.push(`data: first-${'a'.repeat(60)}\ndata: ${'b'.repeat(60)}\ndata: ${'c'.repeat(300)}-last\n\n`);
    expect(ends[0]!.head.startsWith('first-aaa')).toBe(true);
    expect(ends[0]!.head).toContain('\nbbb');
    expect(ends[0]!.tail.endsWith('c-last')).toBe(true);
    expect(ends[0]!.tail).toHaveLength(256);
  });

  it('skips a huge comment line without buffering it; it is not an event and drops none', () => {
    const { p, dropped, events } = parser(10);
    p.push(`: ${'k'.repeat(50)}`);
    p.push(`${'k'.repeat(50)}\n\ndata: y\n\n`);
    expect(dropped).toEqual([]);
    expect(events).toEqual([{ event: 'message', data: 'y' }]);
  });
});

describe('SseParser: line endings (WHATWG HTML §9.2.6: CRLF, LF or a bare CR)', () => {
  it('reads a stream framed with bare CRs', () => {
    const { p, events } = parser();
    p.push('event: message\rdata: {"a":1}\r\rdata: b\r\r');
    expect(events).toEqual([
      { event: 'message', data: '{"a":1}' },
      { event: 'message', data: 'b' },
    ]);
  });

  it('a CR that ends one chunk and an LF that starts the next are one line ending, not two', () => {
    const { p, events } = parser();
    p.push('data: one\r');
    p.push('\ndata: two\r');
    p.push('\n\r');
    expect(events).toEqual([{ event: 'message', data: 'one\ntwo' }]);
  });

  it('a CR at the end of a chunk followed by a CR is a blank line (the event is dispatched)', () => {
    const { p, events } = parser();
    p.push('data: x\r');
    expect(events).toEqual([]);
    p.push('\r');
    expect(events).toEqual([{ event: 'message', data: 'x' }]);
  });

  it('mixes endings within one stream', () => {
    const { p, events } = parser();
    p.push('data: a\r\ndata: b\ndata: c\r\n\rdata: d\n\n');
    expect(events).toEqual([
      { event: 'message', data: 'a\nb\nc' },
      { event: 'message', data: 'd' },
    ]);
  });

  it('ignores one leading BOM of the stream, even split across chunks, and only there', () => {
    const { p, events } = parser();
    p.push(Buffer.from([0xef]));
    p.push(Buffer.from([0xbb, 0xbf]));
    p.push('data: x\n\ndata: \uFEFFy\n\n');
    expect(events).toEqual([
      { event: 'message', data: 'x' },
      { event: 'message', data: '\uFEFFy' },
    ]);
  });

  it('a "data" line without a colon adds an empty line to the data', () => {
    const { p, events } = parser();
    p.push('data: a\ndata\ndata: b\n\n');
    expect(events).toEqual([{ event: 'message', data: 'a\n\nb' }]);
  });
});

describe('SseParser: bytes, not characters', () => {
  it('keeps a multi-byte character split between chunks intact', () => {
    const { p, events } = parser();
    const bytes = Buffer.from('data: {"t":"grüße ✓ 𝄞"}\n\n');
    for (let i = 0; i < bytes.length; i++) p.push(bytes.subarray(i, i + 1));
    expect(events).toEqual([{ event: 'message', data: '{"t":"grüße ✓ 𝄞"}' }]);
  });

  it('caps an event at its UTF-8 size: 5 × "é" is 10 bytes, within a cap of 10 and over a cap of 9', () => {
    const at = parser(10);
    at.p.push('data: ééééé\n\n');
    expect(at.events).toEqual([{ event: 'message', data: 'ééééé' }]);
    const over = parser(9);
    over.p.push('data: ééééé\n\n');
    expect(over.events).toEqual([]);
    expect(over.oversized).toEqual([10]);
  });

  it('says the event is lost as soon as its bytes pass the cap, before the line ends', () => {
    const { p, parser: sse, dropped } = parser(1000);
    p.push('data: {"jsonrpc":"2.0","id":5,"result":{"text":"');
    expect(sse.dropping).toBeUndefined();
    p.push('ü'.repeat(600)); // 1200 bytes, 600 characters
    expect(sse.dropping).toMatchObject({ reason: 'oversized' });
    expect(sse.dropping!.bytes).toBeGreaterThan(1000);
    expect(findResponseId(sse.dropping!.head, sse.dropping!.tail)).toBe(5); // written first: already in the head
    expect(dropped).toEqual([]); // reported at the event's end as usual
  });
});

describe('SseParser: strict UTF-8', () => {
  const bad = (s1: string, bytes: number[], s2: string): Buffer =>
    Buffer.concat([Buffer.from(s1), Buffer.from(bytes), Buffer.from(s2)]);

  it('drops an event whose data holds bytes that are not UTF-8 (C0 AF FF), keeping the ends for its id; the next event is fine', () => {
    const { p, events, dropped } = parser();
    p.push(
      bad(
        'event: message\ndata: {"result":{"content":[{"type":"text","text":"a',
        [0xc0, 0xaf, 0xff],
        'b"}]},"jsonrpc":"2.0","id":21}\n\n',
      ),
    );
    p.push('data: {"ok":1}\n\n');
    expect(dropped).toHaveLength(1);
    expect(dropped[0]!.reason).toBe('not-utf8');
    expect(findResponseId(dropped[0]!.head, dropped[0]!.tail)).toBe(21);
    expect(events).toEqual([{ event: 'message', data: '{"ok":1}' }]);
  });

  it('drops an event whose bad byte arrives in a later chunk than the start of its line', () => {
    const { p, events, dropped } = parser();
    p.push('data: {"jsonrpc":"2.0","id":22,"result":{"t":"');
    p.push(Buffer.from([0xed, 0xa0, 0x80])); // an encoded surrogate: not UTF-8
    p.push('"}}\n\n');
    expect(dropped.map((d) => d.reason)).toEqual(['not-utf8']);
    expect(findResponseId(dropped[0]!.head, dropped[0]!.tail)).toBe(22);
    expect(events).toEqual([]);
  });

  it('drops an event whose line ends inside a multi-byte character', () => {
    const { p, events, dropped } = parser();
    p.push(bad('data: x', [0xe6, 0x97], '\n\n'));
    expect(dropped.map((d) => d.reason)).toEqual(['not-utf8']);
    expect(events).toEqual([]);
  });

  it('drops an event whose type or id is not UTF-8', () => {
    const { p, events, dropped } = parser();
    p.push(bad('event: mess', [0xff], 'age\ndata: {}\n\n'));
    p.push(bad('id: ', [0xc0, 0x80], '\ndata: {}\n\n'));
    expect(dropped.map((d) => d.reason)).toEqual(['not-utf8', 'not-utf8']);
    expect(events).toEqual([]);
  });

  it('does not decode what it skips: bad bytes in a comment or an unknown field change nothing', () => {
    const { p, events, dropped } = parser();
    p.push(bad(': ', [0xff, 0xfe], '\n'));
    p.push(bad('foo: ', [0xc0], '\ndata: ok\n\n'));
    expect(dropped).toEqual([]);
    expect(events).toEqual([{ event: 'message', data: 'ok' }]);
  });
});
