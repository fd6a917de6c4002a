import { describe, expect, it } from 'vitest';
import { exposedName, TOOL_NAME_RE, type NamingOptions } from '../../src/router/naming.js';

const opts: NamingOptions = { separator: '__', maxNameLength: 64, prefixed: true };

describe('exposedName', () => {
  it('is the upstream name, the separator and the tool name', () => {
    expect(exposedName('orders', 'get_order', opts)).toBe('orders__get_order');
    expect(exposedName('ev-http', 'echo', { ...opts, separator: '.' })).toBe('ev-http.echo');
  });

  it('leaves the name alone when a single upstream is exposed unprefixed', () => {
    expect(exposedName('orders', 'get_order', { ...opts, prefixed: false })).toBe('get_order');
  });

  it('shortens a long name deterministically to exactly maxNameLength, keeping a readable prefix and a hash', () => {
    const long = `tool_${'x'.repeat(100)}`;
    const a = exposedName('orders', long, opts);
    expect(a).toHaveLength(64);
    expect(a).toMatch(TOOL_NAME_RE);
    expect(a.startsWith('orders__tool_xxx')).toBe(true);
    expect(a).toMatch(/-[0-9a-f]{8}$/);
    // Same input, same name: every replica and restart agrees.
    expect(exposedName('orders', long, opts)).toBe(a);
    // Two long names sharing the readable prefix still differ by their hash.
    const b = exposedName('orders', `tool_${'x'.repeat(101)}`, opts);
    expect(b).toHaveLength(64);
    expect(b.slice(0, 55)).toBe(a.slice(0, 55));
    expect(b).not.toBe(a);
    // The hash covers the upstream too.
    expect(exposedName('billing', long, opts).slice(-8)).not.toBe(a.slice(-8));
  });

  it('honours the smallest and the largest maxNameLength', () => {
    const long = 'a'.repeat(200);
    expect(exposedName('up', long, { ...opts, maxNameLength: 16 })).toHaveLength(16);
    const max = exposedName('up', long, { ...opts, maxNameLength: 128 });
    expect(max).toHaveLength(128);
    expect(max).toMatch(TOOL_NAME_RE);
    // A name exactly at the limit is kept as it is.
    const exact = 'b'.repeat(64 - 'up__'.length);
    expect(exposedName('up', exact, opts)).toBe(`up__${exact}`);
  });

  it('cleans characters outside the MCP tool-name rule and adds a hash, so cleaned names never merge', () => {
    const spaced = exposedName('fx', 'say hello', opts);
    const slashed = exposedName('fx', 'say/hello', opts);
    const plain = exposedName('fx', 'say_hello', opts);
    for (const n of [spaced, slashed, plain]) expect(n).toMatch(TOOL_NAME_RE);
    expect(spaced).toMatch(/^fx__say_hello-[0-9a-f]{8}$/);
    expect(new Set([spaced, slashed, plain]).size).toBe(3);
    expect(plain).toBe('fx__say_hello');
  });

  it('cleans non-ASCII and unprefixed names too', () => {
    const n = exposedName('fx', 'grüße✓', { ...opts, prefixed: false });
    expect(n).toMatch(TOOL_NAME_RE);
    expect(n).toMatch(/^gr__e_-[0-9a-f]{8}$/);
  });

  it('never returns an empty name, even for an empty original', () => {
    const n = exposedName('fx', '', { ...opts, prefixed: false });
    expect(n).toMatch(TOOL_NAME_RE);
    expect(n).toMatch(/^-[0-9a-f]{8}$/);
  });

  it('produces valid names for every input shape', () => {
    const samples = ['a', 'A.b-c_d', 'x'.repeat(500), '名前', 'a\nb', 'ends with space ', '..', '__proto__'];
    for (const s of samples) {
      for (const prefixed of [true, false]) {
        for (const maxNameLength of [16, 64, 128]) {
          const n = exposedName('up-stream1', s, { separator: '__', maxNameLength, prefixed });
          expect(n, `${s} prefixed=${prefixed} max=${maxNameLength}`).toMatch(TOOL_NAME_RE);
          expect(n.length).toBeLessThanOrEqual(maxNameLength);
        }
      }
    }
  });
});
