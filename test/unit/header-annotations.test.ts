/**
 * `x-mcp-header` annotations of upstream tools (src/router/header-annotations.ts; MCP 2026-07-28 server/tools
 * §x-mcp-header): a tool that breaks the rules is kept out of the catalogue, named in a catalogue issue.
 */
import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/lib/json-rpc.js';
import { Catalogue } from '../../src/router/catalogue.js';
import { headerAnnotationProblem } from '../../src/router/header-annotations.js';

const schema = (properties: JsonObject, extra: JsonObject = {}): JsonObject => ({
  type: 'object',
  properties,
  ...extra,
});

describe('x-mcp-header annotations', () => {
  it('accepts string, integer and boolean properties reached through properties, nested too', () => {
    expect(headerAnnotationProblem({ type: 'object' })).toBeUndefined();
    expect(
      headerAnnotationProblem(
        schema({
          region: { type: 'string', 'x-mcp-header': 'Region' },
          limit: { type: ['integer', 'null'], 'x-mcp-header': 'Limit' },
          options: { type: 'object', properties: { dry: { type: 'boolean', 'x-mcp-header': 'Dry-Run' } } },
        }),
      ),
    ).toBeUndefined();
  });

  it.each([
    ['a number', schema({ n: { type: 'number', 'x-mcp-header': 'N' } }), /not a string, integer or boolean/],
    ['an object', schema({ o: { type: 'object', 'x-mcp-header': 'O' } }), /not a string, integer or boolean/],
    ['not a token', schema({ r: { type: 'string', 'x-mcp-header': 'Re gion' } }), /not a header name token/],
    ['empty', schema({ r: { type: 'string', 'x-mcp-header': '' } }), /not a header name token/],
    [
      'twice, in another case',
      schema({ a: { type: 'string', 'x-mcp-header': 'Region' }, b: { type: 'string', 'x-mcp-header': 'region' } }),
      /used twice/,
    ],
    [
      'under items',
      schema({ l: { type: 'array', items: { type: 'string', 'x-mcp-header': 'L' } } }),
      /outside a chain of properties/,
    ],
    [
      'under anyOf',
      schema({}, { anyOf: [{ properties: { a: { type: 'string', 'x-mcp-header': 'A' } } }] }),
      /outside a chain of properties/,
    ],
    [
      'under $defs',
      schema({ a: { $ref: '#/$defs/A' } }, { $defs: { A: { type: 'string', 'x-mcp-header': 'A' } } }),
      /outside a chain of properties/,
    ],
  ])('refuses %s', (_label, inputSchema, why) => {
    expect(headerAnnotationProblem(inputSchema)).toMatch(why);
  });

  it('keeps a tool with invalid annotations out of the catalogue, and says why', () => {
    const c = Catalogue.build(
      [
        {
          upstream: 'db',
          tools: [
            { name: 'ok', inputSchema: schema({ r: { type: 'string', 'x-mcp-header': 'Region' } }) },
            { name: 'bad', inputSchema: schema({ n: { type: 'number', 'x-mcp-header': 'N' } }) },
          ],
          resources: [],
          resourceTemplates: [],
          prompts: [],
        },
      ],
      { separator: '__', maxNameLength: 64, unprefixedSingleUpstream: false },
      1,
      1,
    );
    expect([...c.tools.keys()]).toEqual(['db__ok']);
    expect(c.issues).toContainEqual({
      kind: 'invalid-item',
      message: expect.stringMatching(
        /tool "bad" of upstream "db" has an invalid x-mcp-header .*\/properties\/n/,
      ) as unknown,
    });
  });
});
