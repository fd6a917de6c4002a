/**
 * MCP 2026-07-28 `subscriptions/listen` (basic/patterns/subscriptions; docs/protocol-2026-07-28.md §2.10): the
 * long-lived response stream that replaces the 2025 GET stream and `resources/subscribe` for a client without a
 * session. One `Listener` per open request:
 *
 * - before anything is sent: the method's own decision, the filter read, the per-principal cap
 *   (`sessions.maxListensPerPrincipal`), then each requested URI decided by the same `decide` as `resources/read` and
 *   `resources/subscribe`, and subscribed at its upstream (upstream-subscriptions.ts). A URI refused for any reason
 *   is left out of the acknowledgement, never named as refused (docs/architecture.md §11 "a hidden target answers
 *   exactly like one that does not exist");
 * - first message: `notifications/subscriptions/acknowledged` with the subset honoured ("MUST send … as the first
 *   message"); then only the kinds asked for and honoured ("MUST NOT send notification types the client has not
 *   explicitly requested"), each tagged with the listen's JSON-RPC id (basic §_meta `subscriptionId`); never
 *   progress or log messages (they belong to a request's own stream);
 * - a list change is sent only when what this principal sees of that list changed (policy, pinning or upstream);
 * - end: the client closes the stream (cancellation, basic/patterns/cancellation), or the gateway ends it with the
 *   graceful result (`SUBS` "SHOULD send a successful subscriptions/listen response"): at shutdown and when the
 *   principal's token expires, so the client re-authenticates. The request's one audit record spans the stream.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { GatewayError } from '../errors/gateway-error.js';
import { principalKey, type Principal } from '../identity/principal.js';
import { Cancellation } from '../lib/cancellation.js';
import {
  isJsonObject,
  type JsonObject,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type RequestId,
} from '../lib/json-rpc.js';
import type { ChangeKind } from '../router/router.js';
import { listPrompts } from './methods/prompts.js';
import { listResources, listResourceTemplates } from './methods/resources.js';
import { listTools } from './methods/tools.js';
import type { PipelineDeps } from './pipeline.js';
import { MODERN_PROTOCOL_VERSIONS } from './protocol-versions.js';
import type { RequestContext } from './request-context.js';
import { decide, hiddenMethod, shows } from './steps/decide.js';
import type { RequestStream } from './streams.js';
import type { UpstreamSubscriptions } from './upstream-subscriptions.js';

/** basic §_meta: every message on a listen stream carries the listen request's id under this key. */
export const META_SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId';

/** A comment line now and then, as on the 2025 GET stream (edge/http-streams.ts), so idle proxies keep it open. */
const KEEP_ALIVE_MS = 25_000;
/** setTimeout's ceiling: a token valid for longer than ~24 days is re-checked when the stream ends anyway. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** An URI is at most as long as `resources/read` accepts (methods/resources.ts). */
const MAX_URI = 8192;

const LIST_KINDS = [
  ['toolsListChanged', 'tools'],
  ['promptsListChanged', 'prompts'],
  ['resourcesListChanged', 'resources'],
] as const;

/** Why the gateway ends a listen with the graceful result. */
export type ListenEnd = 'shutdown' | 'token expired';

interface Filter {
  readonly kinds: ReadonlySet<ChangeKind>;
  readonly uris: readonly string[];
}

interface Listener {
  readonly id: RequestId;
  readonly principal: Principal;
  readonly kinds: ReadonlySet<ChangeKind>;
  /** Honoured URI → the upstream that serves it. */
  readonly uris: ReadonlyMap<string, string>;
  readonly stream: RequestStream;
  /** What this principal saw of each list kind when it was last told (a digest of the filtered list). */
  readonly views: Map<ChangeKind, string>;
  readonly end: (reason: ListenEnd | 'closed') => void;
}

export interface ListenHubOptions {
  readonly deps: PipelineDeps;
  readonly subscriptions: UpstreamSubscriptions;
  /** `sessions.maxListensPerPrincipal`. */
  readonly maxPerPrincipal: number;
  readonly logger: Logger;
  readonly keepAliveMs?: number;
}

export class ListenHub {
  private readonly open = new Set<Listener>();
  private readonly perPrincipal = new Map<string, number>();
  private seq = 0;
  /** Set by `endAll`: a listen still subscribing then ends right after its ack instead of holding the drain. */
  private ending: ListenEnd | undefined;

  constructor(private readonly opts: ListenHubOptions) {}

  /** Listen streams open now. */
  get count(): number {
    return this.open.size;
  }

  /**
   * The `subscriptions/listen` request, from its decision to its end: resolves with the graceful result when the
   * gateway ends it, throws GW_MCP_REQUEST_CANCELLED when the client closed it.
   */
  async serve(ctx: RequestContext): Promise<JsonObject> {
    const { deps } = this.opts;
    decide(deps, ctx, undefined, undefined, hiddenMethod(ctx.message.method));
    const filter = readFilter(ctx.params.notifications, deps.maxSubscriptions);
    const key = principalKey(ctx.principal);
    const held = this.perPrincipal.get(key) ?? 0;
    const max = this.opts.maxPerPrincipal;
    if (held >= max)
      throw new GatewayError('GW_MCP_LISTEN_LIMIT', {
        detail: `${held} listen streams open for this principal (sessions.maxListensPerPrincipal ${max})`,
      });
    // Counted before the first await: listens arriving together cannot all pass the check above.
    this.perPrincipal.set(key, held + 1);
    const holder = `listen:${++this.seq}`;
    const uris = new Map<string, string>();
    const timers: NodeJS.Timeout[] = [];
    let listener: Listener | undefined;
    try {
      const kinds = this.servedKinds(filter.kinds);
      const leftOut: string[] = [];
      await Promise.all(
        filter.uris.map(async (uri) => {
          const r = await this.subscribe(ctx, uri, holder);
          if (typeof r === 'string') leftOut.push(`${uri.slice(0, 200)} (${r})`);
          else uris.set(uri, r.upstream);
        }),
      );
      const honoured = filter.uris.filter((u) => uris.has(u));
      ctx.event.detail = clip(
        `filter: ${[...kinds].join(',') || 'no lists'}; ${honoured.length} of ${filter.uris.length} resources` +
          (leftOut.length > 0 ? `; left out: ${leftOut.join(', ')}` : ''),
      );
      if (ctx.cancel.aborted)
        throw new GatewayError('GW_MCP_REQUEST_CANCELLED', { detail: `${ctx.event.detail}; closed before the ack` });

      const id = ctx.message.id;
      const notifications: JsonObject = {};
      for (const [flag, kind] of LIST_KINDS) if (kinds.has(kind)) notifications[flag] = true;
      if (honoured.length > 0) notifications.resourceSubscriptions = honoured;
      // From here to `open.add` nothing awaits: no change can slip between the views taken and the ack.
      const views = new Map<ChangeKind, string>();
      for (const kind of kinds) views.set(kind, this.view(kind, ctx.principal));
      const ended = new Promise<ListenEnd | 'closed'>((resolve) => {
        listener = { id, principal: ctx.principal, kinds, uris, stream: ctx.stream, views, end: resolve };
      });
      const l = listener!;
      if (!this.send(l, 'notifications/subscriptions/acknowledged', { notifications })) l.end('closed');
      this.open.add(l);
      if (this.ending !== undefined) l.end(this.ending);
      const offAbort = ctx.cancel.onAbort(() => l.end('closed'));
      const keepAlive = setInterval(() => {
        if (ctx.stream.comment?.('keep-alive') === false && ctx.stream.closed) l.end('closed');
      }, this.opts.keepAliveMs ?? KEEP_ALIVE_MS);
      keepAlive.unref();
      timers.push(keepAlive);
      const expiresAt = ctx.principal.expiresAt;
      if (expiresAt !== undefined) {
        const wait = expiresAt - deps.now();
        if (wait <= 0) l.end('token expired');
        else if (wait <= MAX_TIMER_MS) timers.push(setTimeout(() => l.end('token expired'), wait).unref());
      }
      const reason = await ended;
      offAbort();
      ctx.event.detail = clip(`${ctx.event.detail}; ended: ${reason === 'closed' ? 'closed by the client' : reason}`);
      // The record's detail is the error's: the whole story, not only its end.
      if (reason === 'closed') throw new GatewayError('GW_MCP_REQUEST_CANCELLED', { detail: ctx.event.detail });
      return { _meta: { [META_SUBSCRIPTION_ID]: id } };
    } finally {
      for (const t of timers) clearInterval(t);
      if (listener !== undefined) this.open.delete(listener);
      for (const [uri, upstream] of uris) this.opts.subscriptions.release(upstream, uri, holder);
      const now = (this.perPrincipal.get(key) ?? 1) - 1;
      if (now > 0) this.perPrincipal.set(key, now);
      else this.perPrincipal.delete(key);
    }
  }

  /**
   * Lists changed (an upstream's list, a policy reload, a quarantine change): each listener that asked for the kind
   * hears it once, and only when what its principal sees of that list is not what it saw when last told.
   */
  announce(kinds: ReadonlySet<ChangeKind>): void {
    // One digest per (kind, principal) per announcement: listeners of the same principal share it.
    const digests = new Map<string, string>();
    for (const l of [...this.open]) {
      for (const kind of kinds) {
        if (!l.kinds.has(kind)) continue;
        const k = `${kind}\n${principalKey(l.principal)}`;
        let view = digests.get(k);
        if (view === undefined) digests.set(k, (view = this.view(kind, l.principal)));
        if (l.views.get(kind) === view) continue;
        l.views.set(kind, view);
        if (!this.send(l, `notifications/${kind}/list_changed`, {})) l.end('closed');
      }
    }
  }

  /**
   * An upstream says a resource changed: every listener that subscribed to it — or to a resource it is part of
   * (`SUBS`: the URI "might be a sub-resource of the one … subscribed to") — at that upstream hears it, if its
   * principal may read that URI now (the same `decide`: a policy reload since the ack, or a sub-resource the policy
   * hides, is not sent).
   */
  resourceUpdated(upstream: string, uri: string): void {
    if (!this.opts.subscriptions.isShared(upstream)) return;
    const { deps } = this.opts;
    const now = deps.now();
    for (const l of [...this.open]) {
      if (!subscribed(l, upstream, uri)) continue;
      if (!shows(deps.policy, l.principal, 'resources/subscribe', 'resource', uri, upstream, now)) continue;
      if (!this.send(l, 'notifications/resources/updated', { uri })) l.end('closed');
    }
  }

  /** Every listen ends with the graceful result (shutdown: before the drain waits for requests in flight). */
  endAll(reason: ListenEnd): void {
    this.ending = reason;
    for (const l of [...this.open]) l.end(reason);
  }

  /** The kinds asked for that the merged capabilities serve (`server/discover` declares the same). */
  private servedKinds(asked: ReadonlySet<ChangeKind>): Set<ChangeKind> {
    const caps = this.opts.deps.router.capabilities();
    const out = new Set<ChangeKind>();
    for (const kind of asked) if (isJsonObject(caps[kind])) out.add(kind);
    return out;
  }

  /**
   * One requested URI: its upstream when it is honoured (decided, and subscribed there), else why not — for the
   * audit record only. The decision is the one `resources/subscribe` gets, for this principal.
   */
  private async subscribe(ctx: RequestContext, uri: string, holder: string): Promise<string | { upstream: string }> {
    const { deps } = this.opts;
    const target = deps.router.resolve('resource', uri);
    if (target === undefined) return 'unknown';
    const d = deps.policy.decide({
      principal: ctx.principal,
      method: 'resources/subscribe',
      target: { kind: 'resource', name: uri, upstream: target.upstream },
      now: deps.now(),
    });
    if (d.effect !== 'allow') return `denied ${d.reason}${d.ruleId !== undefined ? ` by rule ${d.ruleId}` : ''}`;
    // A per-session upstream has no instance for a request without a session.
    if (!this.opts.subscriptions.isShared(target.upstream)) return 'upstream runs per session';
    return (await this.opts.subscriptions.acquire(target, holder)) ? { upstream: target.upstream } : 'upstream refused';
  }

  /** A digest of what `principal` sees of a list kind now: the same filtered list its `*​/list` request would get. */
  private view(kind: ChangeKind, principal: Principal): string {
    const { deps } = this.opts;
    switch (kind) {
      case 'tools':
        return digest(listTools(viewContext(principal, 'tools/list'), deps));
      case 'prompts':
        return digest(listPrompts(viewContext(principal, 'prompts/list'), deps));
      case 'resources':
        return (
          digest(listResources(viewContext(principal, 'resources/list'), deps)) +
          digest(listResourceTemplates(viewContext(principal, 'resources/templates/list'), deps))
        );
    }
  }

  private send(l: Listener, method: string, params: JsonObject): boolean {
    if (l.stream.closed) return false;
    const message: JsonRpcNotification = {
      jsonrpc: '2.0',
      method,
      params: { ...params, _meta: { [META_SUBSCRIPTION_ID]: l.id } },
    };
    return l.stream.sendRelated(message);
  }
}

/**
 * `params.notifications` (`SCHEMA` SubscriptionFilter): three optional booleans and an optional array of URIs, at
 * most `sessions.maxSubscriptions` of them (like a session's subscriptions, each is held here and upstream).
 */
function readFilter(value: unknown, maxUris: number): Filter {
  const invalid = (detail: string): GatewayError => new GatewayError('GW_MCP_INVALID_PARAMS', { detail });
  if (value === undefined) return { kinds: new Set(), uris: [] };
  if (!isJsonObject(value)) throw invalid('subscriptions/listen notifications must be an object');
  const kinds = new Set<ChangeKind>();
  for (const [flag, kind] of LIST_KINDS) {
    const v = value[flag];
    if (v !== undefined && typeof v !== 'boolean') throw invalid(`notifications.${flag} must be a boolean`);
    if (v === true) kinds.add(kind);
  }
  const raw = value.resourceSubscriptions;
  if (raw === undefined) return { kinds, uris: [] };
  if (!Array.isArray(raw)) throw invalid('notifications.resourceSubscriptions must be an array');
  const uris = [...new Set(raw)];
  for (const u of uris)
    if (typeof u !== 'string' || u.length === 0 || u.length > MAX_URI)
      throw invalid('notifications.resourceSubscriptions must hold non-empty URI strings');
  if (uris.length > maxUris)
    throw new GatewayError('GW_MCP_SUBSCRIPTION_LIMIT', {
      detail: `listen asks for ${uris.length} resources (sessions.maxSubscriptions ${maxUris})`,
    });
  return { kinds, uris: uris as string[] };
}

function subscribed(l: Listener, upstream: string, uri: string): boolean {
  for (const [s, up] of l.uris) {
    if (up !== upstream) continue;
    if (uri === s || uri.startsWith(s.endsWith('/') ? s : `${s}/`)) return true;
  }
  return false;
}

/** What a list handler needs of a request to answer for `principal` (its policy step is recorded nowhere). */
function viewContext(principal: Principal, method: string): RequestContext {
  const message: JsonRpcRequest = { jsonrpc: '2.0', id: 0, method };
  return {
    principal,
    protocolVersion: MODERN_PROTOCOL_VERSIONS[0]!,
    clientCapabilities: {},
    session: undefined,
    message,
    params: {},
    stream: NO_STREAM,
    cancel: new Cancellation(),
    requestKey: '',
    event: { type: 'mcp.request' },
    span: undefined,
  };
}

const NO_STREAM: RequestStream = { sendRelated: () => false, finish: () => undefined, closed: true };

/** Cached lists are shared, frozen objects (list-cache.ts): each is hashed once however many listeners compare it. */
const digests = new WeakMap<object, string>();

function digest(list: JsonObject | Promise<JsonObject>): string {
  if (list instanceof Promise) throw new TypeError('list handlers answer synchronously');
  let d = digests.get(list);
  if (d === undefined) {
    d = createHash('sha256').update(JSON.stringify(list)).digest('base64url');
    if (Object.isFrozen(list)) digests.set(list, d);
  }
  return d;
}

function clip(text: string): string {
  return text.length > 2000 ? `${text.slice(0, 1997)}...` : text;
}
