import type { Logger } from 'pino';
import type { UpstreamConfig } from '../config/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { JsonObject } from '../lib/json-rpc.js';
import type { SecretRedactor } from '../lib/secret-redactor.js';
import type { BreakerSnapshot } from './breaker.js';
import { commonCapabilities } from './capabilities.js';
import type { Channel } from './channel.js';
import { ManagedUpstream, type UpstreamHooks, type UpstreamState } from './managed-upstream.js';

export interface UpstreamHealth {
  name: string;
  transport: UpstreamConfig['transport'];
  mode: UpstreamConfig['mode'];
  required: boolean;
  state: UpstreamState;
  protocolVersion?: string;
  /** Per-session instances currently running (per-session mode only). */
  sessions?: number;
  /** The shared instance's circuit breaker (absent when `breaker.enabled` is false). Open does not fail /readyz. */
  breaker?: BreakerSnapshot;
  /** The shared instance's calls in flight and waiting for a slot (maxInFlight / maxQueued). */
  inFlight: number;
  queued: number;
}

export interface UpstreamSetOptions {
  configs: readonly UpstreamConfig[];
  logger: Logger;
  hooks: UpstreamHooks;
  clientInfo: { name: string; version: string };
  channelFactory?: (config: UpstreamConfig) => Channel;
  /**
   * The client capabilities (`sampling`, `elicitation` with its modes, `roots`) the gateway may declare to an
   * upstream: the requests the policy could let it send (threat model #19; app.ts). Read at every connect, so a
   * policy reload applies from the upstream's next (re)connect. Absent: everything the gateway can relay.
   */
  declarable?: (upstream: string) => JsonObject;
  /** Known secrets, redacted from everything an upstream sends (threat model #17). Absent: none configured. */
  secrets?: SecretRedactor;
}

/**
 * Every upstream the config names. A `shared` upstream is one connection for all client sessions; a
 * `per-session` one is started for each client session that uses it (servers that keep per-client state),
 * declared to with that client's own capabilities, and closed with the session. For a per-session upstream
 * the shared instance still runs: it is where the catalogue comes from.
 */
export class UpstreamSet {
  private readonly shared = new Map<string, ManagedUpstream>();
  private readonly perSession = new Map<string, Map<string, Promise<ManagedUpstream>>>();
  private readonly ready = new Map<string, Set<ManagedUpstream>>();

  constructor(private readonly opts: UpstreamSetOptions) {
    for (const config of opts.configs)
      this.shared.set(
        config.name,
        this.create(config, () => this.declarable(config.name)),
      );
  }

  private declarable(name: string): JsonObject {
    return this.opts.declarable?.(name) ?? RELAYABLE_CAPABILITIES;
  }

  private create(config: UpstreamConfig, clientCapabilities: () => JsonObject): ManagedUpstream {
    return new ManagedUpstream({
      config,
      logger: this.opts.logger,
      hooks: this.opts.hooks,
      clientCapabilities,
      clientInfo: this.opts.clientInfo,
      ...(this.opts.channelFactory ? { channelFactory: this.opts.channelFactory } : {}),
      ...(this.opts.secrets ? { secrets: this.opts.secrets } : {}),
    });
  }

  get names(): string[] {
    return [...this.shared.keys()];
  }

  get(name: string): ManagedUpstream | undefined {
    return this.shared.get(name);
  }

  /** Start all in parallel; resolves when each has answered initialize or failed its first attempt. */
  async startAll(): Promise<void> {
    await Promise.all([...this.shared.values()].map((u) => u.start().catch(() => undefined)));
  }

  /** The instance that serves `sessionKey`'s calls to `name`. */
  /** The upstream `name` when it is shared by all sessions (see `forSession`), else undefined. */
  sharedNow(name: string): ManagedUpstream | undefined {
    const shared = this.shared.get(name);
    return shared?.config.mode === 'shared' ? shared : undefined;
  }

  async forSession(name: string, sessionKey: string, clientCapabilities: JsonObject): Promise<ManagedUpstream> {
    const shared = this.shared.get(name);
    if (!shared) throw new GatewayError('GW_INTERNAL', { detail: `no upstream named ${name}` });
    if (shared.config.mode === 'shared') return shared;
    let mine = this.perSession.get(sessionKey);
    if (!mine) {
      mine = new Map();
      this.perSession.set(sessionKey, mine);
    }
    let instance = mine.get(name);
    if (!instance) {
      const created = this.create(shared.config, () => commonCapabilities(clientCapabilities, this.declarable(name)));
      instance = created.start().then(
        () => {
          if (this.perSession.get(sessionKey) !== mine) return created; // released while starting
          const set = this.ready.get(sessionKey) ?? new Set();
          set.add(created);
          this.ready.set(sessionKey, set);
          return created;
        },
        (err: unknown) => {
          mine.delete(name);
          void created.close();
          throw err;
        },
      );
      mine.set(name, instance);
    }
    return instance;
  }

  /** Per-session instances already started (and ready) for this session. */
  runningForSession(sessionKey: string): ManagedUpstream[] {
    const mine = this.perSession.get(sessionKey);
    if (!mine) return [];
    return [...(this.ready.get(sessionKey) ?? [])].filter((u) => u.state === 'ready');
  }

  /** The session ended: stop its own upstream processes. */
  async releaseSession(sessionKey: string): Promise<void> {
    const mine = this.perSession.get(sessionKey);
    if (!mine) return;
    this.perSession.delete(sessionKey);
    this.ready.delete(sessionKey);
    await Promise.all([...mine.values()].map((p) => p.then((u) => u.close()).catch(() => undefined)));
  }

  health(): UpstreamHealth[] {
    return [...this.shared.values()].map((u) => {
      const calls = u.calls;
      const h: UpstreamHealth = {
        name: u.name,
        transport: u.config.transport,
        mode: u.config.mode,
        required: u.config.required,
        state: u.state,
        inFlight: calls.inFlight,
        queued: calls.queued,
      };
      if (calls.breaker) h.breaker = calls.breaker;
      if (u.info) h.protocolVersion = u.info.protocolVersion;
      if (u.config.mode === 'per-session') {
        let n = 0;
        for (const m of this.perSession.values()) if (m.has(u.name)) n++;
        h.sessions = n;
      }
      return h;
    });
  }

  async closeAll(): Promise<void> {
    const sessions = [...this.perSession.keys()];
    await Promise.all(sessions.map((s) => this.releaseSession(s)));
    await Promise.all([...this.shared.values()].map((u) => u.close()));
  }
}

/**
 * What a shared upstream is told its client can do, at most: everything the gateway can relay to *some* client.
 * Whether the client a given request belongs to can do it is checked per request when it is relayed.
 */
const RELAYABLE_CAPABILITIES: JsonObject = Object.freeze({
  sampling: {},
  elicitation: { form: {}, url: {} },
  roots: {},
});

/** Exported here too for the tests that name it by this module. */
export { commonCapabilities };
