/**
 * Small helpers for the upstream integration tests: free ports, polling, record files and process checks.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** A port that was free a moment ago (listen on 0, read it, close). For servers that cannot listen on 0. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Poll until `check` returns a truthy value (returned) or the time is up (throws with `what`). */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`,
      );
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** One line of a fixture's FIXTURE_RECORD_FILE. */
export interface RecordLine {
  ts: string;
  pid: number;
  transport: 'stdio' | 'streamable-http' | 'sse';
  kind?: 'request' | 'notification' | 'response' | 'invalid';
  method?: string;
  id?: number | string;
  params?: Record<string, unknown>;
  event?: string;
  requestId?: number | string;
  headers?: Record<string, string | string[] | undefined>;
  session?: string;
}

export function readRecord<T = RecordLine>(file: string): T[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

/** The tools/call lines of a record file for one upstream tool name. */
export function toolCalls(file: string, tool: string): RecordLine[] {
  return readRecord(file).filter((l) => l.method === 'tools/call' && l.params?.name === tool);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Time a promise; resolves to the outcome and how long it took. */
export async function timed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const t0 = Date.now();
  try {
    const value = await p;
    return { ms: Date.now() - t0, value };
  } catch (error) {
    return { ms: Date.now() - t0, error };
  }
}

/**
 * A minimal stdio MCP server (plain ESM, run with node) that lists the tool names it is given, to build
 * catalogue collisions no real server would. argv: pidFile, ...tool names. It writes its pid to pidFile and
 * speaks just enough MCP for initialize and tools/list.
 */
export const DUP_SERVER = `
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
const [pidFile, ...tools] = process.argv.slice(2);
writeFileSync(pidFile, String(process.pid));
const send = (m) => process.stdout.write(JSON.stringify({ jsonrpc: '2.0', ...m }) + '\\n');
createInterface({ input: process.stdin }).on('line', (line) => {
  const m = JSON.parse(line);
  if (m.id === undefined) return;
  if (m.method === 'initialize') send({ id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'dup', version: '1' } } });
  else if (m.method === 'tools/list') send({ id: m.id, result: { tools: tools.map((name) => ({ name, inputSchema: { type: 'object' } })) } });
  else send({ id: m.id, error: { code: -32601, message: 'Method not found' } });
}).on('close', () => process.exit(0));
`;
