/**
 * Property tests of the JSON-RPC validator (lib/json-rpc.ts), seeded and bounded (threat model #8):
 *  1. `parseJson` and `classify` never throw, whatever the text;
 *  2. a message it accepts routes the same at the upstream as at the gateway: the gateway forwards its own
 *     re-serialisation, and that text, read back — by JSON.parse, and by a parser like Go's encoding/json (keys
 *     matched case-insensitively with Unicode folding, the last match wins, unpaired surrogates become U+FFFD:
 *     go-sdk CVE-2026-27896) — gives the same method, id, params.name, params.uri and params.arguments.
 * Texts are written by hand so they can hold what JSON.stringify never writes: duplicate keys, case variants
 * ("Method", "NAME", "argumentſ"), `__proto__`, \u escapes in keys, unpaired surrogates.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classify, isJsonObject, parseJson, type JsonObject } from '../../src/lib/json-rpc.js';

/** A JSON string literal for `s`; `escape` writes every character as \uXXXX. */
function literal(s: string, escape: boolean): string {
  if (!escape) return JSON.stringify(s);
  return `"${[...Array(s.length).keys()].map((i) => `\\u${s.charCodeAt(i).toString(16).padStart(4, '0')}`).join('')}"`;
}

function object(pairs: readonly (readonly [string, string, boolean])[], ws: string): string {
  return `{${pairs.map(([k, v, esc]) => `${ws}${literal(k, esc)}${ws}:${ws}${v}`).join(',')}}`;
}

const ESC = fc.boolean();
const WS = fc.constantFrom('', ' ', '\n\t');

const NAME_VALUE = fc.constantFrom(
  '"fx__echo"',
  '"fx__evil"',
  '"fx__echo\\ud800"',
  '"\\udc00"',
  '"fx__\\u0065cho"',
  '1',
  'null',
);
const URI_VALUE = fc.constantFrom('"fixture://items/1"', '"fixture://items/secret"', '"fixture://items/\\ud83d"', '{}');
const ARGS_VALUE = fc.constantFrom(
  '{"path":"/ok"}',
  '{"path":"/etc/passwd"}',
  '{"__proto__":{"admin":true}}',
  '{"constructor":{"prototype":{}}}',
  '{"a":1,"a":2}',
  '[]',
);
const PARAM_KEY = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('name', 'uri', 'arguments', '_meta', 'cursor') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'Name',
      'NAME',
      'nAme',
      'URI',
      'Uri',
      'Arguments',
      'argumentſ',
      'ARGUMENTS',
      '_Meta',
      '__proto__',
      'constructor',
    ),
  },
);
const PARAMS = fc
  .tuple(fc.array(fc.tuple(PARAM_KEY, fc.oneof(NAME_VALUE, URI_VALUE, ARGS_VALUE), ESC), { maxLength: 4 }), WS)
  .map(([pairs, ws]) => object(pairs, ws));

const TOP_KEY = fc.constantFrom(
  'jsonrpc',
  'id',
  'method',
  'method',
  'params',
  'params',
  'result',
  'error',
  'Method',
  'METHOD',
  'ID',
  'Params',
  'jsonRPC',
  '__proto__',
);
const METHOD_VALUE = fc.constantFrom(
  '"tools/call"',
  '"resources/read"',
  '"prompts/get"',
  '"tools/list"',
  '"TOOLS/CALL"',
  '"tools/call\\ud800"',
  '""',
  '1',
);
const ID_VALUE = fc.constantFrom(
  '1',
  '42',
  '-0',
  '1e0',
  '1.0',
  '1.5',
  '9007199254740993',
  '"a"',
  '"\\ud800"',
  '""',
  'null',
  'true',
);
const TOP_VALUE = fc.oneof(
  { weight: 3, arbitrary: METHOD_VALUE },
  { weight: 3, arbitrary: PARAMS },
  { weight: 2, arbitrary: ID_VALUE },
  { weight: 2, arbitrary: fc.constant('"2.0"') },
  { weight: 1, arbitrary: fc.constantFrom('{}', '{"code":-32601,"message":"m"}', '"1.0"') },
);
/** A message-like object: the usual members first (so most are valid), then anything, duplicates included. */
const MESSAGE = fc
  .tuple(
    fc.constantFrom<(readonly [string, string, boolean])[]>(
      [['jsonrpc', '"2.0"', false]],
      [['jsonrpc', '"2.0"', false]],
      [['jsonrpc', '"2.0"', true]],
      [],
    ),
    fc.option(ID_VALUE, { nil: undefined }),
    METHOD_VALUE,
    fc.option(PARAMS, { nil: undefined }),
    fc.oneof(
      { weight: 3, arbitrary: fc.constant([]) },
      { weight: 2, arbitrary: fc.array(fc.tuple(TOP_KEY, TOP_VALUE, ESC), { maxLength: 3 }) },
    ),
    WS,
  )
  .map(([head, id, method, params, extra, ws]) => {
    const pairs: (readonly [string, string, boolean])[] = [...head];
    if (id !== undefined) pairs.push(['id', id, false]);
    pairs.push(['method', method, false]);
    if (params !== undefined) pairs.push(['params', params, false]);
    return object([...pairs, ...extra], ws);
  });

/** Go's encoding/json key matching: Unicode simple case folding (with ſ→s, K→k), the last matching key wins. */
function fold(k: string): string {
  return k.toLowerCase().replaceAll('ſ', 's');
}

function goField(o: unknown, field: string): unknown {
  if (!isJsonObject(o)) return undefined;
  let found: unknown;
  for (const [k, v] of Object.entries(o)) if (fold(k) === fold(field)) found = v;
  // Go decodes an unpaired surrogate escape to U+FFFD.
  return typeof found === 'string'
    ? found.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')
    : found;
}

interface Routed {
  method: unknown;
  id: unknown;
  name: unknown;
  uri: unknown;
  arguments: unknown;
}

function routedBy(get: (o: unknown, f: string) => unknown, message: unknown): Routed {
  const params = get(message, 'params');
  // -0 and 0 are one JSON number (and the gateway sends its own ids upstream anyway).
  const id = get(message, 'id');
  return {
    method: get(message, 'method'),
    id: id === 0 ? 0 : id,
    name: get(params, 'name'),
    uri: get(params, 'uri'),
    arguments: get(params, 'arguments'),
  };
}

const exact = (o: unknown, f: string): unknown => (isJsonObject(o) && Object.hasOwn(o, f) ? o[f] : undefined);

describe('JSON-RPC validator properties (fast-check, fixed seeds)', () => {
  it('never throws, whatever the text', () => {
    const text = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      MESSAGE,
      fc.json(),
      fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'),
    );
    fc.assert(
      fc.property(text, (t) => {
        const p = parseJson(t);
        if (p.ok) classify(p.value);
      }),
      { seed: 8, numRuns: 1500 },
    );
  });

  it('what it accepts routes the same at any upstream reading the forwarded re-serialisation', () => {
    let accepted = 0;
    fc.assert(
      fc.property(MESSAGE, (text) => {
        const p = parseJson(text);
        if (!p.ok) return;
        const c = classify(p.value);
        if (c.kind !== 'request' && c.kind !== 'notification') return;
        accepted++;
        const gateway = routedBy(exact, c.message as unknown as JsonObject);
        const forwarded = JSON.stringify(c.message);
        expect(routedBy(exact, JSON.parse(forwarded))).toEqual(gateway);
        expect(routedBy(goField, JSON.parse(forwarded))).toEqual(gateway);
      }),
      { seed: 27896, numRuns: 1500 },
    );
    // The generator is useful only if many messages get through to the comparison.
    expect(accepted).toBeGreaterThan(100);
  });
});
