import type { GatewayError } from '../errors/gateway-error.js';
import type { JsonRpcMessage, JsonRpcResponse } from '../lib/json-rpc.js';

/**
 * Where the answer to one client request goes. The transport decides how: the edge answers with plain JSON
 * when nothing but the result is sent, and upgrades the reply to an SSE stream the moment a related message
 * (progress, an upstream's sampling request) has to reach the client first (MCP transports §Sending Messages).
 */
export interface RequestStream {
  /** Send a message related to the request; false when the client can no longer receive it. */
  sendRelated(message: JsonRpcMessage): boolean;
  finish(response: JsonRpcResponse): void;
  /**
   * Refuse the whole request at the transport level instead of finishing it (an HTTP 403 with an
   * `insufficient_scope` challenge for GW_AUTH_INSUFFICIENT_SCOPE; in 2026-07-28 also the statuses that revision
   * gives errors, e.g. a removed method's 404); `response` is the JSON-RPC error for the body.
   * False when the transport cannot (nothing sent then: the caller finishes with `response`). Optional.
   */
  refuse?(error: GatewayError, response: JsonRpcResponse): boolean;
  /**
   * An SSE comment line (`: text`) on a response that is already a stream: a keep-alive for a long-lived request
   * (a 2026-07-28 `subscriptions/listen`), so idle proxies keep it open. False when nothing was written. Optional.
   */
  comment?(text: string): boolean;
  readonly closed: boolean;
}

/** The session's GET stream for messages unrelated to a request (MCP transports §Listening for Messages). */
export interface SessionStream {
  send(message: JsonRpcMessage): boolean;
  close(): void;
  readonly closed: boolean;
}
