/** The output-schema validators (router/output-schemas.ts), the output step, and the mcp.output.invalid metric. */
import { afterEach, describe, expect, it } from 'vitest';
import {
  OUTPUT_SCHEMA_MAX_BYTES,
  OUTPUT_SCHEMA_MAX_DEPTH,
  OUTPUT_VALIDATORS_KEPT,
  OutputValidators,
  outputViolation,
} from '../../src/router/output-schemas.js';
import type { JsonObject } from '../../src/lib/json-rpc.js';
import type { Call } from '../../src/mcp/call.js';
import { outputStep } from '../../src/mcp/steps/output.js';
import { shutdownTestMeters, testMeter } from '../helpers/test-meter.js';

const ORDER = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] };

describe('OutputValidators', () => {
  it('compiles a schema once: the same schema text (a later catalogue build) gets the same validator', () => {
    const v = new OutputValidators();
    const a = v.check(ORDER);
    const b = v.check(JSON.parse(JSON.stringify(ORDER)));
    expect(a.ok).toBe(true);
    expect(b).toBe(a);
    expect(v.size).toBe(1);
    expect(v.check({ ...ORDER, required: [] })).not.toBe(a);
    expect(v.size).toBe(2);
  });

  it('keeps a bounded number, least recently used first', () => {
    const v = new OutputValidators();
    const first = v.check({ type: 'object', title: 't0' });
    for (let i = 1; i <= OUTPUT_VALIDATORS_KEPT; i++) v.check({ type: 'object', title: `t${i}` });
    expect(v.size).toBe(OUTPUT_VALIDATORS_KEPT);
    expect(v.check({ type: 'object', title: 't0' })).not.toBe(first);
  });

  it('ignores unknown keywords and formats (strict off), and two schemas may share an $id', () => {
    const v = new OutputValidators();
    const a = v.check({
      $id: 'https://example.com/order.json',
      type: 'object',
      'x-vendor': 1,
      properties: { d: { format: 'no-such' } },
    });
    const b = v.check({ $id: 'https://example.com/order.json', type: 'object', required: ['z'] });
    expect(a.ok && b.ok).toBe(true);
    expect(outputViolation(a, { content: [], structuredContent: { d: 'anything' } })).toBeUndefined();
  });

  it('reads the dialect $schema names: 2020-12 by default, 2019-09, draft-07 (what many SDKs emit), others as draft-07', () => {
    const v = new OutputValidators();
    const bad = { content: [], structuredContent: { a: 1 } };
    const props = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] };
    for (const $schema of [
      'http://json-schema.org/draft-07/schema#',
      'http://json-schema.org/draft-07/schema',
      'https://json-schema.org/draft/2020-12/schema',
      'https://json-schema.org/draft/2019-09/schema',
      'http://json-schema.org/draft-06/schema#',
    ]) {
      const check = v.check({ $schema, ...props });
      expect(check.ok, $schema).toBe(true);
      expect(outputViolation(check, bad), $schema).toBe('structuredContent/a: type');
    }
    // draft-07's tuple `items` keeps its draft-07 meaning.
    const tuple = v.check({
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'array',
      items: [{ type: 'string' }],
    });
    expect(outputViolation(tuple, { content: [], structuredContent: [1] })).toBe('structuredContent/0: type');
  });

  it('flags what it will not or cannot compile: too large, too deep, an unresolvable $ref, not an object', () => {
    const v = new OutputValidators();
    const large = v.check({ type: 'object', description: 'x'.repeat(OUTPUT_SCHEMA_MAX_BYTES) });
    expect(large).toMatchObject({ ok: false, problem: expect.stringContaining('larger than') });
    let deep: Record<string, unknown> = { type: 'object' };
    for (let i = 0; i < OUTPUT_SCHEMA_MAX_DEPTH + 1; i++) deep = { type: 'object', properties: { a: deep } };
    expect(v.check(deep)).toMatchObject({ ok: false, problem: expect.stringContaining('deeper than') });
    expect(v.check({ $ref: 'https://example.com/remote.json' })).toMatchObject({
      ok: false,
      problem: expect.stringContaining('does not compile'),
    });
    expect(v.check('nope')).toMatchObject({ ok: false });
  });
});

describe('outputViolation', () => {
  const check = new OutputValidators().check({
    type: 'object',
    properties: { id: { type: 'string' }, items: { type: 'array', items: { type: 'integer' } } },
    required: ['id'],
    additionalProperties: false,
  });

  it('names paths and keywords, never values', () => {
    const detail = outputViolation(check, {
      content: [],
      structuredContent: { items: [1, 'SECRET'], extra: 'SECRET2' },
    });
    expect(detail).toContain('structuredContent: required (id)');
    expect(detail).toContain('structuredContent: additionalProperties (extra)');
    expect(detail).toContain('structuredContent/items/1: type');
    expect(detail).not.toContain('SECRET"');
    expect(detail).not.toMatch(/SECRET(?!2\))/);
  });

  it('a missing structuredContent is a violation; an isError result is never judged; a valid one passes', () => {
    expect(outputViolation(check, { content: [] })).toContain('no structuredContent');
    expect(outputViolation(check, { content: [], isError: true, structuredContent: 5 })).toBeUndefined();
    expect(outputViolation(check, { content: [], structuredContent: { id: 'a' } })).toBeUndefined();
  });
});

describe('mcp.output.invalid', () => {
  afterEach(shutdownTestMeters);

  it('counts results that broke their declared output, refused (enforce) or passed (warn)', async () => {
    const { metrics, read } = testMeter();
    const base = { type: 'mcp.request', method: 'tools/call', tool: 'fx__t', upstream: 'fx' } as const;
    metrics.observe({ ...base, outcome: 'error', errorCode: 'GW_UPSTREAM_OUTPUT_INVALID', outputValid: false });
    metrics.observe({ ...base, outcome: 'ok', outputValid: false });
    metrics.observe({ ...base, outcome: 'ok', outputValid: true });
    metrics.observe({
      type: 'mcp.request',
      method: 'resources/read',
      resource: 'doc://x',
      upstream: 'fx',
      outcome: 'ok',
      outputValid: false,
    });
    const s = await read();
    expect(s.sum('mcp_output_invalid_total', { tool: 'fx__t', upstream: 'fx', action: 'refused' })).toBe(1);
    expect(s.sum('mcp_output_invalid_total', { tool: 'fx__t', upstream: 'fx', action: 'passed' })).toBe(1);
    expect(s.sum('mcp_output_invalid_total', { tool: '', upstream: 'fx', action: 'passed' })).toBe(1);
  });
});

describe('the output step', () => {
  const output = new OutputValidators().check({ type: 'object', required: ['id'] });
  const callWith = (mode: 'enforce' | 'warn' | 'off', result: Record<string, unknown>) => {
    const event: Record<string, unknown> = {};
    const call = {
      ctx: { event },
      deps: { config: { upstreams: [{ name: 'u', outputValidation: mode }] } },
      target: { kind: 'tool', name: 'u__t', upstream: 'u', original: 't', quarantined: false, definition: {}, output },
    } as unknown as Call;
    return { event, run: () => outputStep.run(call, () => Promise.resolve(result as JsonObject)) };
  };

  it('enforce refuses, warn passes and records, off does not look', async () => {
    const bad = { content: [], structuredContent: {} };
    const enforce = callWith('enforce', bad);
    await expect(enforce.run()).rejects.toMatchObject({ code: 'GW_UPSTREAM_OUTPUT_INVALID' });
    expect(enforce.event).toMatchObject({ outputValid: false });
    const warn = callWith('warn', bad);
    await expect(warn.run()).resolves.toBe(bad);
    expect(warn.event).toMatchObject({ outputValid: false, detail: expect.stringContaining('required (id)') });
    const off = callWith('off', bad);
    await expect(off.run()).resolves.toBe(bad);
    expect(off.event).toEqual({});
  });

  it("leaves a 2026-07-28 input_required interim answer alone (the retry's final result is checked)", async () => {
    const interim = { resultType: 'input_required', inputRequests: {} };
    const step = callWith('enforce', interim);
    await expect(step.run()).resolves.toBe(interim);
    expect(step.event).toEqual({});
  });
});
