/**
 * Which listed tools match their approved pin, and which must be quarantined (docs/architecture.md §4 "pinning", §8;
 * threat model #14). Pure and synchronous: listings and lock in, a frozen `PinState` out. The router calls
 * it after every refresh and hands the result to `decide`, which treats a quarantined tool as hidden on
 * `tools/list` and refuses it on `tools/call` exactly like an unknown tool.
 *
 * Per tool (upstream, name as the upstream lists it):
 * - `approved` — the lock pins it and the hash matches;
 * - `changed`  — the lock pins it and the hash differs: the rug pull;
 * - `new`      — the lock has no pin for it;
 * - `removed`  — the lock pins it but the upstream no longer lists it (nothing to hide; audited).
 *
 * Per upstream mode:
 * - `enforce` — `changed` and `new` tools are quarantined. A `new` tool is quarantined too (secure default):
 *   an upstream that adds a tool after approval changes what agents can do as much as one that rewrites a
 *   description, and an added tool can shadow another's name in prose (threat model #15). With no lock
 *   entries at all, everything is quarantined: approve first, or start in `warn`.
 * - `warn` — the same statuses and events, but nothing is quarantined.
 * - `off` — the upstream is not evaluated: no statuses, no events.
 * An upstream missing from `modes` is `enforce` unless `defaultMode` says otherwise (fail closed).
 *
 * Only upstreams present in `listings` are evaluated: pass the upstreams whose tools were actually listed.
 * An upstream that is down (never listed) must be left out, or all its pins would read `removed`.
 */
import type { JsonObject } from '../../lib/json-rpc.js';
import { findPin, type ToolsLock } from './lock-file.js';
import { toolHash } from './tool-hash.js';

export type PinMode = 'enforce' | 'warn' | 'off';
export type PinStatus = 'approved' | 'new' | 'changed' | 'removed';

/** What one upstream listed: its tools as it defines them (original names). `UpstreamListing` fits. */
export interface PinListing {
  readonly upstream: string;
  readonly tools: readonly JsonObject[];
}

export interface ToolPinStatus {
  readonly upstream: string;
  /** The tool's name as the upstream lists it. */
  readonly tool: string;
  readonly status: PinStatus;
  readonly mode: Exclude<PinMode, 'off'>;
  /** The listed definition's hash (absent when `removed`). */
  readonly hash?: string;
  /** The lock's hash (absent when `new`). */
  readonly pinnedHash?: string;
  readonly quarantined: boolean;
}

/**
 * - `quarantined`: an `enforce` upstream lists a `new` or `changed` tool; it is now hidden and refused.
 * - `warn`: the same under `warn`; recorded, still callable.
 * - `unpinned`: the lock pins a tool its upstream no longer lists (the pin is stale; nothing is hidden).
 * - `released`: a tool that was quarantined no longer is (approved again, or its upstream's mode changed).
 */
export type PinEventKind = 'quarantined' | 'warn' | 'unpinned' | 'released';

export interface PinEvent {
  readonly kind: PinEventKind;
  readonly upstream: string;
  readonly tool: string;
  /** The status that caused the event (absent for a release because the upstream is no longer evaluated). */
  readonly status?: PinStatus;
  /** The approved hash, when the lock has one. */
  readonly oldHash?: string;
  /** The listed hash, when the tool is listed. */
  readonly newHash?: string;
}

export interface PinState {
  /** One entry per evaluated tool, sorted by upstream, then tool (code unit order). */
  readonly statuses: readonly ToolPinStatus[];
  /** `pinKey(upstream, tool)` of every quarantined tool. */
  readonly quarantined: ReadonlySet<string>;
  /**
   * What to audit. Without `previous`: one event per tool that is not `approved`. With `previous`: only
   * transitions (a new quarantine, a different hash, a release), so a refresh of an unchanged listing
   * records nothing twice.
   */
  readonly events: readonly PinEvent[];
}

export interface EvaluatePinsOptions {
  /** Mode of an upstream that `modes` does not name. Default `enforce`. */
  readonly defaultMode?: PinMode;
  /** The state this one replaces; limits `events` to transitions. */
  readonly previous?: PinState;
}

/** An unambiguous key for (upstream, original tool name). */
export function pinKey(upstream: string, tool: string): string {
  return JSON.stringify([upstream, tool]);
}

export function isQuarantined(state: PinState, upstream: string, tool: string): boolean {
  return state.quarantined.has(pinKey(upstream, tool));
}

/** The exposed names of the quarantined tools, for a catalogue's entries (`ToolEntry` fits). */
export function quarantinedExposedNames(
  entries: Iterable<{ readonly exposed: string; readonly upstream: string; readonly original: string }>,
  state: PinState,
): Set<string> {
  const out = new Set<string>();
  for (const e of entries) if (isQuarantined(state, e.upstream, e.original)) out.add(e.exposed);
  return out;
}

export const EMPTY_PIN_STATE: PinState = Object.freeze({
  statuses: Object.freeze([]),
  quarantined: new Set<string>(),
  events: Object.freeze([]),
});

export function evaluatePins(
  listings: readonly PinListing[],
  lock: ToolsLock,
  modes: Readonly<Record<string, PinMode>>,
  opts: EvaluatePinsOptions = {},
): PinState {
  const defaultMode = opts.defaultMode ?? 'enforce';
  const statuses: ToolPinStatus[] = [];
  const switchedOff = new Set<string>();

  for (const listing of listings) {
    const mode = Object.hasOwn(modes, listing.upstream) ? modes[listing.upstream]! : defaultMode;
    if (mode === 'off') {
      switchedOff.add(listing.upstream);
      continue;
    }

    // Hash once per tool; a name listed twice is approved only if every copy matches.
    const hashes = new Map<string, string[]>();
    for (const tool of listing.tools) {
      if (typeof tool.name !== 'string' || tool.name === '') continue; // the catalogue hides these too
      const list = hashes.get(tool.name) ?? [];
      list.push(toolHash(tool, tool.name));
      hashes.set(tool.name, list);
    }
    for (const [tool, listed] of hashes) {
      const pin = findPin(lock, listing.upstream, tool);
      const differing = pin === undefined ? undefined : listed.find((h) => h !== pin.hash);
      const status: PinStatus = pin === undefined ? 'new' : differing === undefined ? 'approved' : 'changed';
      const hash = differing ?? listed[0]!;
      statuses.push(entry(listing.upstream, tool, status, mode, hash, pin?.hash));
    }
    for (const [tool, pin] of lock.tools.get(listing.upstream) ?? []) {
      if (!hashes.has(tool)) statuses.push(entry(listing.upstream, tool, 'removed', mode, undefined, pin.hash));
    }
  }

  statuses.sort((a, b) => compare(a.upstream, b.upstream) || compare(a.tool, b.tool));
  const quarantined = new Set(statuses.filter((s) => s.quarantined).map((s) => pinKey(s.upstream, s.tool)));
  const events =
    opts.previous === undefined ? initialEvents(statuses) : transitionEvents(statuses, opts.previous, switchedOff);
  return Object.freeze({ statuses: Object.freeze(statuses), quarantined, events: Object.freeze(events) });
}

function entry(
  upstream: string,
  tool: string,
  status: PinStatus,
  mode: Exclude<PinMode, 'off'>,
  hash: string | undefined,
  pinnedHash: string | undefined,
): ToolPinStatus {
  const quarantined = mode === 'enforce' && (status === 'new' || status === 'changed');
  const s: { -readonly [K in keyof ToolPinStatus]: ToolPinStatus[K] } = { upstream, tool, status, mode, quarantined };
  if (hash !== undefined) s.hash = hash;
  if (pinnedHash !== undefined) s.pinnedHash = pinnedHash;
  return Object.freeze(s);
}

function eventFor(s: ToolPinStatus): PinEvent | undefined {
  switch (s.status) {
    case 'approved':
      return undefined;
    case 'new':
    case 'changed':
      return event(s.quarantined ? 'quarantined' : 'warn', s);
    case 'removed':
      return event('unpinned', s);
  }
}

function event(kind: PinEventKind, s: ToolPinStatus, status: PinStatus | undefined = s.status): PinEvent {
  const e: { -readonly [K in keyof PinEvent]: PinEvent[K] } = { kind, upstream: s.upstream, tool: s.tool };
  if (status !== undefined) e.status = status;
  if (s.pinnedHash !== undefined) e.oldHash = s.pinnedHash;
  if (s.hash !== undefined) e.newHash = s.hash;
  return Object.freeze(e);
}

function initialEvents(statuses: readonly ToolPinStatus[]): PinEvent[] {
  return statuses.map(eventFor).filter((e): e is PinEvent => e !== undefined);
}

function transitionEvents(
  statuses: readonly ToolPinStatus[],
  previous: PinState,
  switchedOff: ReadonlySet<string>,
): PinEvent[] {
  const before = new Map(previous.statuses.map((s) => [pinKey(s.upstream, s.tool), s]));
  const events: PinEvent[] = [];
  const seen = new Set<string>();
  for (const s of statuses) {
    const key = pinKey(s.upstream, s.tool);
    seen.add(key);
    const prev = before.get(key);
    // Still listed and no longer hidden: approved again, or its upstream went from enforce to warn.
    if (prev?.quarantined === true && !s.quarantined && s.status !== 'removed') {
      events.push(event('released', s));
      if (s.status === 'approved') continue;
    }
    const unchanged =
      prev !== undefined &&
      prev.status === s.status &&
      prev.hash === s.hash &&
      prev.pinnedHash === s.pinnedHash &&
      prev.quarantined === s.quarantined;
    if (unchanged) continue;
    const e = eventFor(s);
    if (e) events.push(e);
  }
  // A quarantined tool of an upstream that is no longer evaluated (its mode is now `off`). A tool that
  // simply vanished from a listing is not "released": there is nothing left to call.
  for (const prev of previous.statuses) {
    const key = pinKey(prev.upstream, prev.tool);
    if (seen.has(key) || !prev.quarantined || !switchedOff.has(prev.upstream)) continue;
    const e: PinEvent = {
      kind: 'released',
      upstream: prev.upstream,
      tool: prev.tool,
      ...(prev.pinnedHash !== undefined ? { oldHash: prev.pinnedHash } : {}),
      ...(prev.hash !== undefined ? { newHash: prev.hash } : {}),
    };
    events.push(Object.freeze(e));
  }
  return events;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
