/**
 * The gateway's own resource subscriptions at its shared upstreams (MCP server/resources §Subscriptions), counted by
 * who needs them: 2025 sessions (`resources/subscribe`) and 2026-07-28 `subscriptions/listen` streams. A shared
 * upstream sees one gateway connection, so it holds one subscription per URI however many clients asked; it is sent
 * when the first holder comes and withdrawn (`resources/unsubscribe`) when the last one goes — never while another
 * client still relies on it. A per-session upstream is not counted here: its subscriptions live and end with its
 * session's own instance.
 *
 * A 2026-07-28 upstream translates the gateway's `resources/subscribe` into its own listen filter (the router's
 * concern), so this is the one interface for every upstream generation.
 */
import type { Logger } from 'pino';
import type { GatehouseConfig } from '../config/types.js';
import { toGatewayError } from '../errors/gateway-error.js';
import type { Router, Target } from '../router/router.js';

interface Held {
  readonly target: Target;
  readonly holders: Set<string>;
  /** Whether the upstream accepted the subscription (settles once; true at once for one a session's call made). */
  readonly ready: Promise<boolean>;
}

export class UpstreamSubscriptions {
  private readonly held = new Map<string, Held>();
  /**
   * The last subscribe or unsubscribe sent for a key: the next one waits for it, so the upstream sees them in the
   * order the gateway decided them (a listen that comes as the last one goes must not be undone by a late unsubscribe).
   */
  private readonly order = new Map<string, Promise<unknown>>();
  private readonly shared: ReadonlySet<string>;
  /** Shutting down: the upstream connections close next, and their subscriptions with them — nothing is sent. */
  private stopped = false;

  constructor(
    config: GatehouseConfig,
    private readonly router: Router,
    private readonly logger: Logger,
  ) {
    this.shared = new Set(config.upstreams.filter((u) => u.mode === 'shared').map((u) => u.name));
  }

  /** Only a shared upstream's subscriptions are the gateway's to count (and to offer a request without a session). */
  isShared(upstream: string): boolean {
    return this.shared.has(upstream);
  }

  /** The gateway is draining: let go of what is released without telling upstreams that are about to close. */
  stop(): void {
    this.stopped = true;
  }

  /** How many URIs the gateway holds at its upstreams now (tests and diagnostics). */
  get size(): number {
    return this.held.size;
  }

  /** Whether `holder` is not the only one holding this URI at this upstream. */
  othersHold(upstream: string, uri: string, holder: string): boolean {
    const h = this.held.get(key(upstream, uri));
    return h !== undefined && [...h.holders].some((x) => x !== holder);
  }

  /**
   * `holder` needs updates for the target's URI: subscribed at the upstream if nobody held it yet. False when the
   * upstream refused or failed (the holder then holds nothing).
   */
  async acquire(target: Target, holder: string): Promise<boolean> {
    if (!this.isShared(target.upstream)) return false;
    const k = key(target.upstream, target.original);
    let h = this.held.get(k);
    if (h === undefined) {
      const ready = this.send(k, target, 'resources/subscribe').then((ok) => {
        if (!ok && this.held.get(k) === h) this.held.delete(k);
        return ok;
      });
      h = { target, holders: new Set(), ready };
      this.held.set(k, h);
    }
    h.holders.add(holder);
    const ok = await h.ready;
    if (!ok) h.holders.delete(holder);
    return ok;
  }

  /** A session's own `resources/subscribe` reached the upstream through its call: count it, send nothing. */
  hold(target: Target, holder: string): void {
    if (!this.isShared(target.upstream)) return;
    const k = key(target.upstream, target.original);
    const h = this.held.get(k);
    if (h !== undefined) h.holders.add(holder);
    else this.held.set(k, { target, holders: new Set([holder]), ready: Promise.resolve(true) });
  }

  /** A session's own `resources/unsubscribe` reached the upstream through its call: forget it, send nothing. */
  forget(upstream: string, uri: string, holder: string): void {
    const k = key(upstream, uri);
    const h = this.held.get(k);
    if (h === undefined || !h.holders.delete(holder) || h.holders.size > 0) return;
    this.held.delete(k);
  }

  /** `holder` no longer needs the URI: withdrawn at the upstream when it was the last one. */
  release(upstream: string, uri: string, holder: string): void {
    const k = key(upstream, uri);
    const h = this.held.get(k);
    if (h === undefined || !h.holders.delete(holder) || h.holders.size > 0) return;
    this.held.delete(k);
    if (this.stopped) return;
    // Queued now (not when `ready` settles), so a subscribe for a holder that comes next goes after it.
    void this.send(k, h.target, 'resources/unsubscribe', h.ready);
  }

  /** Everything `holder` held (a session closed): each URI withdrawn where it was the last holder. */
  releaseAll(holder: string): void {
    for (const h of [...this.held.values()])
      if (h.holders.has(holder)) this.release(h.target.upstream, h.target.original, holder);
  }

  /** Sends `method` after whatever was sent for this key before; only if `onlyIf` (when given) comes true. */
  private send(
    k: string,
    target: Target,
    method: 'resources/subscribe' | 'resources/unsubscribe',
    onlyIf?: Promise<boolean>,
  ): Promise<boolean> {
    const before = this.order.get(k) ?? Promise.resolve();
    const sent = Promise.all([before, onlyIf]).then(([, ok]) =>
      ok === false
        ? false
        : this.router.forward(target, method, { uri: target.original }, {}).then(
            () => {
              this.logger.debug({ upstream: target.upstream, uri: target.original, method }, 'upstream subscription');
              return true;
            },
            (err: unknown) => {
              const e = toGatewayError(err);
              this.logger.warn(
                { upstream: target.upstream, uri: target.original, method, err: e.detail ?? e.code },
                'upstream subscription change failed',
              );
              return false;
            },
          ),
    );
    this.order.set(k, sent);
    void sent.then(() => {
      if (this.order.get(k) === sent) this.order.delete(k);
    });
    return sent;
  }
}

/** The holder name of a 2025 session (its internal key, never the session id). */
export function sessionHolder(sessionKey: string): string {
  return `session:${sessionKey}`;
}

function key(upstream: string, uri: string): string {
  return `${upstream}\n${uri}`;
}
