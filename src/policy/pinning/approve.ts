/**
 * The logic behind `gatehouse tools approve [--upstream NAME] [--tool NAME]`: compare what the upstreams list
 * now with `tools.lock`, describe every difference for a reviewer, and compute the lock that approving them
 * would write. Pure: the CLI starts the upstreams, lists them, prints `plan.text`, asks (or is forced), and
 * writes `plan.lock` with `writeToolsLock`.
 *
 * Selection: with no options, every listed upstream; `--upstream` narrows to one upstream; `--tool` to the
 * tools of that name (in the selected upstream, or in any listed upstream). Within the selection:
 * - a `new` or `changed` tool is pinned to its current definition (hash, time, approver, excerpt, definition);
 * - a `removed` tool (pinned, no longer listed) loses its pin;
 * - an `approved` tool keeps its pin untouched (same time and approver), so the lock diff shows only changes.
 * Upstreams not in `listings` (down, or not configured any more) keep their pins: approve never drops what
 * it could not see.
 */
import type { JsonObject } from '../../lib/json-rpc.js';
import { scanToolDefinition, type DescriptionFinding, type ScanOptions } from './description-scan.js';
import { diffLines, renderDiff } from './line-diff.js';
import { descriptionExcerpt, freezeLock, type ToolPin, type ToolsLock } from './lock-file.js';
import type { PinListing } from './pin-state.js';
import { canonicalJson, canonicalPretty, pinnedDefinition, toolHash } from './tool-hash.js';
import { showInvisible } from './visible-text.js';

export interface ApprovalSelection {
  readonly upstream?: string;
  readonly tool?: string;
}

export interface ApprovalInput {
  /** The upstreams that answered, with their tools as they list them (original names). */
  readonly listings: readonly PinListing[];
  readonly lock: ToolsLock;
  readonly selection?: ApprovalSelection;
  /** Milliseconds since the epoch; written as `approvedAt`. */
  readonly now: number;
  readonly approvedBy?: string;
  readonly scan?: ScanOptions;
}

export interface ToolChange {
  readonly upstream: string;
  readonly tool: string;
  readonly status: 'new' | 'changed' | 'removed';
  readonly oldHash?: string;
  readonly newHash?: string;
  /** The human-readable review text of this change (several lines, no trailing newline). */
  readonly diff: string;
  /** Scanner findings on the definition being approved (none for `removed`). */
  readonly findings: readonly DescriptionFinding[];
}

export interface ApprovalPlan {
  /** Selected tools that differ from the lock, sorted by upstream, then tool. */
  readonly changes: readonly ToolChange[];
  /** Selected tools whose pin already matches. */
  readonly unchanged: number;
  /** The lock with exactly `changes` approved. Equal to the input lock when there are none. */
  readonly lock: ToolsLock;
  /** Why the selection could not be (fully) honoured: print them; the CLI exits non-zero when non-empty. */
  readonly problems: readonly string[];
  /** Every change's diff and a summary line, ready to print. */
  readonly text: string;
}

export function planApproval(input: ApprovalInput): ApprovalPlan {
  const { listings, lock, selection = {}, now } = input;
  const problems: string[] = [];
  const approvedAt = new Date(now).toISOString();

  const selectedListings = listings.filter(
    (l) => selection.upstream === undefined || l.upstream === selection.upstream,
  );
  if (selection.upstream !== undefined && selectedListings.length === 0) {
    problems.push(
      `upstream "${showInvisible(selection.upstream)}" was not listed (not configured, not running, or it exposes no tools): nothing of it can be approved`,
    );
  }

  const changes: ToolChange[] = [];
  let unchanged = 0;
  let toolSeen = false;
  const next = new Map<string, Map<string, ToolPin>>([...lock.tools].map(([u, pins]) => [u, new Map(pins)]));

  for (const listing of selectedListings) {
    const { upstream } = listing;
    const listed = new Map<string, JsonObject[]>();
    for (const tool of listing.tools) {
      if (typeof tool.name !== 'string' || tool.name === '') continue;
      if (selection.tool !== undefined && tool.name !== selection.tool) continue;
      listed.set(tool.name, [...(listed.get(tool.name) ?? []), tool]);
    }
    const pins = next.get(upstream) ?? new Map<string, ToolPin>();
    for (const [name, copies] of listed) {
      toolSeen = true;
      const hashes = new Set(copies.map((c) => toolHash(c, name)));
      if (hashes.size > 1) {
        problems.push(
          `upstream "${showInvisible(upstream)}" lists tool "${showInvisible(name)}" ${copies.length} times with different definitions: not approved`,
        );
        continue;
      }
      const definition = copies[0]!;
      const hash = [...hashes][0]!;
      const pin = pins.get(name);
      if (pin?.hash === hash) {
        unchanged++;
        continue;
      }
      const findings = scanToolDefinition(upstream, name, definition, input.scan);
      const approved = pinnedDefinition(definition, name);
      delete approved.name;
      const newPin: { -readonly [K in keyof ToolPin]: ToolPin[K] } = { hash, approvedAt, definition: approved };
      if (input.approvedBy !== undefined) newPin.approvedBy = input.approvedBy;
      const excerpt = descriptionExcerpt(definition.description);
      if (excerpt !== undefined) newPin.description = excerpt;
      pins.set(name, newPin);
      const status = pin === undefined ? 'new' : 'changed';
      changes.push(
        freezeChange({
          upstream,
          tool: name,
          status,
          ...(pin ? { oldHash: pin.hash } : {}),
          newHash: hash,
          diff: renderChange(upstream, name, status, pin, approved, hash, findings),
          findings,
        }),
      );
    }
    for (const [name, pin] of [...pins]) {
      if (listed.has(name) || (selection.tool !== undefined && name !== selection.tool)) continue;
      toolSeen = true;
      pins.delete(name);
      changes.push(
        freezeChange({
          upstream,
          tool: name,
          status: 'removed',
          oldHash: pin.hash,
          diff: renderRemoved(upstream, name, pin),
          findings: [],
        }),
      );
    }
    if (pins.size > 0) next.set(upstream, pins);
    else next.delete(upstream);
  }
  if (selection.tool !== undefined && !toolSeen && selectedListings.length > 0) {
    problems.push(
      `no tool "${showInvisible(selection.tool)}" is listed${selection.upstream === undefined ? '' : ` by upstream "${showInvisible(selection.upstream)}"`} or pinned for a listed upstream`,
    );
  }

  changes.sort((a, b) => cmp(a.upstream, b.upstream) || cmp(a.tool, b.tool));
  const newLock = changes.length === 0 ? lock : freezeLock({ version: lock.version, tools: next });
  return Object.freeze({
    changes: Object.freeze(changes),
    unchanged,
    lock: newLock,
    problems: Object.freeze(problems),
    text: renderPlan(changes, unchanged, problems),
  });
}

// ─── Rendering ────────────────────────────────────────────────────────────────────────────────────────────

const IND = '    ';

function renderChange(
  upstream: string,
  tool: string,
  status: 'new' | 'changed',
  pin: ToolPin | undefined,
  approved: JsonObject,
  hash: string,
  findings: readonly DescriptionFinding[],
): string {
  const out: string[] = [];
  out.push(`${status === 'new' ? '+ NEW' : '~ CHANGED'}  ${showInvisible(upstream)} / ${showInvisible(tool)}`);
  if (status === 'new') {
    out.push(`${IND}hash: ${hash}`);
    out.push(...fieldDiffs({}, approved, false));
  } else {
    out.push(`${IND}hash: ${pin!.hash} → ${hash}`);
    out.push(
      `${IND}approved ${pin!.approvedAt}${pin!.approvedBy === undefined ? '' : ` by ${showInvisible(pin!.approvedBy)}`}`,
    );
    if (pin!.definition !== undefined) out.push(...fieldDiffs(pin!.definition, approved));
    else {
      // A lock written without definitions: all that is known of the old version is the excerpt.
      out.push(
        `${IND}(the lock keeps no approved definition for this tool: the old version is known only by its hash and excerpt)`,
      );
      out.push(`${IND}description (old excerpt → new):`);
      out.push(`${IND}  - ${pin!.description === undefined ? '(none recorded)' : showInvisible(pin!.description)}`);
      const now = approved.description;
      for (const line of typeof now === 'string' ? now.split('\n') : ['(none)'])
        out.push(`${IND}  + ${showInvisible(line)}`);
      out.push(`${IND}definition now:`);
      for (const line of canonicalPretty(approved).split('\n'))
        out.push(`${IND}    ${showInvisible(line, { escapeBackslash: false })}`);
    }
  }
  out.push(...renderFindings(findings));
  return out.join('\n');
}

/**
 * One section per top-level field that differs: string fields as text lines (backslashes doubled, invisible
 * characters shown), everything else as canonical pretty JSON (already escaped; invisible characters shown).
 */
function fieldDiffs(before: JsonObject, after: JsonObject, labelled = true): string[] {
  const out: string[] = [];
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  for (const key of keys) {
    const a = Object.hasOwn(before, key) ? before[key] : undefined;
    const b = Object.hasOwn(after, key) ? after[key] : undefined;
    if (a !== undefined && b !== undefined && canonicalJson(a) === canonicalJson(b)) continue;
    const label = !labelled ? '' : a === undefined ? ' (added)' : b === undefined ? ' (removed)' : '';
    out.push(`${IND}${showInvisible(key)}:${label}`);
    const lines = (v: unknown): string[] => {
      if (v === undefined) return [];
      if (typeof v === 'string') return v.split('\n').map((l) => showInvisible(l));
      return canonicalPretty(v)
        .split('\n')
        .map((l) => showInvisible(l, { escapeBackslash: false }));
    };
    const rendered = renderDiff(diffLines(lines(a), lines(b)));
    for (const line of rendered) out.push(`${IND}  ${line}`);
  }
  return out;
}

function renderRemoved(upstream: string, tool: string, pin: ToolPin): string {
  const out = [
    `- REMOVED  ${showInvisible(upstream)} / ${showInvisible(tool)}  (no longer listed; its pin is dropped)`,
  ];
  out.push(
    `${IND}hash: ${pin.hash}, approved ${pin.approvedAt}${pin.approvedBy === undefined ? '' : ` by ${showInvisible(pin.approvedBy)}`}`,
  );
  if (pin.description !== undefined) out.push(`${IND}description: ${showInvisible(pin.description)}`);
  return out.join('\n');
}

function renderFindings(findings: readonly DescriptionFinding[]): string[] {
  if (findings.length === 0) return [];
  const out = [
    `${IND}WARNING: ${findings.length} finding${findings.length === 1 ? '' : 's'} of the description scanner (review before approving):`,
  ];
  for (const f of findings) {
    out.push(
      `${IND}  ! ${f.kind} at ${f.path === '' ? '/' : f.path}: ${f.detail}${f.count > 1 ? ` (${f.count}×)` : ''}`,
    );
    out.push(`${IND}      ${f.excerpt}`);
  }
  return out;
}

function renderPlan(changes: readonly ToolChange[], unchanged: number, problems: readonly string[]): string {
  const count = (s: ToolChange['status']): number => changes.filter((c) => c.status === s).length;
  const parts = changes.map((c) => c.diff);
  const flagged = changes.filter((c) => c.findings.length > 0).length;
  const summary =
    changes.length === 0
      ? `Nothing to approve (${unchanged} tool${unchanged === 1 ? '' : 's'} already approved).`
      : `${changes.length} change${changes.length === 1 ? '' : 's'}: ${count('new')} new, ${count('changed')} changed, ${count('removed')} removed; ${unchanged} unchanged.` +
        (flagged > 0 ? ` ${flagged} with scanner warnings.` : '');
  return [...parts, ...problems.map((p) => `problem: ${p}`), summary].join('\n\n');
}

function freezeChange(c: ToolChange): ToolChange {
  return Object.freeze({ ...c, findings: Object.freeze([...c.findings]) });
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
