/**
 * `policies/tools.lock`: the approved tool definitions (docs/architecture.md §8). YAML, because people review it in
 * pull requests; written with a fixed order (upstreams, then tools, sorted by code unit; fields in a fixed order;
 * definitions with sorted keys) so that a diff shows only what an approval changed.
 *
 * ```yaml
 * version: 1
 * tools:
 *   <upstream>:                 # the upstream's name in gatehouse.yaml
 *     <tool>:                   # the tool's name as the upstream lists it (not the exposed name)
 *       hash: sha256:<hex>      # toolHash(): what is enforced
 *       approvedAt: <ISO 8601>
 *       approvedBy: <who>       # optional
 *       description: <text>     # optional: the first 120 characters, for the reader; never compared
 *       definition: {…}         # optional: the approved definition (without name and _meta), so a later
 *                               # change can be shown as a diff; when present it must hash to `hash`
 * ```
 *
 * Strings holding invisible or control characters are written double-quoted with those characters escaped
 * (`"\u200B"`, `"\U000E0041"`), so the file never hides text from its reviewer.
 *
 * Pure: text in, text out. Reading and writing the file is `lock-io.ts`.
 */
import {
  Document,
  LineCounter,
  Scalar,
  isAlias,
  isMap,
  isScalar,
  parseDocument,
  visit,
  type Node as YamlNode,
  type Pair,
} from 'yaml';
import { ConfigError, type ConfigProblem } from '../../errors/config-error.js';
import { isJsonObject, type JsonObject } from '../../lib/json-rpc.js';
import { TOOL_HASH_RE, toolHash, UNPINNED_FIELDS } from './tool-hash.js';
import { clipCodePoints, hasInvisible, showInvisible, shownSegment } from './visible-text.js';
import { deepFreeze } from '../../lib/deep-freeze.js';

export const TOOLS_LOCK_VERSION = 1;
/** Length of the `description` excerpt, in code points. */
export const DESCRIPTION_EXCERPT_LENGTH = 120;

export interface ToolPin {
  readonly hash: string;
  /** ISO 8601 date-time of the approval. */
  readonly approvedAt: string;
  readonly approvedBy?: string;
  /** The first `DESCRIPTION_EXCERPT_LENGTH` characters of the approved description; for people only. */
  readonly description?: string;
  /** The approved definition, as `pinnedDefinition()` makes it, minus `name` (the map key). */
  readonly definition?: JsonObject;
}

export interface ToolsLock {
  readonly version: typeof TOOLS_LOCK_VERSION;
  /** upstream → original tool name → pin. */
  readonly tools: ReadonlyMap<string, ReadonlyMap<string, ToolPin>>;
}

export const LOCK_HEADER = `# Gatehouse tool pins (docs/architecture.md §8; threat model #14, "rug pull").
#
# Each entry approves one tool definition of one upstream: a SHA-256 hash over the tool's name (as the
# upstream calls it), title, description, input and output schemas, annotations, icons and every other
# field except _meta. An upstream running with pinning "enforce" has a tool whose definition no longer
# matches (or that is not listed here at all) hidden from tools/list and refused on tools/call until it is
# approved again; "warn" only records it in the audit log.
#
# Do not edit by hand. Review the diff, then approve with:
#   gatehouse tools approve --config gatehouse.yaml [--upstream NAME] [--tool NAME]
# which starts the upstreams, shows what changed since the last approval, asks, and rewrites this file.
#
# An entry, under tools → <upstream name in gatehouse.yaml> → <tool name as that upstream lists it>:
#   hash: sha256:…          what is enforced
#   approvedAt: …           when, and approvedBy: who
#   description: …          the first 120 characters, for reviewers; never compared
#   definition: {…}         the approved definition (without name and _meta); must hash to "hash"
# Invisible and control characters are written as escapes ("\\u200B", "\\U000E0041") so none can hide here.

`;

export function emptyToolsLock(): ToolsLock {
  return Object.freeze({ version: TOOLS_LOCK_VERSION, tools: new Map() });
}

/** The pin of one tool, if any. */
export function findPin(lock: ToolsLock, upstream: string, tool: string): ToolPin | undefined {
  return lock.tools.get(upstream)?.get(tool);
}

/**
 * The approved definitions the lock stores, shaped like listings (name restored), e.g. for `gatehouse check`
 * to run the description scanner without starting any upstream. Pins without a definition are left out.
 */
export function lockListings(lock: ToolsLock): { upstream: string; tools: JsonObject[] }[] {
  return [...lock.tools].map(([upstream, pins]) => ({
    upstream,
    tools: [...pins]
      .filter(([, pin]) => pin.definition !== undefined)
      .map(([name, pin]) => ({ ...pin.definition, name })),
  }));
}

/** `text` clipped to the lock's description excerpt. */
export function descriptionExcerpt(description: unknown): string | undefined {
  return typeof description === 'string' && description !== ''
    ? clipCodePoints(description, DESCRIPTION_EXCERPT_LENGTH)
    : undefined;
}

// ─── Writing ──────────────────────────────────────────────────────────────────────────────────────────────

/** The whole file: header comment, then the lock in its stable order. Ends with a newline. */
export function serializeToolsLock(lock: ToolsLock): string {
  const tools = new Map<string, Map<string, Map<string, unknown>>>();
  for (const upstream of [...lock.tools.keys()].sort()) {
    const pins = lock.tools.get(upstream)!;
    const out = new Map<string, Map<string, unknown>>();
    for (const tool of [...pins.keys()].sort()) out.set(tool, pinEntry(pins.get(tool)!));
    tools.set(upstream, out);
  }
  const doc = new Document(
    new Map<string, unknown>([
      ['version', lock.version],
      ['tools', tools],
    ]),
  );
  // Strings with invisible characters: double-quoted, so that escaping them below is valid YAML.
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && hasInvisible(node.value)) node.type = Scalar.QUOTE_DOUBLE;
    },
  });
  const body = doc.toString({ lineWidth: 0, indent: 2, doubleQuotedAsJSON: true });
  return `${LOCK_HEADER}${body.replace(ESCAPED_IN_YAML, yamlEscape)}`;
}

function pinEntry(pin: ToolPin): Map<string, unknown> {
  const entry = new Map<string, unknown>([
    ['hash', pin.hash],
    ['approvedAt', pin.approvedAt],
  ]);
  if (pin.approvedBy !== undefined) entry.set('approvedBy', pin.approvedBy);
  if (pin.description !== undefined) entry.set('description', pin.description);
  // Canonical (sorted) key order: the same definition always writes the same lines.
  if (pin.definition !== undefined) entry.set('definition', sortedForYaml(pin.definition));
  return entry;
}

/** Objects as Maps with keys in code unit order (a plain object would list integer-like keys first). */
function sortedForYaml(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedForYaml);
  if (isJsonObject(value)) {
    return new Map(
      Object.keys(value)
        .filter((k) => value[k] !== undefined)
        .sort()
        .map((k) => [k, sortedForYaml(value[k])]),
    );
  }
  return value;
}

/**
 * Characters the yaml library writes raw even inside double quotes. They only occur in strings that were
 * forced to double quotes above (`hasInvisible` covers all of them), so replacing them is always inside one.
 */
const ESCAPED_IN_YAML = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}\u{E0100}-\u{E01EF}]/gu;

function yamlEscape(ch: string): string {
  // Line feed and tab: inside double quotes the library escapes them itself; elsewhere (a block scalar of a
  // string with no invisible characters) they are layout and stay as they are.
  if (ch === '\n' || ch === '\t') return ch;
  const cp = ch.codePointAt(0)!;
  const hex = cp.toString(16).toUpperCase();
  return cp > 0xffff ? `\\U${hex.padStart(8, '0')}` : `\\u${hex.padStart(4, '0')}`;
}

// ─── Reading ──────────────────────────────────────────────────────────────────────────────────────────────

/** Parses and checks lock text as if read from `file`. Throws one `ConfigError` listing every problem. */
export function parseToolsLock(text: string, file: string): ToolsLock {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter: lines,
    prettyErrors: false,
    uniqueKeys: true,
    merge: false,
    strict: true,
  });
  const problems: ConfigProblem[] = [];
  /** The line of `node`, or of the offset `fallback` when the node has no position (an absent value). */
  const lineAt = (node: YamlNode | null | undefined, fallback = 0): number =>
    lines.linePos(node?.range?.[0] ?? fallback).line;
  const problem = (at: number, path: string, message: string): void => {
    problems.push({ file, line: at, path, message });
  };

  for (const e of doc.errors) problem(lines.linePos(e.pos[0]).line, '', `invalid YAML: ${e.message.split('\n')[0]}`);
  if (problems.length > 0) throw new ConfigError(problems);
  visit(doc, {
    Alias(_key, node) {
      problem(lineAt(node), '', 'aliases (*name) are not allowed in tools.lock');
    },
  });
  if (problems.length > 0) throw new ConfigError(problems);

  const root = doc.contents;
  if (!isMap(root)) {
    problem(lineAt(root ?? undefined, 0), '', `expected a mapping with "version: ${TOOLS_LOCK_VERSION}" and "tools"`);
    throw new ConfigError(problems);
  }

  let version: unknown;
  let toolsNode: YamlNode | null | undefined;
  let sawTools = false;
  for (const pair of root.items) {
    const key = stringKey(pair);
    if (key === 'version') {
      version = isScalar(pair.value) ? pair.value.value : undefined;
      if (version !== TOOLS_LOCK_VERSION) {
        problem(
          lineAt(pair.value as YamlNode | null, lineOffset(pair)),
          '/version',
          `unsupported version ${describe(pair.value)} (this Gatehouse reads version ${TOOLS_LOCK_VERSION})`,
        );
      }
    } else if (key === 'tools') {
      sawTools = true;
      toolsNode = pair.value as YamlNode | null;
    } else {
      problem(
        lineAt(pair.key as YamlNode),
        key === undefined ? '' : pointer([key]),
        `unknown key ${key === undefined ? '(not a string)' : `"${showInvisible(key)}"`}; expected "version" and "tools"`,
      );
    }
  }
  if (version === undefined && !root.items.some((p) => stringKey(p) === 'version'))
    problem(lineAt(root), '/version', `missing (expected "version: ${TOOLS_LOCK_VERSION}")`);
  if (!sawTools) problem(lineAt(root), '/tools', 'missing (an empty lock is "tools: {}")');

  const tools = new Map<string, Map<string, ToolPin>>();
  if (sawTools && toolsNode !== null && !(isScalar(toolsNode) && toolsNode.value === null)) {
    if (!isMap(toolsNode)) problem(lineAt(toolsNode), '/tools', 'expected a mapping of upstream names');
    else {
      for (const upstreamPair of toolsNode.items) {
        const upstream = stringKey(upstreamPair);
        if (upstream === undefined || upstream === '') {
          problem(lineAt(upstreamPair.key as YamlNode), '/tools', 'upstream names must be non-empty strings');
          continue;
        }
        const upstreamPath = pointer(['tools', upstream]);
        const pinsNode = upstreamPair.value as YamlNode | null;
        if (!isMap(pinsNode)) {
          problem(lineAt(pinsNode, lineOffset(upstreamPair)), upstreamPath, 'expected a mapping of tool names to pins');
          continue;
        }
        const pins = new Map<string, ToolPin>();
        for (const toolPair of pinsNode.items) {
          const tool = stringKey(toolPair);
          if (tool === undefined || tool === '') {
            problem(
              lineAt(toolPair.key as YamlNode),
              upstreamPath,
              'tool names must be non-empty strings (quote a name that looks like a number)',
            );
            continue;
          }
          const pin = readPin(
            toolPair.value as YamlNode | null,
            tool,
            pointer(['tools', upstream, tool]),
            lineOffset(toolPair),
            { doc, lineAt, problem },
          );
          if (pin !== undefined) pins.set(tool, pin);
        }
        tools.set(upstream, pins);
      }
    }
  }

  if (problems.length > 0) throw new ConfigError(problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0)));
  return freezeLock({ version: TOOLS_LOCK_VERSION, tools });
}

interface ReadCtx {
  doc: Document;
  lineAt: (node: YamlNode | null | undefined, fallback?: number) => number;
  problem: (line: number, path: string, message: string) => void;
}

const PIN_KEYS = new Set(['hash', 'approvedAt', 'approvedBy', 'description', 'definition']);
/** An RFC 3339 date-time (what `Date.toISOString()` writes, and offsets). */
const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function readPin(
  node: YamlNode | null,
  tool: string,
  path: string,
  fallbackOffset: number,
  ctx: ReadCtx,
): ToolPin | undefined {
  const { lineAt, problem } = ctx;
  if (!isMap(node)) {
    problem(lineAt(node, fallbackOffset), path, 'expected a pin: a mapping with hash and approvedAt');
    return undefined;
  }
  const fields = new Map<string, Pair>();
  let ok = true;
  for (const pair of node.items) {
    const key = stringKey(pair);
    if (key === undefined || !PIN_KEYS.has(key)) {
      problem(
        lineAt(pair.key as YamlNode),
        key === undefined ? path : `${path}/${shownSegment(key)}`,
        `unknown key; a pin has ${[...PIN_KEYS].join(', ')}`,
      );
      ok = false;
      continue;
    }
    fields.set(key, pair);
  }
  const str = (key: string, required: boolean, check?: (v: string) => string | undefined): string | undefined => {
    const pair = fields.get(key);
    if (!pair) {
      if (required) {
        problem(lineAt(node), path, `missing "${key}"`);
        ok = false;
      }
      return undefined;
    }
    const value = pair.value as YamlNode | null;
    if (!isScalar(value) || typeof value.value !== 'string') {
      problem(lineAt(value, lineOffset(pair)), `${path}/${key}`, `expected a string, got ${describe(value)}`);
      ok = false;
      return undefined;
    }
    const why = check?.(value.value);
    if (why !== undefined) {
      problem(lineAt(value), `${path}/${key}`, why);
      ok = false;
      return undefined;
    }
    return value.value;
  };

  const hash = str('hash', true, (v) =>
    TOOL_HASH_RE.test(v) ? undefined : 'expected "sha256:" and 64 lowercase hex digits',
  );
  const approvedAt = str('approvedAt', true, (v) =>
    DATE_TIME_RE.test(v) && !Number.isNaN(Date.parse(v))
      ? undefined
      : 'expected an ISO 8601 date-time such as 2026-09-01T12:00:00.000Z',
  );
  const approvedBy = str('approvedBy', false);
  const description = str('description', false);

  let definition: JsonObject | undefined;
  const defPair = fields.get('definition');
  if (defPair) {
    const value = defPair.value as YamlNode | null;
    const js: unknown = isMap(value) ? value.toJS(ctx.doc, { maxAliasCount: 0 }) : undefined;
    if (!isJsonObject(js)) {
      problem(
        lineAt(value, lineOffset(defPair)),
        `${path}/definition`,
        'expected a mapping (the approved tool definition)',
      );
      ok = false;
    } else {
      const misplaced = ['name', ...UNPINNED_FIELDS].filter((k) => Object.hasOwn(js, k));
      if (misplaced.length > 0) {
        problem(
          lineAt(value),
          `${path}/definition`,
          `must not contain ${misplaced.map((k) => `"${k}"`).join(' or ')} (the name is the key above; _meta is not pinned)`,
        );
        ok = false;
      } else if (hash !== undefined && toolHash(js, tool) !== hash) {
        problem(
          lineAt(value),
          `${path}/definition`,
          `does not hash to ${hash} (edited by hand? approve the tool again instead)`,
        );
        ok = false;
      } else definition = js;
    }
  }

  if (!ok || hash === undefined || approvedAt === undefined) return undefined;
  const pin: { -readonly [K in keyof ToolPin]: ToolPin[K] } = { hash, approvedAt };
  if (approvedBy !== undefined) pin.approvedBy = approvedBy;
  if (description !== undefined) pin.description = description;
  if (definition !== undefined) pin.definition = definition;
  return pin;
}

/** Deep-freezes a lock (maps become read-only by type; their pins and definitions by `Object.freeze`). */
export function freezeLock(lock: ToolsLock): ToolsLock {
  for (const pins of lock.tools.values()) for (const pin of pins.values()) deepFreeze(pin);
  return Object.freeze(lock);
}

// ─── Small helpers ────────────────────────────────────────────────────────────────────────────────────────

/** Where a pair starts (its key), for problems about a value that is absent. */
function lineOffset(pair: Pair): number {
  const key = pair.key as YamlNode | null;
  return key?.range?.[0] ?? 0;
}

/** A mapping key as a string, or undefined when it is not a string scalar (a number, a boolean, a map…). */
function stringKey(pair: Pair): string | undefined {
  return isScalar(pair.key) && typeof pair.key.value === 'string' ? pair.key.value : undefined;
}

function describe(node: unknown): string {
  if (node === null || node === undefined) return 'nothing';
  if (isAlias(node)) return 'an alias';
  if (isMap(node)) return 'a mapping';
  if (isScalar(node))
    return node.value === null
      ? 'null'
      : typeof node.value === 'string'
        ? `"${showInvisible(clipCodePoints(node.value, 40))}"`
        : String(node.value);
  return 'a list';
}

/** `/a/b` with RFC 6901 escaping, invisible characters shown. */
function pointer(parts: readonly string[]): string {
  return parts.map((p) => `/${shownSegment(p)}`).join('');
}
