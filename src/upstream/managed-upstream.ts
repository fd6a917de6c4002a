import type { Logger } from 'pino';
import type { UpstreamConfig } from '../config/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { Cancellation } from '../lib/cancellation.js';
import { isJsonObject, type JsonObject, type JsonRpcNotification, type JsonRpcRequest } from '../lib/json-rpc.js';
import { NO_SECRETS, type SecretRedactor } from '../lib/secret-redactor.js';
import type { BreakerState } from './breaker.js';
import type { Channel, ChannelWarning } from './channel.js';
import { HttpChannel, UpstreamSessionExpired } from './http-channel.js';
import { Resilience, type ResilienceSnapshot } from './resilience.js';
import { RpcPeer, type CallOptions, type CallOrigin } from './rpc-peer.js';
import { SseChannel } from './sse-channel.js';
import { StdioChannel } from './stdio-channel.js';

/** Protocol versions we speak to upstreams, newest first (MCP lifecycle §Version Negotiation). */
export const UPSTREAM_PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'] as const;

export type UpstreamState = 'starting' | 'ready' | 'unhealthy' | 'closed';

export interface UpstreamInfo {
  protocolVersion: string;
  capabilities: JsonObject;
  serverInfo: JsonObject;
  instructions?: string;
}

export type ListKind = 'tools' | 'resources' | 'resourceTemplates' | 'prompts';

const LIST_METHOD: Record<ListKind, string> = {
  tools: 'tools/list',
  resources: 'resources/list',
  resourceTemplates: 'resources/templates/list',
  prompts: 'prompts/list',
};
const MAX_PAGES = 100;
/** Deadline for connect + initialize of one attempt (the default per-call timeout used to cap it the same way). */
const INITIALIZE_TIMEOUT_MS = 30_000;
const MAX_ITEMS = 10_000;

export interface UpstreamHooks {
  /** A request from the upstream to a client (sampling, elicitation, roots/list). */
  relay(upstream: string, request: JsonRpcRequest, origin: CallOrigin | undefined): Promise<JsonObject>;
  notification(upstream: string, notification: JsonRpcNotification, origin: CallOrigin | undefined): void;
  /** Ready after a (re)connect: the catalogue should be refreshed. */
  ready(upstream: string): void;
  stateChanged(upstream: string, state: UpstreamState, detail?: string): void;
  /**
   * The circuit breaker moved (docs/configuration.md "Upstream resilience"). Absent: reported through `stateChanged` as
   * `breaker <state>`.
   */
  breakerChanged?(upstream: string, breaker: BreakerState, from: BreakerState): void;
}

export interface ManagedUpstreamOptions {
  config: UpstreamConfig;
  logger: Logger;
  hooks: UpstreamHooks;
  /**
   * Client capabilities declared to this upstream at each (re)connect: only what the gateway may relay to its
   * clients from it, under the policy in force at that moment (upstream-set.ts).
   */
  clientCapabilities: () => JsonObject;
  clientInfo: { name: string; version: string };
  channelFactory?: (config: UpstreamConfig) => Channel;
  /** Deadline for connect + initialize. */
  initializeTimeoutMs?: number;
  /** Known secrets, redacted from every message and warning of this upstream (threat model #17). */
  secrets?: SecretRedactor;
}

export function defaultChannel(config: UpstreamConfig): Channel {
  switch (config.transport) {
    case 'stdio':
      return new StdioChannel(config);
    case 'http':
      return new HttpChannel(config);
    case 'sse':
      return new SseChannel(config);
  }
}

/**
 * One upstream connection under supervision: connect, initialize, serve calls, and when the connection dies
 * (a crashed process, a lost stream) fail what was in flight, mark the upstream unhealthy and reconnect with
 * exponential backoff, while the other upstreams keep serving.
 */
export class ManagedUpstream {
  readonly name: string;
  private stateValue: UpstreamState = 'starting';
  private peer: RpcPeer | undefined;
  private infoValue: UpstreamInfo | undefined;
  private attempts = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private connecting: Promise<void> | undefined;
  /** A new upstream session being set up after a 404 (renewSession): calls not yet sent wait for it. */
  private renewing: Promise<void> | undefined;
  private readonly resilience: Resilience;
  private readonly readyWaiters = new Set<() => void>();

  constructor(private readonly opts: ManagedUpstreamOptions) {
    this.name = opts.config.name;
    const { hooks, logger } = opts;
    this.resilience = new Resilience({
      config: opts.config,
      label: `upstream ${this.name}`,
      onBreaker: (to, from) => {
        const fields = { upstream: this.name, breaker: to, from };
        if (to === 'open') logger.warn(fields, 'upstream circuit breaker open: calls fail fast');
        else logger.info(fields, `upstream circuit breaker ${to}`);
        if (hooks.breakerChanged) hooks.breakerChanged(this.name, to, from);
        else hooks.stateChanged(this.name, this.stateValue, `breaker ${to}`);
        // Listings refused while it was open (a reconnect's refresh among them) are fetched again now.
        if (to === 'closed' && this.stateValue === 'ready') queueMicrotask(() => hooks.ready(this.name));
      },
      onRetry: (method, attempt, delayMs, err) =>
        logger.debug(
          { upstream: this.name, method, attempt, delayMs, err: err.detail ?? err.code },
          'retrying an idempotent upstream call',
        ),
    });
  }

  /** Breaker state and call slots, for readiness and metrics. */
  get calls(): ResilienceSnapshot {
    return this.resilience.snapshot();
  }

  get config(): UpstreamConfig {
    return this.opts.config;
  }

  get state(): UpstreamState {
    return this.stateValue;
  }

  get info(): UpstreamInfo | undefined {
    return this.infoValue;
  }

  get inFlight(): number {
    return this.peer?.inFlight ?? 0;
  }

  /** First connection. Resolves when ready; rejects if that first attempt fails (retries continue). */
  start(): Promise<void> {
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private setState(state: UpstreamState, detail?: string): void {
    if (this.stateValue === state) return;
    this.stateValue = state;
    this.opts.hooks.stateChanged(this.name, state, detail);
    if (state === 'ready' || state === 'closed') for (const wake of [...this.readyWaiters]) wake();
  }

  /** Resolves once ready (or closed), after `maxMs`, or when `cancel` fires: a retry waits out a restart this way. */
  private whenReady(maxMs: number, cancel?: Cancellation): Promise<void> {
    if (this.stateValue === 'ready' || this.closing || cancel?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        removeListener();
        this.readyWaiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, maxMs));
      this.readyWaiters.add(wake);
      // Not aborted (checked above), so `wake` cannot run before `removeListener` exists.
      const removeListener = cancel?.onAbort(wake) ?? ((): void => undefined);
    });
  }

  private async connect(): Promise<void> {
    const { config, logger } = this.opts;
    const channel = (this.opts.channelFactory ?? defaultChannel)(config);
    const peer = new RpcPeer(
      channel,
      `upstream ${this.name}`,
      {
        onRequest: (request, origin) => this.opts.hooks.relay(this.name, request, origin),
        onNotification: (notification, origin) => this.opts.hooks.notification(this.name, notification, origin),
        onWarning: (w) => this.warn(w),
      },
      this.opts.secrets ?? NO_SECRETS,
    );
    let settled = false;
    channel.onclose = (err) => {
      peer.failAll(
        new GatewayError('GW_UPSTREAM_UNAVAILABLE', {
          detail: `upstream ${this.name}: connection closed${err ? `: ${err.message}` : ''}`,
        }),
      );
      const current = this.peer === peer;
      if (current) this.peer = undefined;
      if (this.closing) return;
      // Not current: replaced by a new session already (renewSession), nothing is lost.
      if (!settled || !current) return;
      // The upstream is up but forgot our session (found on the GET stream, or by a call that was then cancelled):
      // a new session now, not after the reconnect backoff.
      if (err instanceof UpstreamSessionExpired) this.renewNow(channel);
      else this.connectionLost(err?.message ?? 'connection closed');
    };
    try {
      await channel.start();
      // Not the per-call timeoutMs: a cold start (tsx, npx, a JVM) can take longer than a short call deadline,
      // and an upstream killed at every initialize would never become healthy.
      const timeoutMs = this.opts.initializeTimeoutMs ?? INITIALIZE_TIMEOUT_MS;
      const result = await peer.request(
        'initialize',
        {
          protocolVersion: UPSTREAM_PROTOCOL_VERSIONS[0],
          capabilities: this.opts.clientCapabilities(),
          clientInfo: this.opts.clientInfo,
        },
        { timeoutMs, maxTotalTimeoutMs: timeoutMs },
      );
      const info = parseInitializeResult(result);
      channel.setProtocolVersion(info.protocolVersion);
      peer.notify('notifications/initialized');
      if (this.closing) throw new Error('closing');
      settled = true;
      this.peer = peer;
      this.infoValue = info;
      this.attempts = 0;
      this.setState('ready');
      logger.info(
        { upstream: this.name, protocolVersion: info.protocolVersion, server: info.serverInfo.name },
        'upstream ready',
      );
      this.opts.hooks.ready(this.name);
    } catch (err) {
      settled = true;
      await channel.close().catch(() => undefined);
      const detail =
        err instanceof GatewayError ? (err.detail ?? err.code) : err instanceof Error ? err.message : String(err);
      if (!this.closing) this.connectionLost(`connect failed: ${detail}`);
      throw new GatewayError('GW_UPSTREAM_UNAVAILABLE', { detail: `upstream ${this.name}: ${detail}`, cause: err });
    }
  }

  private connectionLost(detail: string): void {
    this.setState('unhealthy', detail);
    this.opts.logger.warn({ upstream: this.name, detail }, 'upstream unhealthy');
    if (this.retryTimer || this.closing) return;
    const { initialDelayMs, maxDelayMs } = this.opts.config.restart;
    const base = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(this.attempts, 20));
    // Jitter keeps replicas from restarting an upstream in lockstep.
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.attempts++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.closing) return;
      this.start().catch(() => undefined);
    }, delay);
    this.retryTimer.unref();
  }

  private warn(w: ChannelWarning): void {
    const log = this.opts.logger;
    // An upstream's own text on the way to the log: its secrets go first (threat model #17). Samples and stderr
    // lines may have been cut by the channel, through a secret too.
    const secrets = this.opts.secrets ?? NO_SECRETS;
    switch (w.kind) {
      case 'stderr':
        log.debug({ upstream: this.name, stderr: secrets.sample(w.line) }, 'upstream stderr');
        break;
      case 'junk': {
        // With a responseId, the call it answered has failed already (rpc-peer.ts); without one, nothing could.
        const sample = secrets.sample(w.sample);
        log.warn(
          { upstream: this.name, sample, reason: w.reason, call: w.responseId },
          'upstream message dropped: not JSON-RPC the gateway can use',
        );
        break;
      }
      case 'oversized':
        log.warn({ upstream: this.name, bytes: w.bytes }, 'upstream message over maxMessageBytes; dropped');
        break;
      case 'stream':
        log.warn({ upstream: this.name, detail: secrets.text(w.detail) }, 'upstream stream trouble');
        break;
    }
  }

  request(method: string, params: JsonObject | undefined, opts: CallOptions): Promise<JsonObject> {
    if (opts.trace !== undefined) {
      // One child span per upstream call (docs/architecture.md §9), around all this upstream does with it; its id
      // goes upstream.
      const { trace, ...rest } = opts;
      const span = trace.start(this.name, method);
      const call = this.request(method, params, { ...rest, traceparent: span.traceparent });
      call.then(
        () => span.end(),
        (err: unknown) => span.end(err),
      );
      return call;
    }
    // Through the breaker, the call gate and (idempotent reads only) retries: see resilience.ts.
    return this.resilience.call(method, params, opts, {
      notReady: () =>
        (this.peer !== undefined || this.renewing !== undefined) && this.stateValue === 'ready'
          ? undefined
          : this.stateValue,
      whenReady: (maxMs, cancel) => this.whenReady(maxMs, cancel),
      send: (o) => {
        // Between a 404 and the new upstream session there is no peer for a moment; this call was sent nowhere
        // yet, so it waits for the new session (within its own timeout, or until cancelled) rather than fail.
        if (this.peer === undefined && this.renewing !== undefined)
          return this.settled(this.renewing, o).then(() => this.sendNow(method, params, o));
        return this.sendNow(method, params, o);
      },
    });
  }

  private sendNow(method: string, params: JsonObject | undefined, o: CallOptions): Promise<JsonObject> {
    const peer = this.peer;
    if (!peer)
      return Promise.reject(
        new GatewayError('GW_UPSTREAM_UNAVAILABLE', { detail: `upstream ${this.name} is ${this.stateValue}` }),
      );
    const call = peer.request(method, params, o);
    // Only an HTTP upstream can forget our session (stdio has none): no extra promise per call on stdio.
    if (this.config.transport === 'stdio') return call;
    return call.catch((err: unknown) => this.renewSession(err, peer, o, (fresh) => fresh.request(method, params, o)));
  }

  /** A new upstream session at once (the old channel is closed); a failed start falls back to the reconnect backoff. */
  private renewNow(stale: Channel): void {
    void stale.close().catch(() => undefined);
    this.opts.logger.info({ upstream: this.name }, 'upstream session expired; starting a new one');
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.renewing ??= this.start().finally(() => {
      this.renewing = undefined;
    });
    this.renewing.catch(() => undefined);
  }

  /**
   * An HTTP upstream that forgot our session (404, MCP transports §Session Management) did not process the call:
   * start a new session now — not after the reconnect backoff — and send the call once more. Only the call that
   * got the 404 is sent again; others in flight on the old session fail as before (they may have run).
   */
  private async renewSession(
    err: unknown,
    stale: RpcPeer,
    opts: CallOptions,
    again: (peer: RpcPeer) => Promise<JsonObject>,
  ): Promise<JsonObject> {
    if (
      !(err instanceof GatewayError) ||
      !(err.cause instanceof UpstreamSessionExpired) ||
      this.closing ||
      opts.cancel?.aborted
    )
      throw err;
    if (this.peer === stale) {
      this.peer = undefined;
      stale.failAll(
        new GatewayError('GW_UPSTREAM_UNAVAILABLE', { detail: `upstream ${this.name}: session expired upstream` }),
      );
      void stale.channel.close().catch(() => undefined);
      this.opts.logger.info({ upstream: this.name }, 'upstream session expired; starting a new one');
    }
    if (this.peer === undefined) {
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      this.renewing ??= this.start().finally(() => {
        this.renewing = undefined;
      });
      await this.renewing;
    }
    const fresh = this.peer as RpcPeer | undefined;
    if (fresh === undefined) throw err;
    return again(fresh);
  }

  /** Waits for `work` to settle, at most the call's timeout and never past its cancellation. */
  private settled(work: Promise<void>, opts: CallOptions): Promise<void> {
    if (opts.cancel?.aborted === true) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let stop: (() => void) | undefined;
      const done = (): void => {
        clearTimeout(timer);
        stop?.();
        resolve();
      };
      const timer = setTimeout(done, opts.timeoutMs);
      stop = opts.cancel?.onAbort(done);
      void work.then(done, done);
    });
  }

  notify(method: string, params?: JsonObject): void {
    this.peer?.notify(method, params);
  }

  /** Every item of a list, following `nextCursor` (MCP utilities/pagination), with a page and item cap. */
  async listAll(kind: ListKind): Promise<JsonObject[]> {
    const items: JsonObject[] = [];
    const seen = new Set<string>();
    let cursor: string | undefined;
    const { timeoutMs, maxTotalTimeoutMs } = this.opts.config;
    for (let page = 0; page < MAX_PAGES; page++) {
      const result = await this.request(LIST_METHOD[kind], cursor === undefined ? {} : { cursor }, {
        timeoutMs,
        maxTotalTimeoutMs,
      });
      const list = result[kind];
      if (Array.isArray(list))
        for (const item of list) if (isJsonObject(item) && items.length < MAX_ITEMS) items.push(item);
      const next = result.nextCursor;
      if (typeof next !== 'string' || next === '' || seen.has(next)) return items;
      seen.add(next);
      cursor = next;
    }
    this.opts.logger.warn({ upstream: this.name, kind }, 'list stopped at the page cap');
    return items;
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const peer = this.peer;
    this.peer = undefined;
    await this.connecting?.catch(() => undefined);
    peer?.failAll(new GatewayError('GW_UPSTREAM_UNAVAILABLE', { detail: `upstream ${this.name} closed` }));
    await (peer?.channel.close() ?? Promise.resolve());
    this.setState('closed');
  }
}

function parseInitializeResult(result: JsonObject): UpstreamInfo {
  const version = result.protocolVersion;
  if (typeof version !== 'string' || !(UPSTREAM_PROTOCOL_VERSIONS as readonly string[]).includes(version)) {
    throw new GatewayError('GW_UPSTREAM_PROTOCOL', {
      detail: `unsupported protocol version ${JSON.stringify(version)}`,
    });
  }
  const capabilities = isJsonObject(result.capabilities) ? result.capabilities : {};
  const serverInfo = isJsonObject(result.serverInfo) ? result.serverInfo : {};
  const info: UpstreamInfo = { protocolVersion: version, capabilities, serverInfo };
  if (typeof result.instructions === 'string') info.instructions = result.instructions;
  return info;
}
