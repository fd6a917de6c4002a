/**
 * The routing headers of MCP 2026-07-28 (src/edge/routing-headers.ts, src/lib/header-value.ts; basic/transports/streamable-http §Request
 * Metadata): the `=?base64?…?=` value encoding, decoded strictly, and the check of each header against the body.
 */
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkRoutingHeaders, checkVersionHeader, type RoutingHeaders } from '../../src/edge/routing-headers.js';
import { decodeHeaderValue, encodeHeaderValue } from '../../src/lib/header-value.js';
import type { JsonRpcRequest } from '../../src/lib/json-rpc.js';

describe('header value encoding', () => {
  it('matches the examples of the specification', () => {
    expect(encodeHeaderValue('Hello, 世界')).toBe('=?base64?SGVsbG8sIOS4lueVjA==?=');
    expect(encodeHeaderValue(' padded ')).toBe('=?base64?IHBhZGRlZCA=?=');
    expect(encodeHeaderValue('=?base64?literal?=')).toBe('=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=');
    expect(encodeHeaderValue('github__create_issue')).toBe('github__create_issue');
    expect(encodeHeaderValue('file:///projects/my app/config.json')).toBe('file:///projects/my app/config.json');
    expect(decodeHeaderValue('=?base64?SGVsbG8sIOS4lueVjA==?=')).toBe('Hello, 世界');
    expect(decodeHeaderValue('=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=')).toBe('=?base64?literal?=');
  });

  it('round-trips any text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        // Lone surrogates have no UTF-8 form; JSON text from a strict parser never holds one.
        fc.pre(Buffer.from(s, 'utf8').toString('utf8') === s);
        expect(decodeHeaderValue(encodeHeaderValue(s))).toBe(s);
      }),
      { seed: 0x2026, numRuns: 500 },
    );
  });

  it('refuses what is not a valid value instead of guessing', () => {
    expect(decodeHeaderValue('=?base64?SGVsbG8?=')).toBeUndefined(); // unpadded
    expect(decodeHeaderValue('=?base64?SGVsbG8=x?=')).toBeUndefined(); // not Base64
    expect(decodeHeaderValue('=?base64?wK8=?=')).toBeUndefined(); // C0 AF: overlong UTF-8
    expect(decodeHeaderValue('caf\u00e9')).toBeUndefined(); // non-ASCII must be encoded
    expect(decodeHeaderValue('a\u0000b')).toBeUndefined();
    // The sentinel is case-sensitive: anything else is a plain value, taken as written.
    expect(decodeHeaderValue('=?BASE64?SGk=?=')).toBe('=?BASE64?SGk=?=');
    // Optional whitespace around a value is not part of it (RFC 9110 §5.5).
    expect(decodeHeaderValue('  tools/call\t')).toBe('tools/call');
  });
});

describe('routing headers against the body', () => {
  const call: JsonRpcRequest = {
    jsonrpc: '2.0',
    id: 7,
    method: 'tools/call',
    params: { name: 'orders__get_order', arguments: {} },
  };
  const good: RoutingHeaders = { protocolVersion: '2026-07-28', method: 'tools/call', name: 'orders__get_order' };

  function refusal(headers: RoutingHeaders, message = call): string | undefined {
    try {
      checkRoutingHeaders(headers, message, '2026-07-28');
      return undefined;
    } catch (err) {
      expect(err).toMatchObject({ code: 'GW_MCP_HEADER_MISMATCH' });
      return (err as { detail: string }).detail;
    }
  }

  it('accepts headers that say what the body says, plain or encoded', () => {
    expect(refusal(good)).toBeUndefined();
    expect(refusal({ ...good, name: encodeHeaderValue(' orders__get_order') }, call)).toMatch(/Mcp-Name/);
    const named = { ...call, params: { name: 'café', arguments: {} } };
    expect(refusal({ ...good, name: encodeHeaderValue('café') }, named)).toBeUndefined();
    const list: JsonRpcRequest = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
    expect(refusal({ protocolVersion: '2026-07-28', method: 'tools/list', name: undefined }, list)).toBeUndefined();
    const read: JsonRpcRequest = { jsonrpc: '2.0', id: 2, method: 'resources/read', params: { uri: 'notes://a b' } };
    expect(refusal({ protocolVersion: '2026-07-28', method: 'resources/read', name: 'notes://a b' }, read)).toBe(
      undefined,
    );
  });

  it('refuses a missing, invalid or different header, naming which', () => {
    expect(refusal({ ...good, protocolVersion: undefined })).toMatch(/MCP-Protocol-Version header missing/);
    expect(refusal({ ...good, protocolVersion: '2025-11-25' })).toMatch(/MCP-Protocol-Version .* does not match/);
    expect(refusal({ ...good, method: 'tools/list' })).toMatch(/Mcp-Method .* does not match/);
    expect(refusal({ ...good, name: undefined })).toMatch(/Mcp-Name header missing/);
    // A proxy in front routes on the header, the gateway on the body: they must name the same tool.
    expect(refusal({ ...good, name: 'orders__delete_order' })).toMatch(/Mcp-Name .* does not match/);
    // A Base64 header that decodes to another name is the same attack.
    expect(refusal({ ...good, name: encodeHeaderValue('orders__delete_order\n') })).toMatch(/does not match/);
    expect(refusal({ ...good, name: '=?base64?not base64?=' })).toMatch(/not a valid header value/);
    // Case matters in values (only header names are case-insensitive).
    expect(refusal({ ...good, method: 'Tools/Call' })).toMatch(/Mcp-Method/);
  });

  it('still requires a valid Mcp-Name when the body has no usable target', () => {
    const nameless: JsonRpcRequest = { jsonrpc: '2.0', id: 3, method: 'tools/call', params: {} };
    expect(refusal({ ...good, name: undefined }, nameless)).toMatch(/Mcp-Name header missing/);
    expect(refusal(good, nameless)).toBeUndefined();
  });
});

describe('the version header before the version gate', () => {
  const claiming = (version: unknown): JsonRpcRequest => ({
    jsonrpc: '2.0',
    id: 1,
    method: 'server/discover',
    params: {
      _meta: { 'io.modelcontextprotocol/protocolVersion': version, 'io.modelcontextprotocol/clientCapabilities': {} },
    },
  });

  it('refuses a header that differs from the claim, even an unserved claim', () => {
    expect(() => checkVersionHeader('2026-07-28', claiming('v999.0.0'))).toThrow(
      expect.objectContaining({ code: 'GW_MCP_HEADER_MISMATCH' }) as Error,
    );
    expect(() => checkVersionHeader(undefined, claiming('2026-07-28'))).toThrow(
      expect.objectContaining({ code: 'GW_MCP_HEADER_MISMATCH' }) as Error,
    );
  });

  it('passes a matching header, and leaves a claim that is not a string to the _meta check', () => {
    expect(() => checkVersionHeader('v999.0.0', claiming('v999.0.0'))).not.toThrow();
    expect(() => checkVersionHeader('2026-07-28', claiming(42))).not.toThrow();
  });
});
