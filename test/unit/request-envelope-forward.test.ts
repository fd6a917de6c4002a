import { describe, expect, it } from 'vitest';
import { withoutRequestEnvelope } from '../../src/mcp/request-meta.js';

const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': { sampling: {} },
  'io.modelcontextprotocol/clientInfo': { name: 'c', version: '1' },
  'io.modelcontextprotocol/logLevel': 'info',
};

describe('withoutRequestEnvelope: what a 2025 upstream session is sent', () => {
  it('drops the four envelope keys and keeps every other _meta key and param', () => {
    const out = withoutRequestEnvelope({
      name: 't',
      arguments: { a: 1 },
      _meta: {
        ...ENVELOPE,
        progressToken: 7,
        traceparent: 'tp',
        'io.modelcontextprotocol/related-task': { taskId: 'x' },
      },
    });
    expect(out).toEqual({
      name: 't',
      arguments: { a: 1 },
      _meta: { progressToken: 7, traceparent: 'tp', 'io.modelcontextprotocol/related-task': { taskId: 'x' } },
    });
  });

  it('drops a _meta that held only the envelope', () => {
    expect(withoutRequestEnvelope({ uri: 'test://x', _meta: ENVELOPE })).toEqual({ uri: 'test://x' });
  });

  it('returns the same object when there is no envelope (2025 requests cost nothing)', () => {
    const plain = { name: 't', _meta: { progressToken: 'p' } };
    expect(withoutRequestEnvelope(plain)).toBe(plain);
    const none = { name: 't' };
    expect(withoutRequestEnvelope(none)).toBe(none);
  });
});
