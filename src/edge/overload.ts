/**
 * Overload protection of the HTTP listener (threat model: resource exhaustion by unauthenticated clients):
 *
 * - `server.maxConnections`: Node closes every socket accepted beyond it (`net.Server#maxConnections`).
 * - Slow clients (slowloris): `headersTimeoutMs` bounds the time to send the headers, `requestTimeoutMs` the whole
 *   request including its body; Node answers 408 and closes. Node checks both only every
 *   `connectionsCheckingInterval` (30 s by default), so the check interval is derived from the timeouts here —
 *   otherwise a 10 s header timeout would really be up to 40 s. The TLS handshake gets the header timeout too.
 * - Back-pressure (`server.overload`, `@fastify/under-pressure`): while the event loop lags or memory is above
 *   its threshold, every request but the health endpoints is answered 503 with `Retry-After` — refusing work
 *   early keeps the process alive instead of letting it run out of memory. `/healthz` stays cheap and 200 (the
 *   process is alive; restarting it would not help), `/readyz` reports the pressure and answers 503 so a load
 *   balancer sends traffic to other replicas while this one recovers.
 *
 * Every refusal is an audit record `{ type: 'http.rejected', reason, status }` (reasons `overloaded`,
 * `max_connections`, `request_timeout`), coalesced per reason under a flood (rejection-recorder.ts).
 */
import underPressure from '@fastify/under-pressure';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerOptions as HttpServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import { getHeapStatistics } from 'node:v8';
import type { AuditSink } from '../audit/audit-sink.js';
import { RejectionRecorder } from './rejection-recorder.js';
import type { ServerConfig } from '../config/types.js';
import { GatewayError, toRpcError } from '../errors/gateway-error.js';
import { rpcError } from '../lib/json-rpc.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `@fastify/under-pressure`: a route's own handling of pressure (the health endpoints let the request through). */
    pressureHandler?: (request: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => void;
  }
}

/** Route config of the health endpoints: answered even under pressure (their handlers report it). */
export const ANSWER_UNDER_PRESSURE = Object.freeze({ pressureHandler: (): void => undefined });

/** Share of V8's heap limit used as `maxHeapUsedBytes` when the config does not set one. */
const DEFAULT_HEAP_SHARE = 0.9;

/**
 * Node server options for the timeouts (passed at creation: `connectionsCheckingInterval` cannot change later).
 * The check runs at least every second and at most every quarter of the header timeout.
 */
export function socketTimeouts(
  server: Pick<ServerConfig, 'headersTimeoutMs' | 'requestTimeoutMs'>,
): Pick<HttpServerOptions, 'headersTimeout' | 'requestTimeout' | 'connectionsCheckingInterval'> {
  return {
    headersTimeout: server.headersTimeoutMs,
    requestTimeout: server.requestTimeoutMs,
    connectionsCheckingInterval: Math.max(250, Math.min(1000, Math.floor(server.headersTimeoutMs / 4))),
  };
}

export interface Pressure {
  readonly underPressure: boolean;
  readonly eventLoopDelayMs: number;
  readonly heapUsedBytes: number;
  readonly rssBytes: number;
}

export interface Overload {
  /** The last sample, for `/readyz`; undefined when `server.overload.enabled` is false. */
  pressure(): Pressure | undefined;
}

export interface OverloadOptions {
  readonly server: Pick<ServerConfig, 'maxConnections' | 'overload'>;
  readonly audit: AuditSink;
  /** The client address of a request (trusted proxies applied). */
  readonly addressOf: (request: FastifyRequest) => string | undefined;
  readonly now?: () => number;
}

/** Installs the connection cap, the timeout audit and (when enabled) under-pressure on the edge app. */
export function registerOverload(app: FastifyInstance, opts: OverloadOptions): Overload {
  const cfg = opts.server.overload;
  const recorder = new RejectionRecorder(opts.audit, opts.now !== undefined ? { now: opts.now } : {});
  app.addHook('onClose', async () => recorder.flushAll());
  const record = (
    reason: string,
    status: number | undefined,
    remoteAddress: string | undefined,
    detail?: string,
  ): void =>
    recorder.record(reason, {
      type: 'http.rejected',
      reason,
      ...(status !== undefined ? { status } : {}),
      ...(remoteAddress !== undefined ? { remoteAddress } : {}),
      ...(detail !== undefined ? { detail } : {}),
    });

  app.server.maxConnections = opts.server.maxConnections;
  // 'drop': a socket accepted past maxConnections and closed at once (net.Server, Node >= 18.6).
  app.server.on('drop', (data?: { remoteAddress?: string }) =>
    record('max_connections', undefined, data?.remoteAddress),
  );
  app.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // Node's own 408 for a header or request timeout; fastify's handler writes the answer.
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') record('request_timeout', 408, socket.remoteAddress);
  });

  if (!cfg.enabled) return { pressure: () => undefined };
  const maxHeapUsedBytes = cfg.maxHeapUsedBytes ?? Math.floor(getHeapStatistics().heap_size_limit * DEFAULT_HEAP_SHARE);
  void app.register(underPressure, {
    maxEventLoopDelay: cfg.maxEventLoopDelayMs,
    maxHeapUsedBytes,
    ...(cfg.maxRssBytes !== undefined ? { maxRssBytes: cfg.maxRssBytes } : {}),
    retryAfter: cfg.retryAfterSeconds,
    pressureHandler: (request, reply, type, value) => {
      record('overloaded', 503, opts.addressOf(request), `${type} ${Math.round(value ?? 0)}`);
      const body = JSON.stringify(rpcError(null, toRpcError(new GatewayError('GW_HTTP_OVERLOADED'))));
      // Sent here; under-pressure then continues the hook chain, which fastify ends because the reply is sent.
      void reply
        .code(503)
        .header('retry-after', String(cfg.retryAfterSeconds))
        .header('content-type', 'application/json')
        .send(body);
    },
  });
  return {
    pressure() {
      const m = app.memoryUsage();
      return {
        underPressure: app.isUnderPressure(),
        eventLoopDelayMs: Math.round(m.eventLoopDelay),
        heapUsedBytes: m.heapUsed,
        rssBytes: m.rssBytes,
      };
    },
  };
}
