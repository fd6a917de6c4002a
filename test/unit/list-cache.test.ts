import { describe, expect, it } from 'vitest';
import { responseBody, serializeOnce } from '../../src/lib/json-body.js';
import { rpcResult, type JsonObject } from '../../src/lib/json-rpc.js';
import { ListCache } from '../../src/mcp/list-cache.js';

describe('ListCache', () => {
  const generation = { catalogue: {}, pins: {}, policyRevision: 'r1' };

  it('builds a list once per key and generation', () => {
    const cache = new ListCache(8);
    let builds = 0;
    const build = (): JsonObject => ({ tools: [{ name: `t${++builds}` }] });
    const first = cache.get('tools', 'k1', generation, build);
    expect(cache.get('tools', 'k1', generation, build)).toBe(first);
    expect(builds).toBe(1);
    // Another key, or another kind of list under the same key, is its own entry.
    expect(cache.get('tools', 'k2', generation, build)).not.toBe(first);
    expect(cache.get('prompts', 'k1', generation, build)).not.toBe(first);
    expect(builds).toBe(3);
  });

  it('empties on a new catalogue, a new pin state or a new policy revision', () => {
    const cache = new ListCache(8);
    let builds = 0;
    const build = (): JsonObject => ({ tools: [], n: ++builds });
    cache.get('tools', 'k', generation, build);
    cache.get('tools', 'k', { ...generation, catalogue: {} }, build);
    expect(builds).toBe(2);
    cache.get('tools', 'k', { ...generation, pins: {} }, build);
    expect(builds).toBe(3);
    cache.get('tools', 'k', { ...generation, policyRevision: 'r2' }, build);
    expect(builds).toBe(4);
    expect(cache.size).toBe(1);
  });

  it('never caches without a key', () => {
    const cache = new ListCache(8);
    let builds = 0;
    const build = (): JsonObject => ({ tools: [], n: ++builds });
    cache.get('tools', undefined, generation, build);
    cache.get('tools', undefined, generation, build);
    expect(builds).toBe(2);
    expect(cache.size).toBe(0);
  });

  it('drops the least recently used entry beyond its bound', () => {
    const cache = new ListCache(2);
    let builds = 0;
    const build = (): JsonObject => ({ tools: [], n: ++builds });
    cache.get('tools', 'a', generation, build);
    cache.get('tools', 'b', generation, build);
    cache.get('tools', 'a', generation, build); // a is now the most recent
    cache.get('tools', 'c', generation, build); // b goes
    expect(cache.size).toBe(2);
    expect(builds).toBe(3);
    cache.get('tools', 'a', generation, build);
    expect(builds).toBe(3);
    cache.get('tools', 'b', generation, build);
    expect(builds).toBe(4);
  });

  it('freezes what it shares between requests', () => {
    const cache = new ListCache(2);
    const list = cache.get('tools', 'k', generation, () => ({ tools: [{ name: 'a' }] }));
    expect(Object.isFrozen(list)).toBe(true);
    expect(Object.isFrozen(list.tools)).toBe(true);
    expect(() => (list.tools as unknown[]).push({ name: 'b' })).toThrow(TypeError);
  });
});

describe('ListCache: serialised once', () => {
  const generation = { catalogue: {}, pins: {}, policyRevision: 'r1' };
  const tools = (n: number, tag: string): JsonObject => ({
    tools: Array.from({ length: n }, (_, i) => ({ name: `${tag}_${i}`, description: 'é ✓ "quoted" \\ \u2028' })),
  });

  it('answers a cached list with exactly the JSON the response would serialise to', () => {
    const cache = new ListCache(8);
    const list = cache.get('tools', 'k', generation, () => tools(3, 'x'));
    for (const id of [7, 'req-"1"', 0]) {
      const response = rpcResult(id, list);
      const body = responseBody(response);
      expect(Buffer.isBuffer(body)).toBe(true);
      expect(body.toString()).toBe(JSON.stringify(response));
    }
    // A result the cache never saw is serialised the ordinary way; so is an error.
    expect(responseBody(rpcResult(1, { tools: [] }))).toBe('{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}');
    expect(responseBody({ jsonrpc: '2.0', id: 2, error: { code: -32601, message: 'Method not found' } })).toBe(
      '{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"Method not found"}}',
    );
  });

  it('keeps the lists JSON under its byte budget, oldest first, and never keeps a list larger than it', () => {
    const size = Buffer.byteLength(JSON.stringify(tools(10, 'a')));
    const cache = new ListCache(100, size * 2);
    let builds = 0;
    const build = (tag: string) => (): JsonObject => (builds++, tools(10, tag));
    cache.get('tools', 'a', generation, build('a'));
    cache.get('tools', 'b', generation, build('b'));
    expect(cache.byteSize).toBe(size * 2);
    cache.get('tools', 'c', generation, build('c')); // a goes
    expect(cache.size).toBe(2);
    expect(cache.byteSize).toBe(size * 2);
    cache.get('tools', 'b', generation, build('b'));
    expect(builds).toBe(3);
    cache.get('tools', 'a', generation, build('a'));
    expect(builds).toBe(4);
    const big = cache.get('tools', 'big', generation, () => tools(40, 'big'));
    expect((big.tools as unknown[]).length).toBe(40);
    expect(cache.size).toBe(2);
    expect(cache.byteSize).toBeLessThanOrEqual(size * 2);
  });

  it('refuses to remember a result that could still change', () => {
    expect(() => serializeOnce({ tools: [] })).toThrow(TypeError);
  });
});
