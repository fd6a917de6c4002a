import type { FastifyInstance } from 'fastify';
import type { JSONWebKeySet } from 'jose';
import type { Logger } from 'pino';
import { LoggerAuditSink, ReasonCounter, type AuditSink } from './audit/audit-sink.js';
import type { Authenticator } from './auth/authenticator.js';
import { createAuthenticator } from './auth/resource-server.js';
import type { GatehouseConfig } from './config/types.js';
import { buildEdge, type Readiness } from './edge/server.js';
import { FrontDoor } from './mcp/front-door.js';
import type { PolicyEngine } from './policy/decision.js';
import { PermitAllPolicy } from './policy/permit-all.js';
import { Router } from './router/router.js';
import type { Channel } from './upstream/channel.js';
import { UpstreamSet } from './upstream/upstream-set.js';
import { VERSION } from './version.js';

export interface AppDeps {
  logger: Logger;
  /** Where audit records go; defaults to a child of the logger named `audit`. */
  audit?: AuditSink;
  authenticator?: Authenticator;
  /**
   * `auth.mode: dev`: the public JWKS of the local signing key (`loadOrCreateDevKey(config.auth.dev.keyFile)`,
   * loaded by the caller because this function is synchronous). Tokens from `gatehouse token` verify against it.
   */
  devJwks?: JSONWebKeySet;
  policy?: PolicyEngine;
  /** Tests inject faults here; production uses the transport the config names. */
  channelFactory?: (config: GatehouseConfig['upstreams'][number]) => Channel;
}

export interface App {
  readonly config: GatehouseConfig;
  readonly http: FastifyInstance;
  readonly frontDoor: FrontDoor;
  readonly router: Router;
  readonly upstreams: UpstreamSet;
  /** Authentication failures by reason since start (exported as a metric by the telemetry step). */
  readonly authFailures: ReasonCounter;
  /** Connect the upstreams and load the catalogue. Throws on a start-up collision. */
  start(): Promise<void>;
  readiness(): Readiness;
  /** Graceful: stop accepting, let calls finish up to the deadline, close sessions, upstreams, server. */
  close(deadlineMs?: number): Promise<void>;
}

/**
 * The composition root (DESIGN.md §1): every concrete class is created here and handed its collaborators.
 * No `listen()` — the caller decides where (tests use port 0).
 */
export function buildApp(config: GatehouseConfig, deps: AppDeps): App {
  const logger = deps.logger;
  const audit = deps.audit ?? new LoggerAuditSink(logger.child({ stream: 'audit' }));
  const policy = deps.policy ?? new PermitAllPolicy();
  const authenticator = deps.authenticator ?? createAuthenticator(config, deps.devJwks ? { devJwks: deps.devJwks } : {});

  // The front door and the upstreams need each other (relays go up, calls go down); the hooks close the loop.
  let frontDoor: FrontDoor | undefined;
  let router: Router | undefined;
  const upstreams = new UpstreamSet({
    configs: config.upstreams,
    logger,
    clientInfo: { name: 'gatehouse', version: VERSION },
    ...(deps.channelFactory ? { channelFactory: deps.channelFactory } : {}),
    hooks: {
      relay: (upstream, request, origin) => frontDoor!.relay(upstream, request, origin),
      notification: (upstream, n, origin) => frontDoor?.upstreamNotification(upstream, n, origin),
      ready: (upstream) => void router?.refresh(upstream),
      stateChanged: (upstream, state, detail) => {
        audit.record({ type: 'upstream.state', upstream, outcome: state === 'ready' ? 'ok' : 'error', ...(detail !== undefined ? { detail } : {}) });
      },
    },
  });
  router = new Router(config, upstreams, logger);
  frontDoor = new FrontDoor({ config, router, policy, audit, logger, version: VERSION });

  let started = false;
  let closing = false;
  const readiness = (): Readiness => {
    const health = upstreams.health();
    const waiting = health.filter((h) => h.required && h.state !== 'ready').map((h) => h.name);
    return {
      ready: started && !closing && waiting.length === 0,
      detail: { upstreams: health, sessions: frontDoor!.sessionCount, ...(waiting.length > 0 ? { waitingFor: waiting } : {}) },
    };
  };
  const authFailures = new ReasonCounter();
  const http = buildEdge({ config, frontDoor, authenticator, logger, readiness, audit, authFailures });

  return {
    config,
    http,
    frontDoor,
    router,
    upstreams,
    authFailures,
    readiness,
    async start() {
      if (config.auth.mode === 'none') {
        logger.warn({ host: config.server.host }, 'authentication is OFF (auth.mode: none) — allowed on loopback only; do not expose this gateway');
      }
      await upstreams.startAll();
      await router!.initialLoad();
      started = true;
    },
    async close(deadlineMs = config.server.shutdownTimeoutMs) {
      if (closing) return;
      closing = true;
      // Refuse new connections first, then let calls in flight finish (DESIGN.md: graceful shutdown).
      const serverClosed = http.close();
      await frontDoor!.drain(deadlineMs);
      http.server.closeAllConnections();
      await serverClosed;
      await upstreams.closeAll();
    },
  };
}
