import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readUtf8Body, type BodyText } from '../../src/lib/utf8-body.js';
import { decodeUtf8, strictFormParams } from '../../src/lib/utf8.js';

function read(parts: (string | number[])[], opts: { limit?: number; declared?: number } = {}): Promise<BodyText> {
  const stream = new PassThrough();
  const result = new Promise<BodyText>((resolve) =>
    readUtf8Body(stream, opts.limit ?? 1024, opts.declared ?? Number.NaN, resolve),
  );
  for (const p of parts) stream.write(typeof p === 'string' ? Buffer.from(p) : Buffer.from(p));
  stream.end();
  return result;
}

describe('readUtf8Body (threat model #8)', () => {
  it('reads a body in one chunk or in several, a character split between chunks whole', async () => {
    expect(await read(['{"t":"grüße"}'])).toEqual({ ok: true, text: '{"t":"grüße"}' });
    expect(await read(['{"t":"gr', [0xc3], [0xbc], 'ße ✓"}'])).toEqual({ ok: true, text: '{"t":"grüße ✓"}' });
    expect(await read([])).toEqual({ ok: true, text: '' });
  });

  it('refuses bytes that are not UTF-8 — in one chunk, in a later one, or cut off at the end — and reads to the end', async () => {
    expect(await read([[0x7b, 0xc0, 0xaf, 0xff, 0x7d]])).toEqual({ ok: false, problem: 'not-utf8' });
    expect(await read(['{"a":"', [0xed, 0xa0, 0x80], '"}'])).toEqual({ ok: false, problem: 'not-utf8' });
    expect(await read(['{"a":"', [0xe6, 0x97]])).toEqual({ ok: false, problem: 'not-utf8' });
    expect(await read([[0xe6, 0x97]])).toEqual({ ok: false, problem: 'not-utf8' });
  });

  it('keeps a BOM as a character (JSON has none: it then fails to parse like any stray character)', async () => {
    expect(await read([[0xef, 0xbb, 0xbf], '{}'])).toEqual({ ok: true, text: '\uFEFF{}' });
    expect(decodeUtf8(Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]))).toBe('\uFEFF{}');
  });

  it('stops at the limit and refuses a length other than the declared one', async () => {
    expect(await read(['x'.repeat(600), 'y'.repeat(600)])).toEqual({ ok: false, problem: 'too-large' });
    expect(await read(['{}'], { declared: 5000 })).toEqual({ ok: false, problem: 'too-large' });
    expect(await read(['{}'], { declared: 3 })).toEqual({ ok: false, problem: 'length-mismatch' });
  });
});

describe('strictFormParams', () => {
  it('parses a form like URLSearchParams, but refuses percent-encoded bytes that are not UTF-8 and malformed escapes', () => {
    expect(strictFormParams('a=1&b=gr%C3%BC%C3%9Fe+x')?.get('b')).toBe('grüße x');
    expect(strictFormParams('a=%C0%AF')).toBeUndefined();
    expect(strictFormParams('a=%ED%A0%80')).toBeUndefined();
    expect(strictFormParams('a=%zz')).toBeUndefined();
    expect(strictFormParams('a=%E6%97')).toBeUndefined();
  });
});
