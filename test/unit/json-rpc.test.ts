import { describe, expect, it } from 'vitest';
import { classify, isJsonObject, parseJson, rpcError, rpcResult, truncate } from '../../src/lib/json-rpc.js';

describe('classify', () => {
  it('recognises requests, notifications and responses', () => {
    expect(classify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }).kind).toBe('request');
    expect(classify({ jsonrpc: '2.0', id: 'a-1', method: 'tools/call', params: { name: 'x' } }).kind).toBe('request');
    expect(classify({ jsonrpc: '2.0', method: 'notifications/initialized' }).kind).toBe('notification');
    expect(classify({ jsonrpc: '2.0', id: 1, result: {} }).kind).toBe('response');
    expect(classify({ jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'nope' } }).kind).toBe('response');
    // JSON-RPC 2.0 §5: an error for a request whose id could not be read carries id null.
    expect(
      classify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error', data: { x: 1 } } }).kind,
    ).toBe('response');
  });

  it('refuses what is not a JSON object', () => {
    for (const v of [null, 1, 'x', [], [{ jsonrpc: '2.0', id: 1, method: 'm' }], true]) {
      expect(classify(v)).toEqual({ kind: 'invalid', reason: 'message is not a JSON object', id: null });
    }
  });

  it('requires jsonrpc "2.0" and echoes a readable id', () => {
    expect(classify({ id: 3, method: 'm' })).toEqual({ kind: 'invalid', reason: 'jsonrpc must be "2.0"', id: 3 });
    expect(classify({ jsonrpc: 2, id: 'x', method: 'm' })).toMatchObject({ kind: 'invalid', id: 'x' });
    expect(classify({ jsonrpc: '1.0', id: 1, method: 'm' })).toMatchObject({ kind: 'invalid' });
  });

  it('refuses ids that are null, fractional, unsafe, empty, too long, booleans or objects on requests', () => {
    for (const id of [null, 1.5, 2 ** 53, '', 'x'.repeat(257), true, {}, []]) {
      const c = classify({ jsonrpc: '2.0', id, method: 'm' });
      expect(c.kind, JSON.stringify(id)).toBe('invalid');
      if (c.kind === 'invalid') expect(c.id).toBeNull();
    }
    expect(classify({ jsonrpc: '2.0', id: 'x'.repeat(256), method: 'm' }).kind).toBe('request');
    expect(classify({ jsonrpc: '2.0', id: -1, method: 'm' }).kind).toBe('request');
    expect(classify({ jsonrpc: '2.0', id: 0, method: 'm' }).kind).toBe('request');
  });

  it('requires a non-empty, bounded method string', () => {
    expect(classify({ jsonrpc: '2.0', id: 1, method: '' }).kind).toBe('invalid');
    expect(classify({ jsonrpc: '2.0', id: 1, method: 5 }).kind).toBe('invalid');
    expect(classify({ jsonrpc: '2.0', method: 'm'.repeat(257) }).kind).toBe('invalid');
    expect(classify({ jsonrpc: '2.0', method: 'm'.repeat(256) }).kind).toBe('notification');
  });

  it('requires params to be an object (named params only)', () => {
    expect(classify({ jsonrpc: '2.0', id: 1, method: 'm', params: [1, 2] })).toMatchObject({
      kind: 'invalid',
      reason: 'params must be an object',
      id: 1,
    });
    expect(classify({ jsonrpc: '2.0', method: 'm', params: null }).kind).toBe('invalid');
    expect(classify({ jsonrpc: '2.0', method: 'm', params: 'x' }).kind).toBe('invalid');
  });

  it('refuses params members that differ from a routed one only in case (a Go upstream would take the last)', () => {
    const call = (params: Record<string, unknown>) => classify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params });
    expect(call({ name: 'fx__read', Name: 'fx__delete' })).toMatchObject({
      kind: 'invalid',
      reason: 'params member "Name" differs from a routed member only in case',
      id: 1,
    });
    expect(call({ name: 'x', arguments: { path: '/ok' }, ARGUMENTS: { path: '/etc' } }).kind).toBe('invalid');
    expect(call({ uri: 'a://b', URI: 'a://c' }).kind).toBe('invalid');
    // Go folds "ſ" (U+017F) to "s": "argumentſ" is "arguments" to it.
    expect(call({ name: 'x', argumentſ: {} }).kind).toBe('invalid');
    expect(call({ name: 'x', _Meta: {} }).kind).toBe('invalid');
    expect(classify({ jsonrpc: '2.0', method: 'notifications/x', params: { Uri: 'a://b' } }).kind).toBe('invalid');
    // Other members are the tool's business; the routed ones spelled exactly are fine.
    expect(call({ name: 'x', arguments: { Name: 1, NAME: 2 }, cursor: 'c', Cursor: 'd', _meta: {} }).kind).toBe(
      'request',
    );
  });

  it('refuses routed strings that are not well-formed Unicode (an unpaired surrogate becomes U+FFFD upstream)', () => {
    expect(classify({ jsonrpc: '2.0', id: 1, method: 'tools/call\ud800' })).toMatchObject({
      kind: 'invalid',
      reason: 'method is not well-formed Unicode',
    });
    expect(classify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'fx__\udc00' } })).toMatchObject({
      reason: 'params.name is not well-formed Unicode',
    });
    expect(classify({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'a://\ud83d' } }).kind).toBe(
      'invalid',
    );
    expect(classify({ jsonrpc: '2.0', id: '\ud800', method: 'ping' }).kind).toBe('invalid');
    // A surrogate pair is a character like any other.
    expect(
      classify({ jsonrpc: '2.0', id: 'a\ud83d\ude00', method: 'tools/call', params: { name: 'fx__\ud83d\ude00' } })
        .kind,
    ).toBe('request');
  });

  it('refuses members outside the message shape (no case-folded duplicates, no stray result on a request)', () => {
    expect(classify({ jsonrpc: '2.0', id: 1, method: 'tools/list', Method: 'tools/call' })).toMatchObject({
      kind: 'invalid',
      reason: 'unexpected member "Method"',
    });
    expect(classify({ jsonrpc: '2.0', id: 1, method: 'm', result: {} }).kind).toBe('invalid');
    expect(classify({ jsonrpc: '2.0', id: 1, result: {}, method2: 1 }).kind).toBe('invalid');
    const long = classify({ jsonrpc: '2.0', id: 1, method: 'm', ['k'.repeat(100)]: 1 });
    expect(long.kind === 'invalid' && long.reason.length).toBeLessThan(70);
  });

  it('requires exactly one of result and error on a response', () => {
    expect(classify({ jsonrpc: '2.0' })).toMatchObject({
      kind: 'invalid',
      reason: 'message has neither method nor id',
    });
    expect(classify({ jsonrpc: '2.0', id: 1 })).toMatchObject({
      kind: 'invalid',
      reason: 'response needs exactly one of result and error',
      id: 1,
    });
    expect(classify({ jsonrpc: '2.0', id: 1, result: {}, error: { code: 1, message: 'x' } })).toMatchObject({
      kind: 'invalid',
      id: 1,
    });
    expect(classify({ jsonrpc: '2.0', result: {} })).toMatchObject({ kind: 'invalid', id: null });
  });

  it('requires an object result and a well-formed error', () => {
    expect(classify({ jsonrpc: '2.0', id: 1, result: 'ok' }).kind).toBe('invalid');
    expect(classify({ jsonrpc: '2.0', id: 1, result: null }).kind).toBe('invalid');
    expect(classify({ jsonrpc: '2.0', id: 1, result: [] }).kind).toBe('invalid');
    expect(classify({ jsonrpc: '2.0', id: 1, error: { code: 1.5, message: 'x' } }).kind).toBe('invalid');
    expect(classify({ jsonrpc: '2.0', id: 1, error: { code: -1 } }).kind).toBe('invalid');
    expect(classify({ jsonrpc: '2.0', id: 1, error: 'boom' }).kind).toBe('invalid');
    // A success response never has id null.
    expect(classify({ jsonrpc: '2.0', id: null, result: {} }).kind).toBe('invalid');
    expect(classify({ jsonrpc: '2.0', id: 1.5, error: { code: 1, message: 'x' } }).kind).toBe('invalid');
  });

  it('returns the very object it was given as the message', () => {
    const v = { jsonrpc: '2.0', id: 1, method: 'm', params: { a: 1 } };
    const c = classify(v);
    expect(c.kind === 'request' && c.message).toBe(v);
  });
});

describe('parseJson', () => {
  it('parses JSON and reports invalid text without the library message', () => {
    expect(parseJson('{"a":1}')).toEqual({ ok: true, value: { a: 1 } });
    expect(parseJson('[1,2]')).toEqual({ ok: true, value: [1, 2] });
    expect(parseJson('')).toEqual({ ok: false, reason: 'body is not valid JSON' });
    expect(parseJson('{"a":')).toEqual({ ok: false, reason: 'body is not valid JSON' });
    expect(parseJson("{'a':1}")).toEqual({ ok: false, reason: 'body is not valid JSON' });
  });

  it('keeps the last of duplicate keys (what the router sees is what is forwarded)', () => {
    expect(parseJson('{"method":"a","method":"b"}')).toEqual({ ok: true, value: { method: 'b' } });
  });

  it('refuses __proto__ keys at any depth, also when written with escapes', () => {
    expect(parseJson('{"__proto__":{"x":1}}').ok).toBe(false);
    expect(parseJson('{"a":{"b":[{"__proto__":null}]}}').ok).toBe(false);
    expect(parseJson('{"\\u005f_proto__":{"x":1}}').ok).toBe(false);
    expect(parseJson('{"_\\u005fproto_\\u005f":1}').ok).toBe(false);
  });

  it('refuses constructor.prototype but not a harmless constructor key', () => {
    expect(parseJson('{"constructor":{"prototype":{"x":1}}}').ok).toBe(false);
    expect(parseJson('{"constructor":"a"}')).toEqual({ ok: true, value: { constructor: 'a' } });
    expect(parseJson('{"constructor":{"name":"x"}}').ok).toBe(true);
  });

  it('accepts the word proto and escapes in values', () => {
    expect(parseJson('{"text":"__proto__ is a word"}')).toEqual({ ok: true, value: { text: '__proto__ is a word' } });
    expect(parseJson('{"text":"caf\\u00e9"}')).toEqual({ ok: true, value: { text: 'café' } });
    expect(parseJson('{"protocolVersion":"2025-11-25"}').ok).toBe(true);
  });

  it('bounds nesting at the limit however the brackets are spread (the opener count is only a shortcut)', () => {
    const nested = (n: number): string => `${'['.repeat(n)}${']'.repeat(n)}`;
    expect(parseJson(nested(10), 10).ok).toBe(true);
    expect(parseJson(nested(11), 10)).toEqual({ ok: false, reason: 'JSON nested deeper than 10 levels' });
    // Many openers, little depth: siblings, and brackets inside strings.
    expect(parseJson(`[${Array.from({ length: 50 }, () => '{"a":[1]}').join(',')}]`, 10).ok).toBe(true);
    expect(parseJson(JSON.stringify({ text: '[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{' }), 10).ok).toBe(true);
    // Deep behind many shallow siblings, and deep with brackets in strings on the way.
    expect(parseJson(`[${Array.from({ length: 50 }, () => '{}').join(',')},${nested(11)}]`, 11).ok).toBe(false);
    expect(parseJson(`[${'["[",'.repeat(11)}1${']'.repeat(12)}`, 10).ok).toBe(false);
  });

  it('never pollutes Object.prototype', () => {
    parseJson('{"__proto__":{"polluted":true}}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('helpers', () => {
  it('truncate adds an ellipsis only when needed', () => {
    expect(truncate('abc', 3)).toBe('abc');
    expect(truncate('abcd', 3)).toBe('abc…');
  });

  it('isJsonObject accepts only plain objects', () => {
    expect(isJsonObject({})).toBe(true);
    expect(isJsonObject([])).toBe(false);
    expect(isJsonObject(null)).toBe(false);
    expect(isJsonObject('x')).toBe(false);
  });

  it('rpcResult and rpcError build JSON-RPC 2.0 responses', () => {
    expect(rpcResult(1, { a: 1 })).toEqual({ jsonrpc: '2.0', id: 1, result: { a: 1 } });
    expect(rpcError(null, { code: -32700, message: 'Parse error' })).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32700, message: 'Parse error' },
    });
    expect(classify(rpcError('x', { code: 1, message: 'm' })).kind).toBe('response');
  });
});
