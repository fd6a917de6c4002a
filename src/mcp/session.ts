import { randomBytes, randomUUID } from 'node:crypto';
import type { GatewayError } from '../errors/gateway-error.js';
import type { Cancellation } from '../lib/cancellation.js';
import type { JsonObject, RequestId } from '../lib/json-rpc.js';
import type { Principal } from '../identity/principal.js';
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

/** A random id for sessions made without an authority (code-built tests): 256 bits, base64url, visible ASCII. */
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
  /** The `Mcp-Session-Id`: the sealed token (session-token.ts), or random bytes where no authority issues ids. */
  readonly id: string;
  /** Internal key handed to upstream code (the token's `jti`); the session id itself stays at the front door. */
  readonly key: string;
  /** Absolute end of the session (epoch ms). */
  readonly expiresAt: number;
  readonly createdAt: number;
  lastSeen: number;
  initialized = false;
  /**
   * Initialized and made a request (`sessions.unusedTimeoutMs`): the store then runs the idle clock. A copy
   * rebuilt on another replica learns it again, from its first request there.
   */
  established = false;
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
    ids: { id: string; key: string; expiresAt: number } = {
      id: newSessionId(),
      key: randomUUID(),
      expiresAt: Number.POSITIVE_INFINITY,
    },
  ) {
    this.id = ids.id;
    this.key = ids.key;
    this.expiresAt = ids.expiresAt;
    this.createdAt = now;
    this.lastSeen = now;
  }

  /** In use: a call in flight or an open GET stream. A busy session is never let go, expired as unused or evicted. */
  get busy(): boolean {
    return this.inflight.size > 0 || (this.getStream !== undefined && !this.getStream.closed);
  }

  nextOutboundId(): string {
    this.outboundId += 1;
    return `gatehouse-${this.outboundId}`;
  }
}
