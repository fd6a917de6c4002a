import { GatewayError } from '../errors/gateway-error.js';
import {
  isJsonObject,
  rpcError,
  rpcResult,
  type JsonObject,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../lib/json-rpc.js';
import type { CallTrace } from '../telemetry/call-trace.js';
import type { Cancellation } from '../lib/cancellation.js';
import type { ParamHeader } from '../lib/param-headers.js';
import { NO_SECRETS, type SecretRedactor } from '../lib/secret-redactor.js';
import type { Channel, ChannelWarning, InboundMeta, SendContext } from './channel.js';
import { requiredCapabilitiesOf } from './era.js';

/** Who asked, as far as the upstream layer needs to know: an opaque key of the client session. */
export interface CallOrigin {
  readonly sessionKey: string;
}

export interface ProgressUpdate {
  progress: number;
  total?: number;
  message?: string;
}

export interface CallOptions {
  timeoutMs: number;
  maxTotalTimeoutMs: number;
  /** Aborting it cancels the call upstream (`notifications/cancelled`). */
  cancel?: Cancellation;
  /** Given: the gateway mints its own progress token upstream and reports updates here. */
  onProgress?: (update: ProgressUpdate) => void;
  origin?: CallOrigin;
  /** W3C trace context of the call: the `traceparent` header over HTTP, `params._meta.traceparent` on every transport. */
  traceparent?: string;
  /** Opens a child span per call (docs/architecture.md §9); the upstream layer knows no tracer, only this port. */
  trace?: CallTrace;
  /**
   * 2026-07-28 upstreams: the client capabilities this request declares in its `_meta` envelope — the downstream
   * request's (or session's) own, narrowed to what the gateway may declare to this upstream (the policy's relay
   * allowance; Router.forward fills it, and the upstream narrows it once more). Absent: what the gateway declares.
   * Ignored by 2025 upstreams, whose capabilities were fixed at initialize.
   */
  clientCapabilities?: JsonObject;
  /**
   * 2026-07-28 upstreams: `_meta` logLevel of this request; only then may the upstream send `notifications/message`
   * for it (server/utilities/logging). Absent: none asked, no log messages.
   */
  logLevel?: string;
  /** 2026-07-28 over HTTP, `tools/call`: the tool's `x-mcp-header` annotations (upstream definition), see SendContext. */
  paramHeaders?: readonly ParamHeader[];
  /**
   * Outbound identity (src/outbound/): headers of this one call's HTTP request, by lower-case name — the caller's
   * credential. They replace the configured `authorization` and nothing else the upstream is configured with
   * (http-headers.ts `withCallHeaders`). Ignored by stdio (the loader refuses `credentials:` there).
   */
  headers?: Readonly<Record<string, string>>;
}

/**
 * An upstream's JSON-RPC error as it came (the code and `data`), kept as the `cause` of the GatewayError it became:
 * the era probe classifies on the raw code, and a -32021 keeps its `requiredCapabilities`. Never shown to clients.
 */
export class UpstreamRpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data: unknown,
  ) {
    super(message);
    this.name = 'UpstreamRpcError';
  }
}

interface Pending {
  id: number;
  method: string;
  resolve: (result: JsonObject) => void;
  reject: (err: GatewayError) => void;
  timer: NodeJS.Timeout;
  deadline: number;
  timeoutMs: number;
  opts: CallOptions;
  cleanup: () => void;
}

export interface PeerHandlers {
  /** A request from the upstream (sampling, elicitation, roots). `origin` is the session it belongs to, if known. */
  onRequest(request: JsonRpcRequest, origin: CallOrigin | undefined): Promise<JsonObject>;
  onNotification(notification: JsonRpcNotification, origin: CallOrigin | undefined): void;
  onWarning(warning: ChannelWarning): void;
}

/**
 * JSON-RPC over one upstream channel, from the gateway's side. It mints its own request ids (so two clients
 * using the same id never meet: threat model #16), keeps the pending calls, times them out with
 * `notifications/cancelled` (MCP lifecycle §Timeouts, utilities/cancellation), rewrites progress tokens, and
 * finds which client session an upstream-initiated request belongs to.
 *
 * It is deliberately not the SDK's `Protocol`: the gateway relays results without re-validating them through
 * zod on the hot path, and needs the per-call origin bookkeeping the SDK does not keep.
 */
export class RpcPeer {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedError: GatewayError | undefined;

  constructor(
    readonly channel: Channel,
    private readonly label: string,
    private readonly handlers: PeerHandlers,
    secrets: SecretRedactor = NO_SECRETS,
  ) {
    // The one choke point of everything an upstream sends, parsed (SSE events and JSON escapes already undone):
    // results, errors, notifications, its requests to clients all lose the secrets it was given (threat model #17).
    channel.onmessage = (message, meta) => this.receive(secrets.json(message), meta);
    channel.onwarn = (warning) => this.warn(warning);
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** `onId`: told the id minted for this request, synchronously (a listen matches its acknowledgement by it). */
  request(
    method: string,
    params: JsonObject | undefined,
    opts: CallOptions,
    onId?: (id: number) => void,
  ): Promise<JsonObject> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (opts.cancel?.aborted)
      return Promise.reject(
        new GatewayError('GW_MCP_REQUEST_CANCELLED', { detail: `${method} cancelled before sending` }),
      );
    const id = this.nextId++;
    onId?.(id);
    let outParams = params;
    if (opts.onProgress) {
      // Our own token: the client's token means nothing upstream (MCP utilities/progress).
      const meta = isJsonObject(params?._meta) ? params._meta : {};
      outParams = { ...(params ?? {}), _meta: { ...meta, progressToken: id } };
    } else if (params && isJsonObject(params._meta) && Object.hasOwn(params._meta, 'progressToken')) {
      const { progressToken: _dropped, ...rest } = params._meta;
      outParams = { ...params, _meta: rest };
    }
    if (opts.traceparent !== undefined) {
      // MCP SEP-414: trace context in `_meta` reaches upstreams without headers (stdio). The client's other `_meta`
      // fields stay; its own `traceparent`, if any, is replaced by the gateway's span (the parent of the upstream's).
      const meta = isJsonObject(outParams?._meta) ? outParams._meta : {};
      outParams = { ...(outParams ?? {}), _meta: { ...meta, traceparent: opts.traceparent } };
    }
    const message: JsonRpcRequest =
      outParams === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params: outParams };

    return new Promise<JsonObject>((resolve, reject) => {
      const now = Date.now();
      const onAbort = (): void =>
        this.cancel(
          id,
          'cancelled by client',
          new GatewayError('GW_MCP_REQUEST_CANCELLED', { detail: `${method} cancelled by client` }),
        );
      const removeListener = opts.cancel?.onAbort(onAbort);
      const entry: Pending = {
        id,
        method,
        resolve,
        reject,
        timeoutMs: opts.timeoutMs,
        deadline: now + opts.maxTotalTimeoutMs,
        timer: setTimeout(() => this.onTimeout(id), Math.min(opts.timeoutMs, opts.maxTotalTimeoutMs)),
        opts,
        cleanup: removeListener ?? noop,
      };
      this.pending.set(id, entry);
      let ctx: SendContext | undefined;
      if (opts.traceparent !== undefined) ctx = { traceparent: opts.traceparent };
      if (opts.paramHeaders !== undefined) (ctx ??= {}).paramHeaders = opts.paramHeaders;
      if (opts.headers !== undefined) (ctx ??= {}).headers = opts.headers;
      this.channel.send(message, ctx).catch((err: unknown) => {
        this.settle(
          id,
          new GatewayError('GW_UPSTREAM_UNAVAILABLE', {
            detail: `${this.label}: send ${method} failed: ${describe(err)}`,
            cause: err,
          }),
        );
      });
    });
  }

  notify(method: string, params?: JsonObject): void {
    if (this.closedError) return;
    const message: JsonRpcNotification =
      params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params };
    this.channel.send(message).catch(() => undefined);
  }

  /** Fail every pending call: the channel is gone. Later calls fail at once until `reopen`. */
  failAll(err: GatewayError): void {
    this.closedError = err;
    for (const id of [...this.pending.keys()]) this.settle(id, err);
  }

  private onTimeout(id: number): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.cancel(
      id,
      'timeout',
      new GatewayError('GW_UPSTREAM_TIMEOUT', {
        detail: `${this.label}: ${entry.method} timed out after ${entry.timeoutMs} ms`,
      }),
    );
  }

  /** Cancel one call upstream (MCP utilities/cancellation: the notification names our own id). */
  private cancel(id: number, reason: string, err: GatewayError): void {
    if (!this.pending.has(id)) return;
    this.settle(id, err);
    // 2026-07-28 over HTTP the channel closes the request's stream instead: nothing more is sent.
    if (this.channel.abortRequest?.(id) !== true) this.notify('notifications/cancelled', { requestId: id, reason });
  }

  private settle(id: number, outcome: GatewayError | JsonObject): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    entry.cleanup();
    if (outcome instanceof GatewayError) entry.reject(outcome);
    else entry.resolve(outcome);
  }

  private receive(message: JsonRpcMessage, meta: InboundMeta): void {
    if ('method' in message) {
      if ('id' in message) this.receiveRequest(message, meta);
      else this.receiveNotification(message, meta);
      return;
    }
    this.receiveResponse(message);
  }

  private receiveResponse(message: JsonRpcResponse): void {
    const id = message.id;
    if (typeof id !== 'number' || !this.pending.has(id)) return; // unknown or late: dropped, never guessed
    if ('result' in message) {
      this.settle(id, message.result);
      return;
    }
    this.settle(id, upstreamError(this.label, this.pending.get(id)!.method, message.error));
  }

  private receiveNotification(message: JsonRpcNotification, meta: InboundMeta): void {
    if (message.method === 'notifications/progress') {
      const p = message.params;
      const token = p?.progressToken;
      const entry = typeof token === 'number' ? this.pending.get(token) : undefined;
      if (!entry || !entry.opts.onProgress || typeof p?.progress !== 'number') return;
      // Progress may extend a call's deadline, never past the maximum total (MCP lifecycle §Timeouts).
      clearTimeout(entry.timer);
      const remaining = entry.deadline - Date.now();
      entry.timer = setTimeout(() => this.onTimeout(entry.id), Math.max(0, Math.min(entry.timeoutMs, remaining)));
      const update: ProgressUpdate = { progress: p.progress };
      if (typeof p.total === 'number') update.total = p.total;
      if (typeof p.message === 'string') update.message = p.message;
      entry.opts.onProgress(update);
      return;
    }
    this.handlers.onNotification(message, this.originOf(meta));
  }

  private receiveRequest(message: JsonRpcRequest, meta: InboundMeta): void {
    const reply = (response: JsonRpcResponse): void => {
      this.channel.send(response).catch(() => undefined);
    };
    if (message.method === 'ping') {
      reply(rpcResult(message.id, {}));
      return;
    }
    this.handlers
      .onRequest(message, this.originOf(meta))
      .then((result) => reply(rpcResult(message.id, result)))
      .catch((err: unknown) => {
        const e = err instanceof GatewayError ? err : new GatewayError('GW_INTERNAL', { detail: describe(err) });
        reply(rpcError(message.id, { code: e.rpcCode, message: e.publicMessage }));
      });
  }

  /**
   * The client session an upstream message belongs to. Streamable HTTP says so (the POST stream it came on);
   * on stdio we can tell only when every call in flight comes from one session — otherwise nobody gets it,
   * because guessing could hand one client's sampling request to another (threat model #19).
   */
  private originOf(meta: InboundMeta): CallOrigin | undefined {
    if (meta.relatedId !== undefined) return this.pending.get(meta.relatedId)?.opts.origin;
    let only: CallOrigin | undefined;
    for (const entry of this.pending.values()) {
      const o = entry.opts.origin;
      if (!o) continue;
      if (only && only.sessionKey !== o.sessionKey) return undefined;
      only = o;
    }
    return only;
  }

  private warn(warning: ChannelWarning): void {
    const dropped = warning.kind === 'oversized' || warning.kind === 'junk';
    if (dropped && warning.responseId !== undefined) this.failDropped(warning.responseId, warning);
    this.handlers.onWarning(warning);
  }

  /**
   * The channel dropped a message it could attribute to a call of ours (its answer, or a message on its POST
   * stream): that call fails now, not at its deadline (threat model #18), and is cancelled upstream.
   */
  private failDropped(id: number, warning: ChannelWarning & { kind: 'oversized' | 'junk' }): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    if (warning.kind === 'oversized') {
      const detail = `${this.label}: ${entry.method} answered with ${warning.bytes}+ bytes`;
      this.cancel(id, 'response too large', new GatewayError('GW_UPSTREAM_RESPONSE_TOO_LARGE', { detail }));
    } else {
      const why = warning.reason ?? 'not JSON-RPC';
      const detail = `${this.label}: ${entry.method} answered with a message the gateway cannot use: ${why}`;
      this.cancel(id, 'response unusable', new GatewayError('GW_UPSTREAM_PROTOCOL', { detail }));
    }
  }
}

/**
 * An upstream's JSON-RPC error, reduced to a gateway code: the client learns the class of failure, never the
 * upstream's text (docs/architecture.md §5). The text goes to the detail for logs and audit.
 */
function upstreamError(
  label: string,
  method: string,
  error: { code: number; message: string; data?: unknown },
): GatewayError {
  const detail = `${label}: ${method} failed upstream with ${error.code}: ${error.message.slice(0, 500)}`;
  const cause = new UpstreamRpcError(error.code, detail, error.data);
  switch (error.code) {
    // -32020 (our routing headers) and -32022 (our version) describe the gateway's hop: its own fault, never relayed
    // as the client's (docs/protocol-2026-07-28.md §2.7).
    case -32020:
    case -32022:
      return new GatewayError('GW_UPSTREAM_PROTOCOL', { detail, cause });
    case -32021: {
      const required = requiredCapabilitiesOf(error.data);
      return new GatewayError('GW_UPSTREAM_CAPABILITY_REQUIRED', {
        detail,
        cause,
        ...(required === undefined ? {} : { data: { requiredCapabilities: required } }),
      });
    }
    case -32602:
      return new GatewayError('GW_UPSTREAM_INVALID_PARAMS', { detail, cause });
    case -32601:
      return new GatewayError('GW_UPSTREAM_NOT_FOUND', { detail, cause });
    case -32002:
      return new GatewayError('GW_MCP_RESOURCE_UNKNOWN', { detail, cause });
    case -32042:
      return new GatewayError('GW_UPSTREAM_ELICITATION_REQUIRED', { detail, cause });
    default:
      return new GatewayError('GW_UPSTREAM_REJECTED', { detail, cause });
  }
}

function noop(): void {}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
