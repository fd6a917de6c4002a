import type { Logger } from 'pino';
import type { UpstreamConfig } from '../config/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import { Cancellation } from '../lib/cancellation.js';
import { isJsonObject, type JsonObject, type JsonRpcNotification, type JsonRpcRequest } from '../lib/json-rpc.js';
import { NO_SECRETS, type SecretRedactor } from '../lib/secret-redactor.js';
import type { BreakerState } from './breaker.js';
import { commonCapabilities } from './capabilities.js';
import type { Channel, ChannelWarning } from './channel.js';
import {
  checkModernResult,
  classifyProbe,
  META_SUBSCRIPTION_ID,
  MODERN_UPSTREAM_VERSIONS,
  withEnvelope,
  withoutSubscriptionId,
  type Envelope,
  type ProbeOutcome,
  type ProbeVerdict,
  type UpstreamInfo,
} from './era.js';
import { HttpChannel, UpstreamHttpStatus, UpstreamSessionExpired } from './http-channel.js';
import { Resilience, type ResilienceSnapshot } from './resilience.js';
import { RpcPeer, UpstreamRpcError, type CallOptions, type CallOrigin } from './rpc-peer.js';
import { SseChannel } from './sse-channel.js';
import { StdioChannel } from './stdio-channel.js';

/** Protocol versions we speak to upstreams, newest first (MCP lifecycle §Version Negotiation). */
export const UPSTREAM_PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'] as const;

export type UpstreamState = 'starting' | 'ready' | 'unhealthy' | 'closed';

export type { UpstreamEra, UpstreamInfo } from './era.js';

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
/**
 * How long a stdio upstream may take to answer the `server/discover` probe before it counts as legacy (stdio
 * §Backward Compatibility: no answer within a timeout). Short, but a cold `tsx`/`npx` start must fit in it.
 */
const STDIO_PROBE_TIMEOUT_MS = 10_000;
/** A legacy verdict is reused by reconnects for this long (the v2 SDK's gateway guide: date legacy verdicts). */
const LEGACY_VERDICT_TTL_MS = 10 * 60_000;
/** A listen lives until it is replaced or dropped: the largest timer Node accepts, not a deadline. */
const LISTEN_TIMEOUT_MS = 2 ** 31 - 1;
/** How long a new listen may take to be acknowledged before the old one is kept (SUBS: ack first). */
const LISTEN_ACK_TIMEOUT_MS = 10_000;
const RELISTEN_MAX_MS = 30_000;

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
  /** stdio: how long the `server/discover` probe may go unanswered before the upstream counts as legacy. */
  probeTimeoutMs?: number;
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
  /** When a probe last found this upstream legacy: reconnects within LEGACY_VERDICT_TTL_MS initialize at once. */
  private legacySince: number | undefined;
  /** 2026-07-28: the capabilities declared to it, read at connect like a 2025 initialize's. */
  private declared: JsonObject = {};
  /** 2026-07-28: `logging/setLevel` has no method any more; a per-session instance keeps the level per request. */
  private logLevel: string | undefined;
  /** 2026-07-28: resource URIs the gateway subscribed (resources/subscribe of its clients), counted per client. */
  private readonly subscribed = new Map<string, number>();
  /** 2026-07-28: the open `subscriptions/listen`, which carries list changes and resource updates. */
  private listen: { id: number; cancel: Cancellation; filter: string; peer: RpcPeer } | undefined;
  private readonly listenAcks = new Map<number, () => void>();
  private relistenTimer: NodeJS.Timeout | undefined;
  private relistenAttempts = 0;

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

  /** What the gateway may declare to this upstream (the policy's relay allowance), as read at the last connect. */
  get declaredCapabilities(): JsonObject {
    return this.declared;
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

  /** A channel and its peer; the channel's end is handled here (fail what was in flight, reconnect). */
  private open(): { channel: Channel; peer: RpcPeer; settle: () => void } {
    const channel = (this.opts.channelFactory ?? defaultChannel)(this.opts.config);
    const peer = new RpcPeer(
      channel,
      `upstream ${this.name}`,
      {
        onRequest: (request, origin) => this.opts.hooks.relay(this.name, request, origin),
        onNotification: (notification, origin) => this.inbound(notification, origin),
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
    return { channel, peer, settle: () => (settled = true) };
  }

  private async connect(): Promise<void> {
    const { config, logger } = this.opts;
    let conn = this.open();
    try {
      await conn.channel.start();
      // Not the per-call timeoutMs: a cold start (tsx, npx, a JVM) can take longer than a short call deadline,
      // and an upstream killed at every initialize would never become healthy.
      const timeoutMs = this.opts.initializeTimeoutMs ?? INITIALIZE_TIMEOUT_MS;
      this.declared = this.opts.clientCapabilities();
      let info: UpstreamInfo | undefined;
      // The HTTP+SSE transport predates the stateless generation; `legacy` is today's initialize, no probe.
      const protocol = config.transport === 'sse' ? 'legacy' : config.protocol;
      const cachedLegacy =
        protocol === 'auto' && this.legacySince !== undefined && Date.now() - this.legacySince < LEGACY_VERDICT_TTL_MS;
      if (protocol !== 'legacy' && !cachedLegacy) {
        const verdict = await this.probe(conn.peer, conn.channel, timeoutMs);
        if (verdict.verdict === 'unavailable')
          throw new GatewayError('GW_UPSTREAM_UNAVAILABLE', { detail: verdict.reason });
        if (verdict.verdict === 'modern') info = verdict.info;
        else if (verdict.verdict === 'legacy') {
          if (protocol === '2026-07-28')
            throw new GatewayError('GW_UPSTREAM_PROTOCOL', {
              detail: `protocol 2026-07-28 is configured, but ${verdict.reason}`,
            });
          logger.info(
            { upstream: this.name, era: 'legacy', reason: verdict.reason },
            'upstream era: legacy (initialize)',
          );
          this.legacySince = Date.now();
          conn.channel.useModern?.(undefined);
          if (verdict.restart === true) {
            // An unanswered probe may have left a stdio server waiting on it: initialize a fresh process instead
            // (the v2 SDK probes a disposable sibling process for the same reason).
            await conn.channel.close().catch(() => undefined);
            conn = this.open();
            await conn.channel.start();
          }
        }
      }
      info ??= await this.initialize(conn.peer, conn.channel, timeoutMs);
      if (this.closing) throw new Error('closing');
      conn.settle();
      this.peer = conn.peer;
      this.infoValue = info;
      this.attempts = 0;
      this.setState('ready');
      logger.info(
        { upstream: this.name, era: info.era, protocolVersion: info.protocolVersion, server: info.serverInfo.name },
        'upstream ready',
      );
      if (info.era === 'modern') this.startListen(conn.peer, 'connect');
      this.opts.hooks.ready(this.name);
    } catch (err) {
      conn.settle();
      await conn.channel.close().catch(() => undefined);
      // A legacy verdict that now fails to initialize may be stale (the server was upgraded): probe next time.
      this.legacySince = undefined;
      let detail =
        err instanceof GatewayError ? (err.detail ?? err.code) : err instanceof Error ? err.message : String(err);
      // A 2026-only server refuses initialize with -32022 (basic/versioning §Backward Compatibility): say what to do.
      if (config.protocol === 'legacy' && err instanceof GatewayError && err.cause instanceof UpstreamRpcError)
        if (err.cause.code === -32022) detail += ' (a 2026-07-28-only upstream? set protocol: auto)';
      if (!this.closing) this.connectionLost(`connect failed: ${detail}`);
      throw new GatewayError('GW_UPSTREAM_UNAVAILABLE', { detail: `upstream ${this.name}: ${detail}`, cause: err });
    }
  }

  /** The 2025 handshake (MCP 2025-11-25 basic/lifecycle §Initialization). */
  private async initialize(peer: RpcPeer, channel: Channel, timeoutMs: number): Promise<UpstreamInfo> {
    const result = await peer.request(
      'initialize',
      {
        protocolVersion: UPSTREAM_PROTOCOL_VERSIONS[0],
        capabilities: this.declared,
        clientInfo: this.opts.clientInfo,
      },
      { timeoutMs, maxTotalTimeoutMs: timeoutMs },
    );
    const info = parseInitializeResult(result);
    channel.setProtocolVersion(info.protocolVersion);
    peer.notify('notifications/initialized');
    return info;
  }

  /**
   * `server/discover` with the stateless envelope and headers (docs/protocol-2026-07-28.md §2.1): the verdict of
   * era.ts `classifyProbe`, once more at another revision if a -32022 names one we speak.
   */
  private async probe(peer: RpcPeer, channel: Channel, timeoutMs: number): Promise<ProbeVerdict> {
    const stdio = this.opts.config.transport === 'stdio';
    const wait = stdio ? Math.min(timeoutMs, this.opts.probeTimeoutMs ?? STDIO_PROBE_TIMEOUT_MS) : timeoutMs;
    let version = MODERN_UPSTREAM_VERSIONS[0]!;
    for (let round = 0; round < 2; round++) {
      channel.useModern?.(version);
      const outcome = await this.discover(peer, version, wait);
      const verdict = classifyProbe(outcome, version, stdio ? 'stdio' : 'http');
      if (verdict.verdict !== 'retry') {
        this.opts.logger.debug(
          { upstream: this.name, outcome: outcome.kind, verdict: verdict.verdict },
          'server/discover probe',
        );
        return verdict;
      }
      version = verdict.version;
    }
    return { verdict: 'legacy', reason: 'server/discover answered -32022 twice' };
  }

  private async discover(peer: RpcPeer, version: string, timeoutMs: number): Promise<ProbeOutcome> {
    try {
      const params = withEnvelope(undefined, this.envelope(version, undefined, undefined));
      return {
        kind: 'result',
        result: await peer.request('server/discover', params, { timeoutMs, maxTotalTimeoutMs: timeoutMs }),
      };
    } catch (err) {
      return probeOutcomeOf(err);
    }
  }

  /** The `_meta` envelope of one request: never the client's keys, its capabilities only within what may be declared. */
  private envelope(version: string, caps: JsonObject | undefined, logLevel: string | undefined): Envelope {
    return {
      protocolVersion: version,
      clientCapabilities: caps === undefined ? this.declared : commonCapabilities(caps, this.declared),
      clientInfo: this.opts.clientInfo,
      logLevel,
    };
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
    if (this.infoValue?.era === 'modern')
      return this.sendModern(peer, this.infoValue.protocolVersion, method, params, o);
    const call = peer.request(method, params, o);
    // Only an HTTP upstream can forget our session (stdio has none): no extra promise per call on stdio.
    if (this.config.transport === 'stdio') return call;
    return call.catch((err: unknown) => this.renewSession(err, peer, o, (fresh) => fresh.request(method, params, o)));
  }

  /**
   * One request to a 2026-07-28 upstream: the gateway's envelope in `_meta`, and the result checked (era.ts). The
   * methods that revision removed are answered here (ping, logging/setLevel) or mapped onto the listen filter
   * (resources/subscribe, unsubscribe: SUBS), so the layers above need not ask which generation an upstream speaks.
   */
  private sendModern(
    peer: RpcPeer,
    version: string,
    method: string,
    params: JsonObject | undefined,
    o: CallOptions,
  ): Promise<JsonObject> {
    switch (method) {
      case 'ping':
        return Promise.resolve({});
      case 'logging/setLevel':
        // A per-session instance hears its session's level; it rides on each request from now on (logging §2026).
        if (typeof params?.level === 'string') this.logLevel = params.level;
        return Promise.resolve({});
      case 'resources/subscribe':
      case 'resources/unsubscribe': {
        const uri = params?.uri;
        if (typeof uri !== 'string')
          return Promise.reject(new GatewayError('GW_UPSTREAM_INVALID_PARAMS', { detail: `${method} without a uri` }));
        const resources = this.infoValue?.capabilities.resources;
        if (!isJsonObject(resources) || resources.subscribe !== true)
          // What a 2025 upstream without the capability answers (-32601).
          return Promise.reject(
            new GatewayError('GW_UPSTREAM_NOT_FOUND', {
              detail: `upstream ${this.name} does not offer resource subscriptions`,
            }),
          );
        return this.subscribe(uri, method === 'resources/subscribe' ? 1 : -1).then(() => ({}));
      }
    }
    const label = `upstream ${this.name}`;
    const out = withEnvelope(params, this.envelope(version, o.clientCapabilities, o.logLevel ?? this.logLevel));
    return peer.request(method, out, o).then((result) => checkModernResult(label, method, result));
  }

  /** One client more (or less) subscribed to `uri`: the listen filter follows the URIs anyone still wants. */
  private async subscribe(uri: string, delta: 1 | -1): Promise<void> {
    const before = this.subscribed.get(uri) ?? 0;
    const after = Math.max(0, before + delta);
    if (after === 0) this.subscribed.delete(uri);
    else this.subscribed.set(uri, after);
    if ((before === 0) === (after === 0)) return; // the set of URIs is unchanged
    try {
      await this.setResourceSubscriptions([...this.subscribed.keys()]);
    } catch (err) {
      // Not honoured: the count goes back, so the client's subscribe fails as a whole.
      if (before === 0) this.subscribed.delete(uri);
      else this.subscribed.set(uri, before);
      throw err;
    }
  }

  /**
   * The resource URIs this upstream's listen should carry updates for (MCP 2026-07-28 SUBS `resourceSubscriptions`).
   * A filter cannot be changed on an open stream: a new listen with the new filter is opened, and once it is
   * acknowledged the old one is closed (duplicates in between are harmless). Resolves when the new filter is in
   * force; rejects (the old one stays) when it was not acknowledged. Not a 2026-07-28 upstream: only remembered.
   */
  async setResourceSubscriptions(uris: readonly string[]): Promise<void> {
    const wanted = new Set(uris);
    for (const uri of [...this.subscribed.keys()]) if (!wanted.has(uri)) this.subscribed.delete(uri);
    for (const uri of wanted) if (!this.subscribed.has(uri)) this.subscribed.set(uri, 1);
    const peer = this.peer;
    if (peer === undefined || this.infoValue?.era !== 'modern') return;
    await this.openListen(peer);
  }

  /**
   * The listen filter (SUBS §Subscription Filter): the list changes the upstream declared it can announce, and the
   * subscribed URIs if it supports resource subscriptions. Undefined when there is nothing to listen for.
   */
  private listenFilter(): JsonObject | undefined {
    const caps = this.infoValue?.capabilities ?? {};
    const filter: JsonObject = {};
    const flag = (cap: unknown): boolean => isJsonObject(cap) && cap.listChanged === true;
    if (flag(caps.tools)) filter.toolsListChanged = true;
    if (flag(caps.prompts)) filter.promptsListChanged = true;
    if (flag(caps.resources)) filter.resourcesListChanged = true;
    if (isJsonObject(caps.resources) && caps.resources.subscribe === true && this.subscribed.size > 0)
      filter.resourceSubscriptions = [...this.subscribed.keys()].sort();
    return Object.keys(filter).length > 0 ? filter : undefined;
  }

  /** The first listen after a connect, or a re-listen after a drop (then the catalogue is refreshed: SUBS). */
  private startListen(peer: RpcPeer, why: 'connect' | 'dropped'): void {
    this.openListen(peer).then(
      () => {
        this.relistenAttempts = 0;
        // Changes may have been missed while no listen was open.
        if (why === 'dropped') this.opts.hooks.ready(this.name);
      },
      (err: unknown) => {
        const detail = err instanceof GatewayError ? (err.detail ?? err.code) : String(err);
        // An upstream that answers the listen with an error has none to give: asked again at the next connect only.
        if (err instanceof GatewayError && err.cause instanceof UpstreamRpcError) {
          this.opts.logger.warn(
            { upstream: this.name, detail },
            'upstream refused subscriptions/listen; list changes will not be seen',
          );
          return;
        }
        this.relisten(peer, detail);
      },
    );
  }

  private relisten(peer: RpcPeer, detail: string): void {
    if (this.closing || this.peer !== peer || this.relistenTimer !== undefined) return;
    const delay = Math.min(RELISTEN_MAX_MS, 1000 * 2 ** Math.min(this.relistenAttempts++, 15));
    this.opts.logger.warn({ upstream: this.name, detail, retryInMs: delay }, 'upstream listen lost; listening again');
    this.relistenTimer = setTimeout(() => {
      this.relistenTimer = undefined;
      if (!this.closing && this.peer === peer) this.startListen(peer, 'dropped');
    }, delay);
    this.relistenTimer.unref();
  }

  /** Opens a listen with the current filter and, once acknowledged, makes it the one (closing the previous). */
  private async openListen(peer: RpcPeer): Promise<void> {
    const filter = this.listenFilter();
    const previous = this.listen;
    if (filter === undefined) {
      this.listen = undefined;
      previous?.cancel.abort();
      return;
    }
    const key = JSON.stringify(filter);
    if (previous !== undefined && previous.peer === peer && previous.filter === key) return;
    const version = this.infoValue!.protocolVersion;
    const cancel = new Cancellation();
    let id = 0;
    let acked: () => void = () => undefined;
    const ack = new Promise<void>((resolve) => (acked = resolve));
    const params = withEnvelope({ notifications: filter }, this.envelope(version, undefined, undefined));
    const ended = peer.request(
      'subscriptions/listen',
      params,
      { timeoutMs: LISTEN_TIMEOUT_MS, maxTotalTimeoutMs: LISTEN_TIMEOUT_MS, cancel },
      (minted) => {
        id = minted;
        this.listenAcks.set(minted, acked);
      },
    );
    const entry = { id, cancel, filter: key, peer };
    const done = ended.then(
      () => 'the upstream ended it',
      (err: unknown) => (err instanceof GatewayError ? (err.detail ?? err.code) : String(err)),
    );
    void done.then((why) => {
      this.listenAcks.delete(id);
      // Only the listen in force matters; one replaced or closed by us ends quietly.
      if (this.listen !== entry || cancel.aborted) return;
      this.listen = undefined;
      this.relisten(peer, `subscriptions/listen ended: ${why}`);
    });
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      ack.then(() => 'acked' as const),
      ended.then(
        () => 'ended' as const,
        (err: unknown) => err,
      ),
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), LISTEN_ACK_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    this.listenAcks.delete(id);
    if (outcome !== 'acked') {
      cancel.abort();
      if (outcome instanceof GatewayError) throw outcome;
      throw new GatewayError('GW_UPSTREAM_UNAVAILABLE', {
        detail: `upstream ${this.name}: subscriptions/listen ${outcome === 'timeout' ? 'not acknowledged in time' : 'ended before its acknowledgement'}`,
      });
    }
    if (this.closing || this.peer !== peer) {
      cancel.abort();
      return;
    }
    this.listen = entry;
    if (previous !== undefined && previous !== entry) previous.cancel.abort();
    this.opts.logger.debug({ upstream: this.name, filter }, 'upstream listen acknowledged');
  }

  /**
   * A notification from the upstream. A listen's acknowledgement stays here; its other notifications go the way of
   * a 2025 upstream's (GET stream), without the subscription id, which is ours alone.
   */
  private inbound(notification: JsonRpcNotification, origin: CallOrigin | undefined): void {
    // (`origin` is rpc-peer's: the POST stream a message came on, or on stdio the one session with calls in flight.)
    const meta = notification.params?._meta;
    const sub = isJsonObject(meta) ? meta[META_SUBSCRIPTION_ID] : undefined;
    if (notification.method === 'notifications/subscriptions/acknowledged') {
      if (typeof sub === 'number') this.listenAcks.get(sub)?.();
      return;
    }
    const listen = this.listen;
    if (
      notification.method === 'notifications/cancelled' &&
      listen !== undefined &&
      notification.params?.requestId === listen.id
    ) {
      // stdio: the upstream tore our listen down (CANCEL §Subscriptions); it is not a relayed request's withdrawal.
      this.listen = undefined;
      listen.cancel.abort();
      if (this.peer !== undefined) this.relisten(this.peer, 'the upstream cancelled subscriptions/listen');
      return;
    }
    if (sub === undefined) {
      this.opts.hooks.notification(this.name, notification, origin);
      return;
    }
    const params = withoutSubscriptionId(notification.params);
    const message: JsonRpcNotification =
      params === undefined
        ? { jsonrpc: '2.0', method: notification.method }
        : { jsonrpc: '2.0', method: notification.method, params };
    // It belongs to the listen, not to a call: never attributed to a client session (rpc-peer's stdio guess).
    this.opts.hooks.notification(this.name, message, undefined);
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
    // 2026-07-28 has one client notification, notifications/cancelled, which rpc-peer sends itself (stdio only).
    if (this.infoValue?.era === 'modern') return;
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
    if (this.relistenTimer) clearTimeout(this.relistenTimer);
    this.relistenTimer = undefined;
    this.listen?.cancel.abort();
    this.listen = undefined;
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
  const info: UpstreamInfo = { era: 'legacy', protocolVersion: version, capabilities, serverInfo };
  if (typeof result.instructions === 'string') info.instructions = result.instructions;
  return info;
}

/** How a failed probe request ended, for era.ts (raw JSON-RPC code, HTTP status, timeout, or a transport failure). */
function probeOutcomeOf(err: unknown): ProbeOutcome {
  if (err instanceof GatewayError) {
    if (err.cause instanceof UpstreamRpcError) return { kind: 'error', code: err.cause.code, data: err.cause.data };
    if (err.cause instanceof UpstreamHttpStatus) return { kind: 'http', status: err.cause.status };
    if (err.code === 'GW_UPSTREAM_TIMEOUT') return { kind: 'timeout' };
    return { kind: 'failed', detail: err.detail ?? err.code };
  }
  return { kind: 'failed', detail: err instanceof Error ? err.message : String(err) };
}
