import type { HttpUpstreamConfig } from '../config/types.js';
import { encodeHeaderValue } from '../lib/header-value.js';
import { isJsonObject, truncate, type JsonRpcMessage } from '../lib/json-rpc.js';
import { paramHeaderValues } from '../lib/param-headers.js';
import { SseParser } from '../lib/sse.js';
import type { Channel, ChannelWarning, InboundMeta, SendContext } from './channel.js';
import { upstreamFetch, type UpstreamFetch } from './upstream-tls.js';
import { configuredHeaders, readCapped, withCallHeaders } from './http-headers.js';
import { droppedEvent, junk, readInbound, readInboundText, type Dropped } from './inbound.js';

/**
 * The upstream answered 404 to our `Mcp-Session-Id`: it no longer knows the session (restarted, expired), so
 * the request was not processed (MCP transports §Session Management: start a new session).
 */
export class UpstreamSessionExpired extends Error {
  constructor() {
    super('upstream session expired (HTTP 404)');
    this.name = 'UpstreamSessionExpired';
  }
}

/**
 * The upstream answered a request with an HTTP error status and no JSON-RPC answer to it: the status, for the era
 * probe (401/403 and 5xx are not era evidence; era.ts) and the log.
 */
export class UpstreamHttpStatus extends Error {
  constructor(readonly status: number) {
    super(`upstream answered HTTP ${status}`);
    this.name = 'UpstreamHttpStatus';
  }
}

/** `Mcp-Name` sources (MCP 2026-07-28 streamable-http §Request Metadata): the name, or for resources/read the URI. */
const NAME_PARAM: Readonly<Record<string, string>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
};

/** Reopening a failed GET stream: warnings for the first attempts, then quiet retries at most this far apart. */
const GET_RETRY_WARNINGS = 5;
const GET_RETRY_MAX_MS = 30_000;

/**
 * A Streamable HTTP client channel (MCP 2025-11-25 basic/transports §Streamable HTTP): one POST per message,
 * answers as JSON or as an SSE stream tied to that request, an optional GET stream for server-initiated
 * messages, and DELETE on close. Messages that arrive on a POST's stream are tagged with that request's id,
 * which is how the gateway knows which client session an upstream's sampling request belongs to.
 */
export class HttpChannel implements Channel {
  readonly kind = 'http' as const;
  onmessage?: (message: JsonRpcMessage, meta: InboundMeta) => void;
  onclose?: (error?: Error) => void;
  onwarn?: (warning: ChannelWarning) => void;

  private sessionId: string | undefined;
  private protocolVersion: string | undefined;
  private readonly inflight = new Set<AbortController>();
  private getStream: AbortController | undefined;
  /** Whether a GET stream was ever open on this channel (see `openGetStream`). */
  private getStreamOpened = false;
  private closed = false;
  /** The configured header names in lower case: a call's own headers replace only `authorization` among them. */
  private readonly configuredNames: ReadonlySet<string>;
  /** 2026-07-28: the version spoken statelessly (useModern); undefined for the session generation. */
  private modern: string | undefined;
  /** 2026-07-28: each request's POST by our id, so cancelling one closes its stream (abortRequest). */
  private readonly requests = new Map<number, AbortController>();

  /** Global fetch, or this upstream's own over its TLS settings (upstream-tls.ts). */
  private readonly fetch: UpstreamFetch;

  constructor(private readonly config: HttpUpstreamConfig) {
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
    return Promise.resolve();
  }

  private headers(ctx: SendContext | undefined, accept: string, message?: JsonRpcMessage): Record<string, string> {
    const h: Record<string, string> = { ...this.baseHeaders, accept };
    if (this.modern !== undefined) {
      if (message !== undefined) Object.assign(h, this.routingHeaders(message, ctx));
    } else {
      if (this.sessionId !== undefined) h['mcp-session-id'] = this.sessionId;
      if (this.protocolVersion !== undefined) h['mcp-protocol-version'] = this.protocolVersion;
    }
    if (ctx?.traceparent !== undefined) h.traceparent = ctx.traceparent;
    return withCallHeaders(h, ctx?.headers, this.configuredNames);
  }

  /**
   * The 2026-07-28 headers of one POST (streamable-http §Request Metadata), regenerated from the body we send, never
   * copied from a client's request: `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*`, values in the
   * `=?base64?…?=` form where plain ASCII cannot carry them.
   */
  private routingHeaders(message: JsonRpcMessage, ctx: SendContext | undefined): Record<string, string> {
    const h: Record<string, string> = { 'mcp-protocol-version': this.modern! };
    if (!('method' in message)) return h;
    h['mcp-method'] = message.method;
    const key = NAME_PARAM[message.method];
    const name = key === undefined ? undefined : message.params?.[key];
    if (typeof name === 'string') h['mcp-name'] = encodeHeaderValue(name);
    if (message.method === 'tools/call' && ctx?.paramHeaders !== undefined)
      Object.assign(h, paramHeaderValues(ctx.paramHeaders, message.params?.arguments));
    return h;
  }

  useModern(version: string | undefined): void {
    this.modern = version;
  }

  abortRequest(id: number): boolean {
    if (this.modern === undefined) return false;
    this.requests.get(id)?.abort();
    return true;
  }

  async send(message: JsonRpcMessage, ctx?: SendContext): Promise<void> {
    if (this.closed) throw new Error('channel closed');
    const controller = new AbortController();
    this.inflight.add(controller);
    const modernId =
      this.modern !== undefined && 'method' in message && 'id' in message && typeof message.id === 'number'
        ? message.id
        : undefined;
    if (modernId !== undefined) this.requests.set(modernId, controller);
    try {
      const headers = this.headers(ctx, 'application/json, text/event-stream', message);
      headers['content-type'] = 'application/json';
      const res = await this.fetch(this.config.url, {
        method: 'POST',
        headers,
        body: JSON.stringify(message),
        signal: controller.signal,
        // A redirect could carry our static key elsewhere (threat model #18).
        redirect: 'error',
      });
      const isRequest = 'method' in message && 'id' in message;
      if (isRequest && message.method === 'initialize') {
        const sid = res.headers.get('mcp-session-id');
        if (sid !== null) this.sessionId = sid;
      }
      if (res.status === 404 && this.sessionId !== undefined && !(isRequest && message.method === 'initialize')) {
        await res.body?.cancel();
        this.sessionId = undefined;
        const err = new UpstreamSessionExpired();
        // The caller hears first (its owner starts a new session and sends it once more); then the connection ends.
        setImmediate(() => this.onclose?.(err));
        throw err;
      }
      if (res.status === 202) {
        await res.body?.cancel();
        if (isRequest) throw new Error('upstream answered 202 to a request');
        return;
      }
      if (!res.ok) {
        // 2026-07-28 answers its own refusals with a status and a JSON-RPC error (400 -32021/-32022, 404 -32601:
        // streamable-http §Protocol Version Header; basic §Error Codes): that error is the request's answer.
        // A 2025 server may do the same (a 2026-only one refuses initialize with 400 -32022): the log then says why.
        const id = isRequest && typeof message.id === 'number' ? message.id : undefined;
        const json = (res.headers.get('content-type') ?? '').includes('application/json');
        if (id !== undefined && res.status < 500 && json) {
          if (await this.errorAnswer(res, id)) return;
          throw new UpstreamHttpStatus(res.status); // the body is read (and its reader done with) already
        }
        await res.body?.cancel();
        throw new UpstreamHttpStatus(res.status);
      }
      if (!isRequest) {
        await res.body?.cancel();
        return;
      }
      const relatedId = typeof message.id === 'number' ? message.id : undefined;
      const type = res.headers.get('content-type') ?? '';
      if (type.includes('text/event-stream')) {
        await this.readStream(res.body, relatedId, controller);
        return;
      }
      // A declared length over the cap is refused before reading a byte; otherwise bytes are counted as they stream.
      const declared = Number(res.headers.get('content-length') ?? Number.NaN);
      if (declared > this.config.maxMessageBytes) {
        await res.body?.cancel();
        this.warnOversized(declared, relatedId);
        throw new Error(`response of ${declared} bytes is larger than ${this.config.maxMessageBytes}`);
      }
      const body = await readCapped(res.body, this.config.maxMessageBytes);
      if (!body.ok) {
        this.warnOversized(body.bytes, relatedId);
        throw new Error(`response larger than ${this.config.maxMessageBytes} bytes`);
      }
      // The JSON body answering a request is its response (transports §Sending Messages): anything else — bytes
      // the gateway cannot use, or another message — fails the call now, not at its deadline (threat model #18).
      const m = readInbound(body.bytes);
      if (m.ok && this.deliver(m.message, relatedId)) return;
      const sample = m.ok ? truncate(JSON.stringify(m.message), 200) : '';
      const why: Dropped = m.ok ? { ok: false, reason: 'the JSON answer to a request is not its response', sample } : m;
      this.onwarn?.(junk(why, relatedId));
      throw new Error(`upstream answered ${message.method} with a message the gateway cannot use (${why.reason})`);
    } finally {
      this.inflight.delete(controller);
      if (modernId !== undefined) this.requests.delete(modernId);
    }
  }

  /** Delivers a JSON error body answering request `id` (bounded, strict); false when the body is anything else. */
  private async errorAnswer(res: Response, id: number): Promise<boolean> {
    const body = await readCapped(res.body, Math.min(this.config.maxMessageBytes, 64 * 1024));
    if (!body.ok) return false;
    const m = readInbound(body.bytes);
    if (!m.ok || 'method' in m.message || m.message.id !== id || !('error' in m.message)) return false;
    if (!isJsonObject(m.message.error)) return false;
    this.deliver(m.message, id);
    return true;
  }

  private warnOversized(bytes: number, relatedId: number | undefined): void {
    this.onwarn?.(
      relatedId === undefined ? { kind: 'oversized', bytes } : { kind: 'oversized', bytes, responseId: relatedId },
    );
  }

  /** Hand a message on; true when it is the response to `relatedId`. */
  private deliver(message: JsonRpcMessage, relatedId: number | undefined): boolean {
    const meta: InboundMeta = relatedId === undefined ? {} : { relatedId };
    this.onmessage?.(message, meta);
    return !('method' in message) && message.id === relatedId;
  }

  /** Read an SSE answer until the response to `relatedId` arrives (or, for the GET stream, until it ends). */
  private async readStream(
    body: ReadableStream<Uint8Array> | null,
    relatedId: number | undefined,
    controller: AbortController,
  ): Promise<void> {
    if (!body) return;
    let answered = false;
    // A message dropped from a POST's stream (oversized, not UTF-8, not JSON-RPC) fails that call at once
    // (rpc-peer cancels it upstream), whether or not it was the response itself: stop reading the stream.
    let failed = false;
    const drop = (w: ChannelWarning): void => {
      if (answered || failed) return;
      this.onwarn?.(w);
      if (relatedId !== undefined) failed = true;
    };
    const parser = new SseParser(
      this.config.maxMessageBytes,
      (event) => {
        if (event.event !== 'message' || answered || failed) return;
        const m = readInboundText(event.data);
        if (!m.ok) drop(junk(m, relatedId ?? m.responseId));
        else if (this.deliver(m.message, relatedId) && relatedId !== undefined) answered = true;
      },
      (d) => drop(droppedEvent(d, relatedId)),
    );
    const reader = body.getReader();
    try {
      while (!answered && !failed) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.push(value);
        // Over the cap or not UTF-8 already: the call fails now, not after the rest of a huge event is read.
        const lost = relatedId === undefined ? undefined : parser.dropping;
        if (lost) drop(droppedEvent(lost, relatedId));
      }
    } finally {
      if (answered || failed) controller.abort();
      await reader.cancel().catch(() => undefined);
    }
    if (failed) throw new Error('the response stream carried a message the gateway cannot use');
    if (relatedId !== undefined && !answered && !this.closed)
      throw new Error('upstream closed the response stream before answering');
  }

  setProtocolVersion(version: string): void {
    this.modern = undefined;
    this.protocolVersion = version;
    this.openGetStream(0);
  }

  /** The optional GET stream for messages not tied to a request (transports §Listening for Messages). */
  private openGetStream(attempt: number): void {
    if (this.closed || this.getStream) return;
    const controller = new AbortController();
    this.getStream = controller;
    const run = async (): Promise<boolean> => {
      const sent = this.sessionId;
      const res = await this.fetch(this.config.url, {
        method: 'GET',
        headers: this.headers(undefined, 'text/event-stream'),
        signal: controller.signal,
        redirect: 'error',
      });
      if (res.status === 404 && this.getStreamOpened && sent !== undefined && sent === this.sessionId) {
        // The upstream forgot our session (it restarted: transports §Session Management). Said now, so the owner
        // starts a new one — not at the next call, which may be long after its tools or resources changed.
        // Only once a GET stream worked on this session: a server that answers 404 (not 405) to every GET would
        // otherwise be re-initialised in a loop.
        await res.body?.cancel();
        this.sessionId = undefined;
        this.onclose?.(new UpstreamSessionExpired());
        return false;
      }
      if (!res.ok || !(res.headers.get('content-type') ?? '').includes('text/event-stream')) {
        await res.body?.cancel();
        return false; // 405: this server offers no GET stream; that is allowed
      }
      this.getStreamOpened = true;
      await this.readStream(res.body, undefined, controller);
      return true;
    };
    run()
      .then((hadStream) => {
        this.getStream = undefined;
        if (hadStream && !this.closed) setTimeout(() => this.openGetStream(0), 1000).unref();
      })
      .catch((err: unknown) => {
        this.getStream = undefined;
        if (this.closed || controller.signal.aborted) return;
        // Unreachable (restarting, say): tried again for as long as the channel is open, at most every 30 s, so a
        // restarted upstream is found (the 404 above) without waiting for a call. Warned a few times, not forever.
        if (attempt < GET_RETRY_WARNINGS)
          this.onwarn?.({
            kind: 'stream',
            detail: `GET stream failed: ${err instanceof Error ? err.message : String(err)}${attempt === GET_RETRY_WARNINGS - 1 ? ' (retrying every 30 s, quietly)' : ''}`,
          });
        setTimeout(
          () => this.openGetStream(attempt + 1),
          Math.min(GET_RETRY_MAX_MS, 1000 * 2 ** Math.min(attempt, 15)),
        ).unref();
      });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.getStream?.abort();
    for (const c of this.inflight) c.abort();
    this.inflight.clear();
    const sid = this.sessionId;
    this.sessionId = undefined;
    if (sid !== undefined) {
      // Best effort: tell the server the session is over (transports §Session Management).
      const headers = { ...this.baseHeaders, 'mcp-session-id': sid };
      if (this.protocolVersion !== undefined) Object.assign(headers, { 'mcp-protocol-version': this.protocolVersion });
      await this.fetch(this.config.url, {
        method: 'DELETE',
        headers,
        signal: AbortSignal.timeout(1000),
        redirect: 'error',
      })
        .then((r) => r.body?.cancel())
        .catch(() => undefined);
    }
    this.onclose?.();
  }
}
