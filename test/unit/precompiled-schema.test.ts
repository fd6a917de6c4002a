/**
 * Build-time schema validators (src/config/precompiled-schema.ts): the standalone code `npm run build` writes must
 * accept and refuse exactly what run-time compilation does, with the same error objects (the loaders' messages are
 * built from them, `schema`/`parentSchema` included), and must be ignored when it was not generated from this
 * schema. The files are written to a temporary folder and loaded through the same `loadPrecompiled` as at start.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import configSchema from '../../schemas/gatehouse.schema.json' with { type: 'json' };
import policySchema from '../../schemas/policy.schema.json' with { type: 'json' };
import { standaloneMetaSchemaSource, standaloneValidatorSource } from '../../src/config/precompiled-schema-source.js';
import {
  FRAGMENT_AJV_OPTIONS,
  FragmentCompiler,
  loadPrecompiled,
  metaSchemaFingerprint,
  SCHEMA_AJV_OPTIONS,
  schemaFingerprint,
  schemaValidator,
} from '../../src/config/precompiled-schema.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
let dir: string;

/** Writes a generated validator where its `require("ajv/dist/runtime/…")` resolves, as dist/schemas/ does. */
function write(name: string, source: string): URL {
  const file = path.join(dir, name);
  fs.writeFileSync(file, source);
  return pathToFileURL(file);
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-precompiled-'));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs both validators on `data` and returns their verdicts and error lists (deep copies). */
function both(
  precompiled: (d: unknown) => boolean,
  compiled: (d: unknown) => boolean,
  data: unknown,
): [unknown, unknown] {
  const a = precompiled(data);
  const aErrors = structuredClone((precompiled as unknown as { errors: unknown }).errors);
  const b = compiled(data);
  const bErrors = structuredClone((compiled as unknown as { errors: unknown }).errors);
  return [
    { valid: a, errors: aErrors },
    { valid: b, errors: bErrors },
  ];
}

const stdio = { name: 'files', transport: 'stdio', command: 'node', args: ['server.js'] };

/** Valid and invalid configurations touching every kind of keyword the loader explains. */
const CONFIGS: unknown[] = [
  { upstreams: [stdio] },
  { server: { host: '127.0.0.1', port: 8080 }, upstreams: [stdio] },
  { auth: { mode: 'dev' }, upstreams: [stdio] },
  {},
  [],
  'upstreams',
  { upstreams: [stdio], bogus: 1 },
  { upstreams: [{ ...stdio, name: 'Bad_Name' }] },
  { upstreams: [{ ...stdio, transport: 'http' }] },
  { upstreams: [{ name: 'web', transport: 'http', url: 'ftp://x', command: 'node' }] },
  { upstreams: [stdio, stdio] },
  { server: { port: 70000, host: 'bad host', path: 'no-slash', extra: true }, upstreams: [stdio] },
  { auth: { mode: 'sometimes', jwt: {} }, upstreams: [stdio] },
  { auth: { mode: 'oauth', jwt: { issuer: 5, jwksUri: 'nope' }, dev: {} }, upstreams: [stdio] },
  { logging: { level: 'loud' }, upstreams: [{ ...stdio, env: { 'BAD NAME': 'x' }, envAllow: [1] }] },
];

describe('precompiled configuration schema', () => {
  let file: URL;
  beforeAll(() => {
    file = write('gatehouse.validate.cjs', standaloneValidatorSource(configSchema));
  });

  it('gives the same verdicts and error objects as run-time compilation', () => {
    const precompiled = loadPrecompiled(file, schemaFingerprint(configSchema));
    expect(precompiled).toBeTypeOf('function');
    const compiled = new Ajv2020({ ...SCHEMA_AJV_OPTIONS }).compile(configSchema);
    let invalid = 0;
    for (const data of CONFIGS) {
      const [a, b] = both(precompiled!, compiled, data);
      expect(a).toEqual(b);
      if (!(a as { valid: boolean }).valid) invalid++;
    }
    expect(invalid).toBeGreaterThanOrEqual(10); // the corpus exercises refusals, not only acceptance
  });

  it('is used only when generated from exactly this schema: a stale, missing or broken file means compiling now', () => {
    const changed = { ...configSchema, title: 'edited after the build' };
    expect(loadPrecompiled(file, schemaFingerprint(changed))).toBeUndefined();
    expect(loadPrecompiled(new URL('missing.cjs', file), schemaFingerprint(configSchema))).toBeUndefined();
    const broken = write('broken.validate.cjs', 'throw new Error("not a validator")');
    expect(loadPrecompiled(broken, schemaFingerprint(configSchema))).toBeUndefined();
    const notAFunction = write(
      'object.validate.cjs',
      `module.exports = { schemaSha256: ${JSON.stringify(schemaFingerprint(configSchema))} };`,
    );
    expect(loadPrecompiled(notAFunction, schemaFingerprint(configSchema))).toBeUndefined();
    // The fallback validates the edited schema itself.
    const fallback = schemaValidator({ type: 'object', properties: { x: { type: 'number' } }, required: ['x'] }, file);
    expect(fallback({})).toBe(false);
    expect(fallback({ x: 1 })).toBe(true);
  });
});

describe('precompiled policy schema', () => {
  it('gives the same verdicts and error objects as run-time compilation on the example policies and broken copies', () => {
    const file = write('policy.validate.cjs', standaloneValidatorSource(policySchema));
    const precompiled = loadPrecompiled(file, schemaFingerprint(policySchema));
    expect(precompiled).toBeTypeOf('function');
    const compiled = new Ajv2020({ ...SCHEMA_AJV_OPTIONS }).compile(policySchema);
    const docs = fs
      .readdirSync(path.join(ROOT, 'policies'))
      .filter((f) => f.endsWith('.yaml') && !f.endsWith('.test.yaml'))
      .map((f) => parse(fs.readFileSync(path.join(ROOT, 'policies', f), 'utf8')) as Record<string, unknown>);
    expect(docs.length).toBeGreaterThan(0);
    const broken = docs.flatMap((d) => [
      { ...d, extra: 1 },
      { ...d, rules: 'none' },
      { ...d, rules: [{ id: 5, effect: 'maybe' }] },
      { rules: [{}] },
    ]);
    for (const data of [...docs, ...broken]) {
      const [a, b] = both(precompiled!, compiled, data);
      expect(a).toEqual(b);
    }
  });
});

describe('argument schemas checked with the precompiled meta-schema', () => {
  const FRAGMENTS: Record<string, unknown>[] = [
    { type: 'object', properties: { message: { type: 'string', maxLength: 100 } }, required: ['message'] },
    { type: 'object', properties: { n: { type: 'integer', minimum: 0 } }, additionalProperties: false },
    { type: 'object', properties: { a: { type: 'strin' } } },
    { type: 'object', properties: { a: { minimum: '5' } } },
    { type: 'object', required: 'message' },
    { type: 'object', properties: { a: { enum: 'x' } } },
    { type: 'object', $schema: 'http://json-schema.org/draft-07/schema#' },
    { type: 'object', $schema: 5 },
    { type: 'object', properties: { a: { type: 'string', format: 'email' } } },
    { type: 'object', unknownKeyword: true },
  ];

  /** What compiling a fragment does: a validator's verdicts on sample arguments, or the error message thrown. */
  function outcome(
    compile: (s: Record<string, unknown>) => (d: unknown) => boolean,
    fragment: Record<string, unknown>,
  ): unknown {
    try {
      const v = compile(fragment);
      return { verdicts: [{}, { message: 'hi' }, { n: -1 }, { a: 'x' }, { n: 1, x: 2 }].map((d) => v(d)) };
    } catch (err) {
      return { thrown: (err as Error).message };
    }
  }

  it('compiles or refuses each fragment exactly as a plain Ajv2020 does', () => {
    const meta = loadPrecompiled(
      write('json-schema-2020-12.validate.cjs', standaloneMetaSchemaSource()),
      metaSchemaFingerprint(),
    );
    expect(meta).toBeTypeOf('function');
    const withMeta = new FragmentCompiler(meta);
    const withoutMeta = new FragmentCompiler(undefined);
    let refused = 0;
    for (const fragment of FRAGMENTS) {
      const plain = new Ajv2020({ ...FRAGMENT_AJV_OPTIONS }); // a fresh one each time: compile caches by schema
      const expected = outcome((s) => plain.compile(s), fragment);
      expect(outcome((s) => withMeta.compile(s), fragment)).toEqual(expected);
      expect(outcome((s) => withoutMeta.compile(s), fragment)).toEqual(expected);
      if ('thrown' in (expected as object)) refused++;
    }
    expect(refused).toBeGreaterThanOrEqual(6);
  });

  it('an invalid fragment is refused with Ajv\'s own "schema is invalid" message', () => {
    const meta = loadPrecompiled(write('meta2.validate.cjs', standaloneMetaSchemaSource()), metaSchemaFingerprint());
    expect(() => new FragmentCompiler(meta).compile({ type: 'object', properties: { a: { type: 'strin' } } })).toThrow(
      /^schema is invalid: data\/properties\/a\/type must be equal to one of the allowed values/,
    );
  });
});
