#!/usr/bin/env node
/**
 * The upstream of the `tools/list` measurement: a stdio MCP server with many tools (`tool_0` … `tool_<N-1>`,
 * N from argv[2], default 100), each with a small input schema. Newline-delimited JSON-RPC written by hand
 * (no SDK) so that twenty of them start quickly and stay small; it answers `initialize`, `ping`, `tools/list`
 * (one page) and `tools/call` (echoes `text`). Exits when its stdin ends.
 */
import readline from 'node:readline';

const count = Number.parseInt(process.argv[2] ?? '100', 10);
const tools = Array.from({ length: count }, (_, i) => ({
  name: `tool_${i}`,
  description: `Bench tool number ${i}: returns its text argument.`,
  inputSchema: {
    type: 'object',
    properties: { text: { type: 'string', description: 'Text to return.' }, count: { type: 'integer', minimum: 0 } },
    required: ['text'],
  },
}));

function reply(id: unknown, result: unknown): void {
  process.stdout.write(`${JSON.stringify({ jsonrpc: '2.0', id, result })}\n`);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let msg: { id?: unknown; method?: unknown; params?: { protocolVersion?: unknown; arguments?: { text?: unknown } } };
  try {
    msg = JSON.parse(line) as typeof msg;
  } catch {
    return;
  }
  if (msg.id === undefined || typeof msg.method !== 'string') return; // notifications and responses
  switch (msg.method) {
    case 'initialize':
      reply(msg.id, {
        protocolVersion: typeof msg.params?.protocolVersion === 'string' ? msg.params.protocolVersion : '2025-11-25',
        capabilities: { tools: {} },
        serverInfo: { name: 'bench-many-tools', version: '1.0.0' },
      });
      return;
    case 'ping':
      reply(msg.id, {});
      return;
    case 'tools/list':
      reply(msg.id, { tools });
      return;
    case 'tools/call':
      reply(msg.id, { content: [{ type: 'text', text: String(msg.params?.arguments?.text ?? '') }] });
      return;
    default:
      process.stdout.write(
        `${JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'Method not found' } })}\n`,
      );
  }
});
rl.on('close', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
