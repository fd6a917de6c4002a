import type { ServerResponse } from 'node:http';
import type { GatewayError } from '../errors/gateway-error.js';
import { responseBody } from '../lib/json-body.js';
import type { JsonRpcMessage, JsonRpcResponse } from '../lib/json-rpc.js';
import type { RequestStream, SessionStream } from '../mcp/streams.js';

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  // nginx and other buffering proxies would hold events back otherwise.
  'x-accel-buffering': 'no',
};

function sseFrame(message: JsonRpcMessage): string {
  // JSON.stringify never emits a raw newline, so one message is one `data:` line.
  return `event: message\ndata: ${JSON.stringify(message)}\n\n`;
}

/**
 * The answer to one POSTed request: plain JSON unless something related must go first, in which case the
 * response becomes an SSE stream that ends with the result (MCP transports §Sending Messages to the Server).
 * JSON is the cheap path; most calls never upgrade.
 */
export class HttpRequestStream implements RequestStream {
  private mode: 'pending' | 'sse' | 'done' = 'pending';

  constructor(
    private readonly res: ServerResponse,
    private readonly headers: Record<string, string> = {},
    /** The `WWW-Authenticate` challenge for a refusal (see `refuse`); without it, refusals are not offered. */
    private readonly challengeFor?: (error: GatewayError) => string | undefined,
    /**
     * MCP 2026-07-28: every error whose code has an HTTP status (errors/codes.ts) is answered with that status, as the
     * revision requires of some (a removed method's 404); 2025 answers them in a 200.
     */
    private readonly errorStatuses = false,
  ) {}

  /** Before anything was sent: the error's HTTP status (with a challenge, if any) and the JSON-RPC error as the body. */
  refuse(error: GatewayError, response: JsonRpcResponse): boolean {
    if (this.mode !== 'pending' || this.closed) return false;
    const challenge = this.challengeFor?.(error);
    if (challenge === undefined && !(this.errorStatuses && error.httpStatus >= 400)) return false;
    const body = JSON.stringify(response);
    this.res.writeHead(error.httpStatus, {
      ...this.headers,
      ...(challenge !== undefined ? { 'www-authenticate': challenge } : {}),
      'cache-control': 'no-store',
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    this.res.end(body);
    this.mode = 'done';
    return true;
  }

  get closed(): boolean {
    return this.mode === 'done' || this.res.destroyed || this.res.writableEnded;
  }

  sendRelated(message: JsonRpcMessage): boolean {
    if (this.closed) return false;
    if (this.mode === 'pending') {
      this.res.writeHead(200, { ...this.headers, ...SSE_HEADERS });
      this.mode = 'sse';
    }
    this.res.write(sseFrame(message));
    return true;
  }

  comment(text: string): boolean {
    if (this.mode !== 'sse' || this.closed) return false;
    // A comment is one line: anything after a line break would be read as a field of its own.
    this.res.write(`: ${text.replace(/[\r\n]/g, ' ')}\n\n`);
    return true;
  }

  finish(response: JsonRpcResponse): void {
    if (this.closed) {
      this.mode = 'done';
      return;
    }
    if (this.mode === 'pending') {
      // A cached list's result is already serialised (lib/json-body.ts): only the envelope is written now.
      const body = responseBody(response);
      this.res.writeHead(200, {
        ...this.headers,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      });
      this.res.end(body);
    } else {
      this.res.end(sseFrame(response));
    }
    this.mode = 'done';
  }
}

/** A session's GET stream, with a comment line now and then so idle proxies keep it open. */
export class HttpSessionStream implements SessionStream {
  private done = false;
  private readonly keepAlive: NodeJS.Timeout;

  constructor(
    private readonly res: ServerResponse,
    keepAliveMs = 25_000,
  ) {
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    this.keepAlive = setInterval(() => {
      if (!this.closed) res.write(': keep-alive\n\n');
    }, keepAliveMs);
    this.keepAlive.unref();
    res.on('close', () => this.close());
  }

  get closed(): boolean {
    return this.done || this.res.destroyed || this.res.writableEnded;
  }

  send(message: JsonRpcMessage): boolean {
    if (this.closed) return false;
    this.res.write(sseFrame(message));
    return true;
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    clearInterval(this.keepAlive);
    if (!this.res.writableEnded) this.res.end();
  }
}
