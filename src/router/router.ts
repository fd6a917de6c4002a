import type { Logger } from 'pino';
import type { AuditSink } from '../audit/audit-sink.js';
import type { GatehouseConfig } from '../config/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import { isJsonObject, type JsonObject } from '../lib/json-rpc.js';
import { annotationsOf } from '../lib/param-headers.js';
import {
  EMPTY_PIN_STATE,
  evaluatePins,
  isQuarantined,
  type PinListing,
  type PinMode,
  type PinState,
} from '../policy/pinning/pin-state.js';
import { scanToolDefinition } from '../policy/pinning/description-scan.js';
import type { ToolsLock } from '../policy/pinning/lock-file.js';
import { commonCapabilities } from '../upstream/capabilities.js';
import type { ListKind, ManagedUpstream } from '../upstream/managed-upstream.js';
import type { CallOptions, CallOrigin } from '../upstream/rpc-peer.js';
import type { UpstreamSet } from '../upstream/upstream-set.js';
import { Catalogue, type UpstreamListing } from './catalogue.js';
import { OutputValidators, type OutputCheck } from './output-schemas.js';
import { errorDetail, nameTool, unavailable } from './target-errors.js';

export type ChangeKind = 'tools' | 'resources' | 'prompts';
/** Re-exported so the front door names the origin of a call without reaching past the router. */
export type { CallOrigin };
export { unknownPrompt, unknownResource, unknownTool } from './target-errors.js';

/** What a forwarded call carries besides its params (docs/architecture.md §3). */
export interface ForwardContext extends Omit<CallOptions, 'timeoutMs' | 'maxTotalTimeoutMs'> {
  /**
   * The client session the call belongs to and its declared capabilities: a per-session upstream is started for it.
   * Absent for a request without a session, which only shared upstreams can serve.
   */
  session?: { readonly key: string; readonly clientCapabilities: JsonObject };
  /** A policy rule's `limits.timeoutMs`: caps both the upstream's timeoutMs and its maxTotalTimeoutMs for this call. */
  deadlineMs?: number;
  /**
   * Here the downstream request's own client capabilities (a 2026-07-28 request's `_meta`, or the session's); `forward`
   * narrows them to what the gateway may declare to the target upstream before they reach CallOptions.
   */
  clientCapabilities?: JsonObject;
}

export type TargetKind = 'tool' | 'prompt' | 'resource' | 'template';

/**
 * A request's target, resolved once (docs/architecture.md §1): what the policy decides on and what `forward` sends
 * to, so that nothing looks the name up a second time after the awaited steps between them.
 */
export interface Target {
  readonly kind: TargetKind;
  /** As the client named it: the exposed tool or prompt name, the resource URI, the template's URI template. */
  readonly name: string;
  readonly upstream: string;
  /** As the upstream knows it: its own tool or prompt name; the URI (or URI template) itself for resources. */
  readonly original: string;
  /** Pinning (docs/architecture.md §4, §8): a quarantined tool is hidden and refused like one the policy hides. */
  readonly quarantined: boolean;
  /** The definition as the client sees it (a tool's, a prompt's, a listed resource's or a template's), if listed. */
  readonly definition: JsonObject | undefined;
  /** A tool that declares an `outputSchema`: its compiled check (mcp/steps/output.ts). */
  readonly output?: OutputCheck;
}

/** Tool pinning in the router (docs/architecture.md §4, §8): the lock to compare listings with, and where events go. */
export interface RouterPinning {
  lock: ToolsLock;
  audit: AuditSink;
}

const EMPTY_LISTING = (upstream: string): UpstreamListing => ({
  upstream,
  tools: [],
  resources: [],
  resourceTemplates: [],
  prompts: [],
});

/**
 * The merged catalogue and the way from an exposed name (or a resource URI) to the upstream that serves it.
 * Listings are fetched when an upstream becomes ready and again when it says its lists changed; each refresh
 * builds a new immutable `Catalogue` and tells the listeners what kinds changed.
 */
export class Router {
  private catalogueValue = Catalogue.empty();
  private readonly listings = new Map<string, UpstreamListing>();
  private readonly listeners = new Set<(kinds: ReadonlySet<ChangeKind>) => void>();
  private readonly refreshing = new Map<string, Promise<void>>();
  private readonly queued = new Set<string>();
  private revision = 0;
  /** Upstreams whose tools were listed at least once: only those are compared with the lock. */
  private readonly listedOnce = new Set<string>();
  private pinState: PinState = EMPTY_PIN_STATE;
  private readonly pinModes: Readonly<Record<string, PinMode>>;
  /** Output schemas compiled across catalogue builds (a refresh compiles only what changed). */
  private readonly outputs = new OutputValidators();

  constructor(
    private readonly config: GatehouseConfig,
    private readonly upstreams: UpstreamSet,
    private readonly logger: Logger,
    private readonly pinning?: RouterPinning,
  ) {
    for (const u of config.upstreams) this.listings.set(u.name, EMPTY_LISTING(u.name));
    this.pinModes = Object.fromEntries(config.upstreams.map((u) => [u.name, u.pinning ?? config.pinning.mode]));
  }

  /** Whether pinning hides this tool (upstream, name as the upstream lists it): `decide` gets it as `quarantined`. */
  isQuarantined(upstream: string, original: string): boolean {
    return isQuarantined(this.pinState, upstream, original);
  }

  /** The tools of every upstream listed at least once, as it lists them (what pinning and `tools approve` compare). */
  toolListings(): PinListing[] {
    return this.config.upstreams
      .filter((u) => this.listedOnce.has(u.name))
      .map((u) => ({ upstream: u.name, tools: (this.listings.get(u.name) ?? EMPTY_LISTING(u.name)).tools }));
  }

  /** The pin status of every evaluated tool, and what is quarantined. */
  get pins(): PinState {
    return this.pinState;
  }

  /** A new lock (re-read after `gatehouse tools approve`): compare again; sessions hear a list change if quarantine changed. */
  replaceLock(lock: ToolsLock): void {
    if (!this.pinning) return;
    this.pinning.lock = lock;
    this.rebuild(new Set());
  }

  get catalogue(): Catalogue {
    return this.catalogueValue;
  }

  onChange(listener: (kinds: ReadonlySet<ChangeKind>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-list one upstream. Concurrent requests for the same upstream collapse into one follow-up. */
  refresh(name: string): Promise<void> {
    const running = this.refreshing.get(name);
    if (running) {
      this.queued.add(name);
      return running;
    }
    const p = this.doRefresh(name).finally(() => {
      this.refreshing.delete(name);
      if (this.queued.delete(name)) void this.refresh(name);
    });
    this.refreshing.set(name, p);
    return p;
  }

  private async doRefresh(name: string): Promise<void> {
    const upstream = this.upstreams.get(name);
    if (!upstream || upstream.state !== 'ready') return;
    const caps = upstream.info?.capabilities ?? {};
    const expose = upstream.config.expose;
    const list = async (kind: ListKind, enabled: boolean): Promise<JsonObject[]> => {
      if (!enabled) return [];
      try {
        return await upstream.listAll(kind);
      } catch (err) {
        this.logger.warn({ upstream: name, kind, err: errorDetail(err) }, 'listing failed; keeping the previous list');
        const prior = this.listings.get(name);
        return prior ? prior[kind] : [];
      }
    };
    const listing: UpstreamListing = {
      upstream: name,
      tools: await list('tools', expose.tools && caps.tools !== undefined),
      resources: await list('resources', expose.resources && caps.resources !== undefined),
      resourceTemplates: await list('resourceTemplates', expose.resources && caps.resources !== undefined),
      prompts: await list('prompts', expose.prompts && caps.prompts !== undefined),
    };
    const before = this.listings.get(name);
    this.listings.set(name, listing);
    this.listedOnce.add(name);
    this.rebuild(changedKinds(before, listing));
  }

  /** Build the catalogue from all current listings. Throws nothing: runtime collisions are logged. */
  private rebuild(kinds: Set<ChangeKind>): void {
    const ordered = this.config.upstreams.map((u) => this.listings.get(u.name) ?? EMPTY_LISTING(u.name));
    const next = Catalogue.build(
      ordered,
      this.config.catalogue,
      this.config.upstreams.length,
      ++this.revision,
      this.outputs,
    );
    const known = new Set(this.catalogueValue.issues.map((i) => i.message));
    for (const issue of next.issues)
      if (!known.has(issue.message)) this.logger.warn({ issue: issue.kind }, issue.message);
    this.catalogueValue = next;
    if (this.evaluatePins()) kinds.add('tools');
    if (kinds.size > 0) for (const l of this.listeners) l(kinds);
  }

  /**
   * Compares the listed tools with the lock, audits every transition (with the approved and the listed hash),
   * scans new and changed definitions for instruction-like or invisible text. True when the quarantined set changed.
   */
  private evaluatePins(): boolean {
    if (!this.pinning) return false;
    const listings = this.toolListings();
    const previous = this.pinState;
    const state = evaluatePins(listings, this.pinning.lock, this.pinModes, {
      defaultMode: this.config.pinning.mode,
      previous,
    });
    this.pinState = state;
    const { audit } = this.pinning;
    for (const e of state.events) {
      const event = {
        type: `tool.pin.${e.kind}` as const,
        upstream: e.upstream,
        tool: e.tool,
        ...(e.oldHash !== undefined ? { oldHash: e.oldHash } : {}),
        ...(e.newHash !== undefined ? { newHash: e.newHash } : {}),
      };
      const detail = `${e.status ?? 'released'}: ${e.kind === 'quarantined' ? 'hidden and refused until approved' : e.kind === 'warn' ? 'not approved (pinning warn: still callable)' : e.kind === 'unpinned' ? 'pinned but no longer listed' : 'no longer quarantined'}`;
      audit.record({
        ...event,
        outcome: e.kind === 'released' ? 'ok' : e.kind === 'quarantined' ? 'denied' : 'error',
        detail,
      });
      const fields = {
        upstream: e.upstream,
        tool: e.tool,
        pin: e.kind,
        status: e.status,
        oldHash: e.oldHash,
        newHash: e.newHash,
      };
      if (e.kind === 'released') this.logger.info(fields, 'tool pin: released');
      else this.logger.warn(fields, `tool pin: ${e.kind}`);
      if (e.kind !== 'quarantined' && e.kind !== 'warn') continue;
      const definition = this.listings.get(e.upstream)?.tools.find((t) => t.name === e.tool);
      if (definition === undefined) continue;
      for (const f of scanToolDefinition(e.upstream, e.tool, definition)) {
        audit.record({
          type: 'tool.scan',
          upstream: e.upstream,
          tool: e.tool,
          outcome: 'error',
          detail: `${f.kind} at ${f.path || '/'}: ${f.detail} (${f.excerpt})`,
        });
        this.logger.warn(
          { upstream: e.upstream, tool: e.tool, finding: f.kind, path: f.path, excerpt: f.excerpt },
          'tool definition: suspicious text',
        );
      }
    }
    return !sameSet(previous.quarantined, state.quarantined);
  }

  /** Start-up: list every ready upstream once, then refuse to start on a name collision. */
  async initialLoad(): Promise<void> {
    // An upstream that became ready during the start is being listed already (the ready hook): join that listing
    // rather than queue a second one, which would still be in flight after the start and list it twice.
    await Promise.all(this.upstreams.names.map((n) => this.refreshing.get(n) ?? this.refresh(n)));
    this.catalogueValue.assertNoCollisions(this.config.file);
  }

  /** Server capabilities to declare to clients: only what some upstream can really serve (lifecycle §Capability Negotiation). */
  capabilities(): JsonObject {
    let resources = false;
    let prompts = false;
    let subscribe = false;
    let completions = false;
    for (const name of this.upstreams.names) {
      const u = this.upstreams.get(name)!;
      const caps = u.info?.capabilities ?? {};
      if (u.config.expose.resources && isJsonObject(caps.resources)) {
        resources = true;
        if (caps.resources.subscribe === true) subscribe = true;
      }
      if (u.config.expose.prompts && caps.prompts !== undefined) prompts = true;
      if (caps.completions !== undefined) completions = true;
    }
    // Declared even before any upstream is ready, so list_changed can announce tools that appear later.
    const out: JsonObject = { tools: { listChanged: true }, logging: {} };
    if (resources) out.resources = { listChanged: true, subscribe };
    if (prompts) out.prompts = { listChanged: true };
    if (completions) out.completions = {};
    return out;
  }

  /**
   * The target a request names, or undefined when the catalogue has none: a tool or prompt by its exposed name, a
   * resource by its URI (exact, then templates), a template by its URI template text (completion).
   */
  resolve(kind: TargetKind, name: string): Target | undefined {
    const c = this.catalogueValue;
    switch (kind) {
      case 'tool': {
        const e = c.tools.get(name);
        if (e === undefined) return undefined;
        const quarantined = isQuarantined(this.pinState, e.upstream, e.original);
        const target = {
          kind,
          name,
          upstream: e.upstream,
          original: e.original,
          quarantined,
          definition: e.definition,
        };
        return e.output === undefined ? target : { ...target, output: e.output };
      }
      case 'prompt': {
        const e = c.prompts.get(name);
        return (
          e && { kind, name, upstream: e.upstream, original: e.original, quarantined: false, definition: e.definition }
        );
      }
      case 'resource': {
        const upstream = c.resolveResource(name);
        if (upstream === undefined) return undefined;
        return {
          kind,
          name,
          upstream,
          original: name,
          quarantined: false,
          definition: c.resources.get(name)?.definition,
        };
      }
      case 'template': {
        const t = c.templates.find((x) => x.definition.uriTemplate === name);
        return t && { kind, name, upstream: t.upstream, original: name, quarantined: false, definition: t.definition };
      }
    }
  }

  /**
   * Sends `method` to the target's upstream with the upstream's own name restored (`params.name`, or a completion's
   * `ref.name`), under its timeouts capped by the context's deadline. A tool's failures name the exposed tool,
   * never the upstream's words.
   */
  forward(target: Target, method: string, params: JsonObject, ctx: ForwardContext): Promise<JsonObject> {
    const out = upstreamParams(target, method, params);
    const tool = target.kind === 'tool' ? target.name : undefined;
    const send = (u: ManagedUpstream): Promise<JsonObject> => {
      const o = this.options(u, ctx);
      // A 2026-07-28 upstream over HTTP gets the Mcp-Param-* headers of its own definition of the tool (the catalogue's
      // definition differs from it in the name only), mirrored from the arguments as forwarded.
      if (tool !== undefined && method === 'tools/call' && u.info?.era === 'modern') {
        const annotations = annotationsOf(target.definition);
        if (annotations.length > 0) o.paramHeaders = annotations;
      }
      const sent = u.request(method, out, o);
      return tool === undefined ? sent : sent.catch((err: unknown) => Promise.reject(nameTool(tool, err)));
    };
    // A shared upstream (the usual case) is at hand: no promise to wait for before the call goes out.
    const shared = this.upstreams.sharedNow(target.upstream);
    if (shared !== undefined) return send(shared);
    return this.instance(target.upstream, ctx).then(send, (err: unknown) =>
      Promise.reject(tool === undefined ? err : unavailable(tool, err)),
    );
  }

  private async instance(upstream: string, ctx: ForwardContext): Promise<ManagedUpstream> {
    if (ctx.session === undefined) {
      throw new GatewayError('GW_UPSTREAM_UNAVAILABLE', {
        detail: `${upstream} runs one instance per client session; this request has no session`,
      });
    }
    return this.upstreams.forSession(upstream, ctx.session.key, ctx.session.clientCapabilities);
  }

  private options(u: ManagedUpstream, ctx: ForwardContext): CallOptions {
    // Built field by field: a rest/spread here showed up in the profile of every call.
    const o: CallOptions = { timeoutMs: u.config.timeoutMs, maxTotalTimeoutMs: u.config.maxTotalTimeoutMs };
    if (ctx.deadlineMs !== undefined) {
      o.timeoutMs = Math.min(o.timeoutMs, ctx.deadlineMs);
      o.maxTotalTimeoutMs = Math.min(o.maxTotalTimeoutMs, ctx.deadlineMs);
    }
    if (ctx.cancel) o.cancel = ctx.cancel;
    if (ctx.onProgress) o.onProgress = ctx.onProgress;
    if (ctx.origin) o.origin = ctx.origin;
    if (ctx.traceparent !== undefined) o.traceparent = ctx.traceparent;
    if (ctx.trace !== undefined) o.trace = ctx.trace;
    if (ctx.headers !== undefined) o.headers = ctx.headers;
    if (u.info?.era === 'modern') {
      // The stateless envelope (docs/protocol-2026-07-28.md §2.2): this request's capabilities ∩ the policy's relay
      // allowance for this upstream, and its log level (only then may the upstream log to it).
      const caps = ctx.clientCapabilities ?? ctx.session?.clientCapabilities;
      if (caps !== undefined) o.clientCapabilities = commonCapabilities(caps, u.declaredCapabilities);
      if (ctx.logLevel !== undefined) o.logLevel = ctx.logLevel;
    }
    return o;
  }

  /** Per-session upstreams already running for a session hear its notifications (e.g. roots/list_changed). */
  notifySessionUpstreams(sessionKey: string, method: string, params?: JsonObject): Promise<void> {
    for (const u of this.upstreams.runningForSession(sessionKey)) u.notify(method, params);
    return Promise.resolve();
  }

  /** …and its session-wide requests (logging/setLevel). A shared upstream is never told: it serves everyone. */
  async requestSessionUpstreams(sessionKey: string, method: string, params: JsonObject): Promise<void> {
    await Promise.all(
      this.upstreams
        .runningForSession(sessionKey)
        .map((u) =>
          u
            .request(method, params, { timeoutMs: u.config.timeoutMs, maxTotalTimeoutMs: u.config.maxTotalTimeoutMs })
            .catch(() => undefined),
        ),
    );
  }

  releaseSession(sessionKey: string): Promise<void> {
    return this.upstreams.releaseSession(sessionKey);
  }
}

function changedKinds(before: UpstreamListing | undefined, after: UpstreamListing): Set<ChangeKind> {
  const kinds = new Set<ChangeKind>();
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  if (!before || !same(before.tools, after.tools)) kinds.add('tools');
  if (!before || !same(before.resources, after.resources) || !same(before.resourceTemplates, after.resourceTemplates))
    kinds.add('resources');
  if (!before || !same(before.prompts, after.prompts)) kinds.add('prompts');
  return kinds;
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/** The params as the upstream must see them: its own name for a tool or prompt, in a completion's `ref` too. */
function upstreamParams(target: Target, method: string, params: JsonObject): JsonObject {
  if (target.kind !== 'tool' && target.kind !== 'prompt') return params;
  if (method === 'completion/complete') {
    const ref = params.ref;
    return isJsonObject(ref) ? { ...params, ref: { ...ref, name: target.original } } : params;
  }
  return { ...params, name: target.original };
}
