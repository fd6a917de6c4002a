import { describe, expect, it } from 'vitest';
import { SseParser, type SseEvent } from '../../src/lib/sse.js';
import { findResponseId } from '../../src/upstream/line-splitter.js';

function parser(max = 1024): { p: SseParser; events: SseEvent[]; oversized: number[]; ends: { head: string; tail: string }[] } {
  const events: SseEvent[] = [];
  const oversized: number[] = [];
  const ends: { head: string; tail: string }[] = [];
  const p = new SseParser(
    max,
    (e) => events.push(e),
    (bytes, head, tail) => {
      oversized.push(bytes);
      ends.push({ head, tail });
    },
  );
  return { p, events, oversized, ends };
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
    expect(oversized).toEqual([120]);
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

  it('a huge comment line makes the event oversized but gives no data ends', () => {
    const { p, ends, events } = parser(10);
    p.push(`: ${'k'.repeat(50)}`);
    p.push(`${'k'.repeat(50)}\n\ndata: y\n\n`);
    expect(ends).toEqual([{ head: '', tail: '' }]);
    expect(events).toEqual([{ event: 'message', data: 'y' }]);
  });
});
