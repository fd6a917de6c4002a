/**
 * The load generator's MCP client: request bodies, reply parsing (JSON or SSE), one-off POSTs and session
 * setup (initialize → mcp-session-id → notifications/initialized), outside the measured loop.
 */
import http from 'node:http';

export const PROTOCOL_VERSION = '2025-11-25';
export const ECHO_TEXT = 'hello from the gatehouse bench!!'; // 32 bytes
/** Ids are 10 digits, so every request body of a run has the same length and one headers object serves all. */
export const ID_BASE = 1_000_000_000;

let nextId = 0;
export function freshId(): number {
  nextId += 1;
  return ID_BASE + nextId;
}

/** MCP 2026-07-28: no session; the version and the client's capabilities ride in every request's `_meta`. */
export const MODERN_PROTOCOL_VERSION = '2026-07-28';
const MODERN_META = `"_meta":{"io.modelcontextprotocol/protocolVersion":"${MODERN_PROTOCOL_VERSION}","io.modelcontextprotocol/clientCapabilities":{}}`;

/** A 2026-07-28 tools/call: the same call as `toolCallBody` with the per-request `_meta`. */
export function statelessToolCallBody(id: number, tool: string): string {
  return `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"${tool}","arguments":{"text":"${ECHO_TEXT}"},${MODERN_META}}}`;
}

/** The routing headers a 2026-07-28 client sends with that call (the tool names here are plain ASCII). */
export function statelessHeaders(tool: string): Record<string, string> {
  return { 'mcp-protocol-version': MODERN_PROTOCOL_VERSION, 'mcp-method': 'tools/call', 'mcp-name': tool };
}

export function toolCallBody(id: number, tool: string): string {
  return `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"${tool}","arguments":{"text":"${ECHO_TEXT}"}}}`;
}

/** A JSON body, or the JSON-RPC message of an SSE body's `data:` line that answers `id`. */
export function parseReply(
  contentType: string | undefined,
  text: string,
  id: number | null,
): Record<string, unknown> | undefined {
  try {
    if (contentType?.startsWith('text/event-stream')) {
      let found: Record<string, unknown> | undefined;
      for (const line of text.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data.length === 0) continue; // a priming event (resumability) carries no message
        const msg = JSON.parse(data) as Record<string, unknown>;
        if (id === null || msg.id === id) found = msg;
      }
      return found;
    }
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export function goodToolReply(msg: Record<string, unknown> | undefined, id: number): boolean {
  if (msg === undefined || msg.id !== id || 'error' in msg) return false;
  const result = msg.result as { isError?: boolean; content?: unknown } | undefined;
  return result !== undefined && result.isError !== true && Array.isArray(result.content);
}

export interface HttpEndpoint {
  host: string;
  port: number;
  path: string;
}

/** One POST outside the measured loop (initialize, notifications, checks). */
export function post(
  ep: HttpEndpoint,
  headers: Record<string, string>,
  body: string,
  agent: http.Agent | false = false,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: ep.host,
        port: ep.port,
        path: ep.path,
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'content-length': String(Buffer.byteLength(body)),
          ...headers,
        },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

export interface McpSession {
  headers: Record<string, string>;
  protocolVersion: string;
}

/** initialize → mcp-session-id → notifications/initialized; the session's headers (`base` included). */
export async function initSession(ep: HttpEndpoint, base: Record<string, string>): Promise<McpSession> {
  const init = await post(ep, base, initializeRequest('gatehouse-bench'));
  const sid = init.headers['mcp-session-id'];
  const reply = parseReply(init.headers['content-type'], init.text, 0);
  if (init.status !== 200 || typeof sid !== 'string' || reply === undefined || !('result' in reply)) {
    throw new Error(`initialize failed: HTTP ${init.status}, session ${String(sid)}: ${init.text.slice(0, 300)}`);
  }
  const version =
    ((reply.result as { protocolVersion?: unknown }).protocolVersion as string | undefined) ?? PROTOCOL_VERSION;
  const headers = { ...base, 'mcp-session-id': sid, 'mcp-protocol-version': version };
  await sendInitialized(ep, headers);
  return { headers, protocolVersion: version };
}

/** A session (initSession), then checks that `tool` is listed and echoes. */
export async function openMcpSession(
  ep: HttpEndpoint,
  tool: string,
  base: Record<string, string> = {},
): Promise<McpSession> {
  const { headers, protocolVersion: version } = await initSession(ep, base);

  const list = await post(ep, headers, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }));
  const tools =
    (parseReply(list.headers['content-type'], list.text, 1)?.result as { tools?: { name: string }[] } | undefined)
      ?.tools ?? [];
  if (!tools.some((t) => t.name === tool)) throw new Error(`tools/list has no ${tool}: ${list.text.slice(0, 300)}`);
  const call = await post(ep, headers, toolCallBody(2, tool));
  const msg = parseReply(call.headers['content-type'], call.text, 2);
  const text = (msg?.result as { content?: { text?: string }[] } | undefined)?.content?.[0]?.text;
  if (call.status !== 200 || text !== ECHO_TEXT)
    throw new Error(`check call failed: HTTP ${call.status}: ${call.text.slice(0, 300)}`);
  return { headers, protocolVersion: version };
}

/** initSession over a keep-alive agent (the many sessions of one client). */
export async function initSessionVia(ep: HttpEndpoint, base: Record<string, string>, agent: http.Agent): Promise<void> {
  const init = await post(ep, base, initializeRequest('gatehouse-bench-idle'), agent);
  const sid = init.headers['mcp-session-id'];
  if (init.status !== 200 || typeof sid !== 'string')
    throw new Error(`initialize: HTTP ${init.status}: ${init.text.slice(0, 300)}`);
  await sendInitialized(ep, { ...base, 'mcp-session-id': sid, 'mcp-protocol-version': PROTOCOL_VERSION }, agent);
}

/** The `initialize` params of this client (over HTTP, and over stdio for direct-stdio). */
export function initializeParams(clientName: string): Record<string, unknown> {
  return { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: clientName, version: '1.0.0' } };
}

function initializeRequest(clientName: string): string {
  return JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: initializeParams(clientName) });
}

async function sendInitialized(
  ep: HttpEndpoint,
  headers: Record<string, string>,
  agent: http.Agent | false = false,
): Promise<void> {
  const note = await post(ep, headers, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), agent);
  if (note.status !== 202 && note.status !== 200)
    throw new Error(`notifications/initialized: HTTP ${note.status}: ${note.text.slice(0, 300)}`);
}
