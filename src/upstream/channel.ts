import type { JsonRpcMessage } from '../lib/json-rpc.js';
import type { ParamHeader } from '../lib/param-headers.js';

/**
 * What arrives with an inbound upstream message beyond the message itself.
 * `relatedId` is the gateway-minted id of the upstream request whose response stream carried the message
 * (Streamable HTTP ties a POST's SSE stream to its request); stdio and legacy SSE cannot say, so it is absent.
 */
export interface InboundMeta {
  relatedId?: number;
}

export interface SendContext {
  /** W3C trace context for HTTP upstreams (the audit issue fills it). */
  traceparent?: string;
  /**
   * 2026-07-28 over HTTP: the `x-mcp-header` annotations of the upstream's own definition of the tool called, so the
   * channel mirrors the forwarded arguments into `Mcp-Param-*` (streamable-http §Custom Headers from Tool Parameters).
   */
  paramHeaders?: readonly ParamHeader[];
  /**
   * HTTP and SSE: headers of this one request (the caller's outbound credential, CallOptions.headers), merged over the
   * configured ones by `withCallHeaders` (http-headers.ts): they may replace `authorization`, nothing else configured,
   * and never a header of the protocol. stdio has no per-request headers.
   */
  headers?: Readonly<Record<string, string>>;
}

/**
 * A byte pipe for JSON-RPC messages to one upstream MCP server: stdio, Streamable HTTP or legacy SSE.
 * Channels frame and bound messages; they know nothing of ids, timeouts or sessions of clients.
 */
export interface Channel {
  readonly kind: 'stdio' | 'http' | 'sse';
  start(): Promise<void>;
  /**
   * Send one message. For a request over HTTP the promise settles when the request has been handed over
   * (its answer comes through `onmessage`); a rejection means the message could not be delivered.
   */
  send(message: JsonRpcMessage, ctx?: SendContext): Promise<void>;
  close(): Promise<void>;
  /** Called once the connection has completed initialize, with the negotiated version. */
  setProtocolVersion(version: string): void;
  /**
   * Speak the stateless generation at `version` from now on (the probe and everything after a modern verdict), or
   * the session generation again (`undefined`, after a legacy verdict). Over HTTP: the 2026-07-28 routing headers, no
   * session, no GET stream, no DELETE. Absent: the transport has nothing to change (stdio, legacy SSE).
   */
  useModern?(version: string | undefined): void;
  /**
   * Cancel our request `id` by the transport itself; true when that is the whole cancellation (2026-07-28 over HTTP:
   * closing the POST's response stream, and no `notifications/cancelled`, streamable-http §Cancellation). False or
   * absent: the peer sends `notifications/cancelled` (stdio, and the 2025 generation).
   */
  abortRequest?(id: number): boolean;
  onmessage?: (message: JsonRpcMessage, meta: InboundMeta) => void;
  /** The connection ended (process exit, stream lost). `error` says why when it was not asked for. */
  onclose?: (error?: Error) => void;
  /** Non-fatal trouble worth a log line (junk on stdout, a message dropped: oversized, not UTF-8, not JSON-RPC). */
  onwarn?: (warning: ChannelWarning) => void;
}

/**
 * `responseId`: the dropped message answered (or, on a POST's stream, belonged to) this call of ours, which then
 * fails at once instead of waiting for its deadline (threat model #18).
 */
export type ChannelWarning =
  | { kind: 'junk'; sample: string; reason?: string; responseId?: number }
  | { kind: 'oversized'; bytes: number; responseId?: number }
  | { kind: 'stderr'; line: string }
  | { kind: 'stream'; detail: string };
