/**
 * `Mcp-Param-*` headers against a call's arguments (src/mcp/param-headers.ts; MCP 2026-07-28 streamable-http §Custom
 * Headers from Tool Parameters): found through `properties` only, compared after strict decoding, integers
 * numerically, absent or null arguments expecting no header.
 */
import { describe, expect, it } from 'vitest';
import { encodeHeaderValue } from '../../src/lib/header-value.js';
import type { JsonObject } from '../../src/lib/json-rpc.js';
import { checkParamHeaders, paramHeadersOf } from '../../src/mcp/param-headers.js';

const tool: JsonObject = {
  name: 'q',
  inputSchema: {
    type: 'object',
    properties: {
      region: { type: 'string', 'x-mcp-header': 'Region' },
      limit: { type: 'integer', 'x-mcp-header': 'Limit' },
      options: { type: 'object', properties: { dryRun: { type: 'boolean', 'x-mcp-header': 'Dry-Run' } } },
      list: { type: 'array', items: { type: 'string', 'x-mcp-header': 'Not-Here' } },
    },
  },
};

function refusal(args: JsonObject, headers: Record<string, string>): string | undefined {
  try {
    checkParamHeaders(tool, args, new Map(Object.entries(headers)));
    return undefined;
  } catch (err) {
    expect(err).toMatchObject({ code: 'GW_MCP_HEADER_MISMATCH' });
    return (err as { detail: string }).detail;
  }
}

describe('Mcp-Param-* headers', () => {
  it('finds the annotations reachable through properties only, by lower-case header name', () => {
    expect(paramHeadersOf(tool.inputSchema)).toEqual([
      { header: 'region', path: ['region'] },
      { header: 'limit', path: ['limit'] },
      { header: 'dry-run', path: ['options', 'dryRun'] },
    ]);
  });

  it('accepts headers that say what the arguments say', () => {
    expect(
      refusal(
        { region: 'us-west1', limit: 42, options: { dryRun: true } },
        { region: 'us-west1', limit: '42', 'dry-run': 'true' },
      ),
    ).toBeUndefined();
    expect(refusal({ region: 'Zürich' }, { region: encodeHeaderValue('Zürich') })).toBeUndefined();
    expect(refusal({ limit: 42 }, { limit: '42.0' })).toBeUndefined(); // integers compare numerically
    // Absent or null in the body: no header expected (and one sent anyway is not believed for anything).
    expect(refusal({ region: null }, {})).toBeUndefined();
    expect(refusal({}, { region: 'eu' })).toBeUndefined();
  });

  it('refuses a missing, invalid or different header', () => {
    expect(refusal({ region: 'us-west1' }, {})).toMatch(/Mcp-Param-region header missing/);
    expect(refusal({ region: 'us-west1' }, { region: 'eu-central1' })).toMatch(/does not match argument region/);
    expect(refusal({ region: 'Zürich' }, { region: 'Zürich' })).toMatch(/not a valid header value/);
    expect(refusal({ limit: 42 }, { limit: '4.2e1' })).toMatch(/does not match/);
    expect(refusal({ options: { dryRun: false } }, { 'dry-run': 'true' })).toMatch(/options\.dryRun/);
  });
});
