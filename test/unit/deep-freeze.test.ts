import { describe, expect, it } from 'vitest';
import { deepFreeze } from '../../src/lib/deep-freeze.js';

describe('deepFreeze', () => {
  it('freezes plain objects and arrays at every depth, in place', () => {
    const value = {
      a: [{ b: 1 }, [2]],
      c: { d: { e: 'x' } },
      n: Object.assign(Object.create(null) as object, { z: {} }),
    };
    expect(deepFreeze(value)).toBe(value);
    for (const v of [
      value,
      value.a,
      value.a[0],
      value.a[1],
      value.c,
      value.c.d,
      value.n,
      (value.n as { z: object }).z,
    ]) {
      expect(Object.isFrozen(v)).toBe(true);
    }
  });

  it('leaves class instances (Sets, Maps, validators, self-freezing values) as they are', () => {
    class Holder {
      inner = { x: 1 };
    }
    const value = { set: new Set([{ y: 1 }]), map: new Map([['k', { y: 2 }]]), holder: new Holder() };
    deepFreeze(value);
    expect(Object.isFrozen(value)).toBe(true);
    expect(Object.isFrozen(value.set) || Object.isFrozen(value.map) || Object.isFrozen(value.holder)).toBe(false);
    expect(Object.isFrozen(value.holder.inner)).toBe(false);
    value.set.add({ y: 3 });
    expect(value.set.size).toBe(2);
  });

  it('returns primitives unchanged', () => {
    expect(deepFreeze(3)).toBe(3);
    expect(deepFreeze(null)).toBe(null);
  });
});
