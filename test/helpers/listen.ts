/**
 * A raw MCP 2026-07-28 `subscriptions/listen` client for wire-level tests: POSTs the request with the routing headers
 * a conforming client sends and reads the SSE response as it arrives (comments included), one message at a time.
 */
export const V2026 = '2026-07-28';
export const META_2026 = {
  'io.modelcontextprotocol/protocolVersion': V2026,
  'io.modelcontextprotocol/clientCapabilities': {},
};

export interface Filter {
  toolsListChanged?: boolean;
  promptsListChanged?: boolean;
  resourcesListChanged?: boolean;
  resourceSubscriptions?: string[];
}

export interface RpcMessage {
  jsonrpc: '2.0';
  id?: number | string;
  method?: string;
  params?: Record<string, unknown> & { _meta?: Record<string, unknown> };
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

export interface ListenStream {
  status: number;
  contentType: string | null;
  /** The next message (waits up to `timeoutMs`; throws when none came or the stream ended). */
  next(timeoutMs?: number): Promise<RpcMessage>;
  /** Messages that arrive within `ms` (none expected, usually). */
  collect(ms: number): Promise<RpcMessage[]>;
  /** SSE comment lines seen so far. */
  readonly comments: string[];
  /** Resolves when the server ended the response. */
  readonly ended: Promise<void>;
  close(): void;
}

export async function openListen(
  url: string,
  token: string | undefined,
  id: number | string,
  filter: Filter,
  extraHeaders: Record<string, string> = {},
): Promise<ListenStream> {
  const controller = new AbortController();
  const res = await fetch(url, {
    method: 'POST',
    signal: controller.signal,
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': V2026,
      'mcp-method': 'subscriptions/listen',
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
      ...extraHeaders,
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id,
      method: 'subscriptions/listen',
      params: { _meta: META_2026, notifications: filter },
    }),
  });
  const queue: RpcMessage[] = [];
  const comments: string[] = [];
  let waiter: (() => void) | undefined;
  let done = false;
  const wake = (): void => {
    const w = waiter;
    waiter = undefined;
    w?.();
  };
  const contentType = res.headers.get('content-type');
  const ended = (async () => {
    if (!contentType?.startsWith('text/event-stream')) {
      queue.push((await res.json()) as RpcMessage);
      return;
    }
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        buffer += decoder.decode(value, { stream: true });
        let at: number;
        while ((at = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          for (const line of event.split('\n')) {
            if (line.startsWith('data: ')) queue.push(JSON.parse(line.slice(6)) as RpcMessage);
            else if (line.startsWith(':')) comments.push(line.slice(1).trim());
          }
          wake();
        }
      }
    } catch {
      // aborted by close()
    }
  })().finally(() => {
    done = true;
    wake();
  });
  const next = async (timeoutMs = 10_000): Promise<RpcMessage> => {
    const until = Date.now() + timeoutMs;
    while (queue.length === 0) {
      if (done) throw new Error('listen stream ended');
      const left = until - Date.now();
      if (left <= 0) throw new Error('no message on the listen stream');
      await new Promise<void>((resolve) => {
        waiter = resolve;
        setTimeout(resolve, left);
      });
    }
    return queue.shift()!;
  };
  return {
    status: res.status,
    contentType,
    next,
    async collect(ms) {
      await new Promise((r) => setTimeout(r, ms));
      return queue.splice(0);
    },
    comments,
    ended,
    close: () => controller.abort(),
  };
}

/** A 2026-07-28 request answered with JSON (or SSE ending in the result): its JSON-RPC response. */
export async function modernRequest(
  url: string,
  token: string | undefined,
  id: number,
  method: string,
  params: Record<string, unknown> = {},
): Promise<RpcMessage> {
  const name = typeof params.name === 'string' ? params.name : typeof params.uri === 'string' ? params.uri : '';
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': V2026,
      'mcp-method': method,
      ...(name !== '' ? { 'mcp-name': name } : {}),
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ jsonrpc: '2.0', id, method, params: { ...params, _meta: META_2026 } }),
  });
  const text = await res.text();
  if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
    const lines = text.split('\n').filter((l) => l.startsWith('data: '));
    return JSON.parse(lines[lines.length - 1]!.slice(6)) as RpcMessage;
  }
  return JSON.parse(text) as RpcMessage;
}
