#!/usr/bin/env node
/**
 * The benchmark's upstream: a minimal stdio MCP server with one tool, `echo({ text })`, that returns the text.
 * It exits when its stdin ends (the gateway or proxy in front of it went away).
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const server = new McpServer({ name: 'bench-echo', version: '1.0.0' });

server.registerTool(
  'echo',
  { description: 'Returns its text argument unchanged.', inputSchema: { text: z.string() } },
  ({ text }) => ({ content: [{ type: 'text', text }] }),
);

process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

await server.connect(new StdioServerTransport());
