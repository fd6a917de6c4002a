import { randomBytes, randomUUID } from 'node:crypto';
import type { GatewayError } from '../errors/gateway-error.js';
import type { Cancellation } from '../lib/cancellation.js';
import type { JsonObject, RequestId } from '../lib/json-rpc.js';
import type { Principal } from '../lib/principal.js';
import type { RequestStream, SessionStream } from './streams.js';

export const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface InFlight {
  cancel: Cancellation;
  stream: RequestStream;
}

export interface PendingClientRequest {
  resolve: (result: JsonObject) => void;
  reject: (err: GatewayError) => void;
  timer: NodeJS.Timeout;
  /** For `notifications/cancelled` from the upstream that asked. */
  upstream: string;
  upstreamRequestId: RequestId;
}

/** `Mcp-Session-Id`: 256 bits from the CSPRNG, base64url — visible ASCII only (MCP transports §Session Management). */
export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}

/** A request id as a map key that keeps `1` and `"1"` apart. */
export function idKey(id: RequestId): string {
  return typeof id === 'number' ? `n${id}` : `s${id}`;
}

/**
 * One client's MCP session: what it negotiated, who it belongs to, and what is in flight. The session is
 * never authentication — every request is authenticated on its own and must match `principalKey`.
 */
export class ClientSession {
  readonly id = newSessionId();
  /** Internal key handed to upstream code; the session id itself stays at the front door. */
  readonly key = randomUUID();
  readonly createdAt: number;
  lastSeen: number;
  initialized = false;
  logLevel: LogLevel | undefined;
  getStream: SessionStream | undefined;
  readonly inflight = new Map<string, InFlight>();
  readonly pendingToClient = new Map<string, PendingClientRequest>();
  readonly subscriptions = new Set<string>();
  closed = false;
  private outboundId = 0;

  constructor(
    readonly principal: Principal,
    readonly principalKey: string,
    readonly protocolVersion: string,
    readonly clientCapabilities: JsonObject,
    readonly clientInfo: JsonObject,
    now: number,
  ) {
    this.createdAt = now;
    this.lastSeen = now;
  }

  nextOutboundId(): string {
    this.outboundId += 1;
    return `gatehouse-${this.outboundId}`;
  }
}
