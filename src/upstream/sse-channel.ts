import type { HttpUpstreamConfig } from '../config/types.js';
import type { JsonRpcMessage } from '../lib/json-rpc.js';
import { SseParser } from '../lib/sse.js';
import type { Channel, ChannelWarning, InboundMeta, SendContext } from './channel.js';
import { upstreamFetch, type UpstreamFetch } from './upstream-tls.js';
import { configuredHeaders, withCallHeaders } from './http-headers.js';
import { droppedEvent, junk, readInboundText } from './inbound.js';

/**
 * The legacy HTTP+SSE transport (MCP 2024-11-05): a GET event stream whose first `endpoint` event names the
 * URL to POST messages to; every answer comes back on the event stream. The endpoint must stay on the
 * configured origin — a server cannot send our static key to another host (threat model #12, #18).
 */
export class SseChannel implements Channel {
  readonly kind = 'sse' as const;
  onmessage?: (message: JsonRpcMessage, meta: InboundMeta) => void;
  onclose?: (error?: Error) => void;
  onwarn?: (warning: ChannelWarning) => void;

  private endpoint: URL | undefined;
  private stream: AbortController | undefined;
  private closed = false;
  /** The configured header names in lower case: a call's own headers replace only `authorization` among them. */
  private readonly configuredNames: ReadonlySet<string>;

  /** Global fetch, or this upstream's own over its TLS settings (upstream-tls.ts). */
  private readonly fetch: UpstreamFetch;

  constructor(
    private readonly config: HttpUpstreamConfig,
    private readonly connectTimeoutMs = 10_000,
  ) {
    this.fetch = upstreamFetch(config.tls, (detail) => this.onwarn?.({ kind: 'stream', detail }));
    this.configuredNames = new Set(Object.keys(config.headers).map((n) => n.toLowerCase()));
  }
  /**
   * The configured headers as this request sends them: revealed per request, not once, so that a static key whose
   * file changed (secret-rotation.ts) goes out from the next request on; a request already sent keeps its own.
   */
  private get baseHeaders(): Record<string, string> {
    return configuredHeaders(this.config.headers);
  }

  start(): Promise<void> {
    this.closed = false;
    const controller = new AbortController();
    this.stream = controller;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      const timer = setTimeout(() => {
        if (!ready) {
          controller.abort();
          reject(new Error('no endpoint event from the SSE upstream'));
        }
      }, this.connectTimeoutMs);
      const parser = new SseParser(
        this.config.maxMessageBytes,
        (event) => {
          if (event.event === 'endpoint') {
            const url = new URL(event.data, this.config.url);
            if (url.origin !== new URL(this.config.url).origin) {
              controller.abort();
              reject(new Error(`endpoint event points at another origin (${url.origin})`));
              return;
            }
            this.endpoint = url;
            ready = true;
            clearTimeout(timer);
            resolve();
            return;
          }
          if (event.event !== 'message') return;
          const m = readInboundText(event.data);
          if (m.ok) this.onmessage?.(m.message, {});
          else this.onwarn?.(junk(m));
        },
        // Every answer shares this one stream: only the dropped message's own id says which call it was.
        (d) => this.onwarn?.(droppedEvent(d, undefined)),
      );
      const run = async (): Promise<void> => {
        const res = await this.fetch(this.config.url, {
          method: 'GET',
          headers: { ...this.baseHeaders, accept: 'text/event-stream' },
          signal: controller.signal,
          redirect: 'error',
        });
        if (!res.ok || !res.body) {
          await res.body?.cancel();
          throw new Error(`SSE upstream answered HTTP ${res.status}`);
        }
        const reader = res.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          parser.push(value);
        }
      };
      run()
        .then(() => {
          clearTimeout(timer);
          if (!ready) reject(new Error('SSE stream ended before the endpoint event'));
          else if (!this.closed) this.onclose?.(new Error('SSE stream ended'));
        })
        .catch((err: unknown) => {
          clearTimeout(timer);
          if (!ready) reject(err instanceof Error ? err : new Error(String(err)));
          else if (!this.closed) this.onclose?.(err instanceof Error ? err : new Error(String(err)));
        });
    });
  }

  async send(message: JsonRpcMessage, ctx?: SendContext): Promise<void> {
    if (this.closed || !this.endpoint) throw new Error('channel not connected');
    const headers: Record<string, string> = { ...this.baseHeaders, 'content-type': 'application/json' };
    if (ctx?.traceparent !== undefined) headers.traceparent = ctx.traceparent;
    withCallHeaders(headers, ctx?.headers, this.configuredNames);
    const res = await this.fetch(this.endpoint, {
      method: 'POST',
      headers,
      body: JSON.stringify(message),
      redirect: 'error',
      signal: AbortSignal.timeout(30_000),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`SSE upstream answered HTTP ${res.status} to a POST`);
  }

  setProtocolVersion(): void {
    // The 2024-11-05 transport has no version header.
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.stream?.abort();
    this.onclose?.();
    return Promise.resolve();
  }
}
