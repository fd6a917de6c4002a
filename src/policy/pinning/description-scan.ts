/**
 * Flags tool text that looks like an instruction to the model, or that a reviewer cannot see (threat model
 * #13, tool poisoning: Invariant Labs' `<IMPORTANT>` attack, hidden Unicode tags). Findings are warnings:
 * `gatehouse check` and `gatehouse tools approve` print them, the router records them in the audit log;
 * nothing is blocked by them (pinning is what blocks: a poisoned tool is `new` or `changed` until a person
 * approves it, and this is what the person sees).
 *
 * What is scanned: every string in the tool definition (title, description, every schema keyword's text at
 * any depth: property descriptions, titles, enum values, defaults, examples…) and every object key (property
 * names reach the model too).
 * - Invisible characters, in any string or key: Unicode tag characters (decoded to the ASCII they hide),
 *   zero-width characters, bidi controls, supplementary variation selectors, C0/C1 controls (terminal
 *   escapes) other than tab/CR/LF, and any other invisible format character.
 * - Instruction-like text, in string values (not in `pattern`, `$ref`, `type`, `format` and similar keyword
 *   values, which are not prose): prompt-template tags (`<IMPORTANT>`, `<system>`, `[INST]`, `<|im_start|>`),
 *   phrases that address the model or hide things from the user ("ignore previous instructions", "do not
 *   tell the user"), and references to credentials (`~/.ssh`, `id_rsa`, `.env`, `~/.aws/credentials`,
 *   `mcp.json`). Matching is done on a normalised copy (NFKC, invisible characters removed, whitespace
 *   collapsed), so `ig\u200Bnore previous instructions` and full-width `＜IMPORTANT＞` still match. Text
 *   hidden in tag characters is decoded and scanned the same way.
 * - Length: any string longer than `maxTextLength` (2,000 code points by default). Instruction rules read
 *   the first 100,000 characters of a string; a longer one is flagged `long_text` in any case.
 *
 * Pure. Excerpts are short and pass through `showInvisible`, so they are safe to print and to log.
 */
import { isJsonObject, type JsonObject } from '../../lib/json-rpc.js';
import {
  BIDI_CONTROLS,
  CONTROL_CHARACTERS,
  OTHER_FORMAT,
  TAG_CHARACTERS,
  VARIATION_SELECTORS,
  ZERO_WIDTH,
  clipCodePoints,
  shownSegment,
  codePointLength,
  decodeTagCharacters,
  showInvisible,
} from './visible-text.js';

export type FindingKind =
  | 'instruction_tag'
  | 'instruction_phrase'
  | 'sensitive_path'
  | 'tag_characters'
  | 'zero_width'
  | 'bidi_control'
  | 'variation_selectors'
  | 'control_characters'
  | 'invisible_format'
  | 'long_text';

/** One problem in one string, before it is attributed to a tool. */
export interface TextFinding {
  readonly kind: FindingKind;
  /** JSON pointer inside the tool definition (RFC 6901), invisible characters shown. `''` for scanString. */
  readonly path: string;
  /** Around the first occurrence, at most ~160 characters, invisible characters shown as `\u{…}`. */
  readonly excerpt: string;
  /** What matched (the rule), the decoded hidden text, the length… */
  readonly detail: string;
  /** How many occurrences in this string. */
  readonly count: number;
}

export interface DescriptionFinding extends TextFinding {
  readonly upstream: string;
  readonly tool: string;
}

export interface ScanOptions {
  /** Longer strings are flagged `long_text`. Default 2,000 code points. */
  readonly maxTextLength?: number;
}

export const DEFAULT_MAX_TEXT_LENGTH = 2000;

/** Keyword values that are syntax, not prose: no instruction or path rules (invisible characters still count). */
const NOT_PROSE = new Set([
  'pattern',
  '$ref',
  '$id',
  '$schema',
  '$anchor',
  '$dynamicRef',
  '$dynamicAnchor',
  'type',
  'format',
  'contentEncoding',
  'contentMediaType',
  'mimeType',
  'src',
]);
/** Stops a hostile definition from recursing without end; listings are depth-bounded already. */
const MAX_DEPTH = 64;
const EXCERPT_RADIUS = 40;
/** Instruction rules read at most this much of one string (UTF-16 units). */
const MAX_MATCHED_LENGTH = 100_000;

interface Rule {
  readonly kind: 'instruction_tag' | 'instruction_phrase' | 'sensitive_path';
  readonly name: string;
  readonly re: RegExp;
}

/**
 * The rules, tuned against the descriptions of the reference servers (server-everything, server-filesystem):
 * each must be specific enough that ordinary tool documentation does not trip it.
 */
const RULES: readonly Rule[] = [
  // Prompt-template and "priority" tags.
  {
    kind: 'instruction_tag',
    name: 'xml-like instruction tag',
    re: /<\s*\/?\s*(important|system|instructions?|admin|hidden|secret|critical|urgent|assistant|sys|override|priority|developer)(\s[^<>]{0,80})?\s*\/?\s*>/gi,
  },
  {
    kind: 'instruction_tag',
    name: 'chat-template marker',
    re: /\[\/?INST\]|<<\/?SYS>>|<\|\s*(im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id)\s*\|>|<\/?(start_of_turn|end_of_turn)>/gi,
  },
  // Addressing the model over the user's head.
  {
    kind: 'instruction_phrase',
    name: 'ignore previous instructions',
    re: /\b(ignore|disregard|forget|override)\s+(all\s+|any\s+)?(of\s+)?(the\s+|your\s+)?(previous|prior|above|earlier|preceding|other|system|original)\s+(instructions?|prompts?|rules|directions|guidelines|messages|context)\b/gi,
  },
  {
    kind: 'instruction_phrase',
    name: 'hide from the user',
    re: /\b(do\s+not|don['’]t|never|must\s+not)\s+(tell|inform|notify|alert|warn|show|reveal|disclose|mention|explain)\b[^.!?\n]{0,80}?\b(the\s+)?users?\b/gi,
  },
  {
    kind: 'instruction_phrase',
    name: 'hide from the user',
    re: /\b(without|before)\s+(telling|informing|notifying|alerting|asking|warning)\s+(the\s+)?users?\b/gi,
  },
  {
    kind: 'instruction_phrase',
    name: 'hide from the user',
    re: /\b(the\s+)?users?\s+(must|should|will|need)\s*(not|never|n['’]t)\s+(know|see|notice|find\s+out|be\s+(told|informed|aware))\b/gi,
  },
  { kind: 'instruction_phrase', name: 'hide from the user', re: /\b(do\s+not|don['’]t|never)\s+mention\s+that\b/gi },
  {
    kind: 'instruction_phrase',
    name: 'hide from the user',
    re: /\b(hide|conceal|keep)\s+(this|it|that)\s+(secret\s+)?from\s+the\s+users?\b/gi,
  },
  {
    kind: 'instruction_phrase',
    name: 'precondition to read or send',
    re: /\bbefore\s+(using|calling|invoking|running|you\s+use|you\s+call)\s+(this|any|the|other)\s+tools?\b[^.!?]{0,80}?\b(read|send|pass|include|fetch|open|call|upload|email|copy)\b/gi,
  },
  {
    kind: 'instruction_phrase',
    name: 'shadowing another tool',
    re: /\bwhen\s+this\s+tool\s+is\s+(available|present|loaded|installed|enabled)\b/gi,
  },
  {
    kind: 'instruction_phrase',
    name: 'role reassignment',
    re: /\b(you\s+are\s+now|from\s+now\s+on,?\s+you|new\s+(system\s+)?instructions\s*:|act\s+as\s+(an?\s+)?(system|admin|root|developer)\b)/gi,
  },
  { kind: 'instruction_phrase', name: 'exfiltration', re: /\bexfiltrat\w*/gi },
  // Credentials and agent configuration.
  {
    kind: 'sensitive_path',
    name: 'ssh keys',
    re: /~\/\.ssh\b|(?<![\w.-])\.ssh\/|\bid_(rsa|dsa|ecdsa|ed25519)\b|\bauthorized_keys\b/gi,
  },
  { kind: 'sensitive_path', name: '.env file', re: /(?<![\w.$-])\.env(\.[\w-]+)?\b(?!\s*\()/gi },
  {
    kind: 'sensitive_path',
    name: 'cloud and tool credentials',
    re: /\.aws\/(credentials|config)\b|\.config\/gcloud\b|\.azure\/|\.kube\/config\b|\.docker\/config\.json\b|\.npmrc\b|\.pypirc\b|\.netrc\b|\.git-credentials\b|\.pgpass\b|\.gnupg\b/gi,
  },
  { kind: 'sensitive_path', name: 'system secrets', re: /\/etc\/(passwd|shadow|sudoers)\b/gi },
  {
    kind: 'sensitive_path',
    name: 'agent configuration',
    re: /(?<![\w-])mcp\.json\b|claude_desktop_config\.json\b|~\/\.cursor\b|~\/\.claude\b|~\/\.codeium\b|~\/\.continue\b/gi,
  },
];

interface InvisibleRule {
  readonly kind: Extract<
    FindingKind,
    'tag_characters' | 'zero_width' | 'bidi_control' | 'variation_selectors' | 'control_characters' | 'invisible_format'
  >;
  readonly re: RegExp;
  readonly name: string;
}

const INVISIBLE: readonly InvisibleRule[] = [
  { kind: 'tag_characters', re: TAG_CHARACTERS, name: 'Unicode tag characters (U+E0000–U+E007F)' },
  { kind: 'zero_width', re: ZERO_WIDTH, name: 'zero-width characters' },
  { kind: 'bidi_control', re: BIDI_CONTROLS, name: 'bidirectional control characters' },
  { kind: 'variation_selectors', re: VARIATION_SELECTORS, name: 'supplementary variation selectors (U+E0100–U+E01EF)' },
  { kind: 'control_characters', re: CONTROL_CHARACTERS, name: 'control characters' },
  { kind: 'invisible_format', re: OTHER_FORMAT, name: 'invisible format characters' },
];

/** Removed before matching instruction rules. */
const STRIP_FOR_MATCHING = /[\p{Cf}\u{E0100}-\u{E01EF}\uFE00-\uFE0F]/gu;

/** Scans every tool of every listing. Findings are sorted by upstream, tool, path, kind. */
export function scanListings(
  listings: readonly { readonly upstream: string; readonly tools: readonly JsonObject[] }[],
  opts: ScanOptions = {},
): DescriptionFinding[] {
  const out: DescriptionFinding[] = [];
  for (const l of listings) {
    for (const tool of l.tools) {
      if (typeof tool.name === 'string') out.push(...scanToolDefinition(l.upstream, tool.name, tool, opts));
    }
  }
  return out.sort(
    (a, b) => cmp(a.upstream, b.upstream) || cmp(a.tool, b.tool) || cmp(a.path, b.path) || cmp(a.kind, b.kind),
  );
}

/** Scans one tool definition (`tool` is the name to report it under: the upstream's original name). */
export function scanToolDefinition(
  upstream: string,
  tool: string,
  definition: JsonObject,
  opts: ScanOptions = {},
): DescriptionFinding[] {
  const out: DescriptionFinding[] = [];
  walk(definition, '', undefined, 0, opts, (f) => out.push(Object.freeze({ upstream, tool, ...f })));
  return out;
}

/**
 * Scans one free-standing text, e.g. an upstream's `initialize` `instructions` (threat model #13: never
 * pass upstream instructions unreviewed). Findings carry `path` `''` unless one is given.
 */
export function scanString(
  text: string,
  path = '',
  opts: ScanOptions & { readonly prose?: boolean } = {},
): TextFinding[] {
  const out: TextFinding[] = [];
  scanText(text, path, opts.prose ?? true, opts, (f) => out.push(Object.freeze(f)));
  return out;
}

function walk(
  value: unknown,
  path: string,
  parentKey: string | undefined,
  depth: number,
  opts: ScanOptions,
  emit: (f: TextFinding) => void,
): void {
  if (depth > MAX_DEPTH) return;
  if (typeof value === 'string') {
    scanText(value, path, parentKey === undefined || !NOT_PROSE.has(parentKey), opts, emit);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => walk(v, `${path}/${i}`, parentKey, depth + 1, opts, emit));
    return;
  }
  if (isJsonObject(value)) {
    for (const [key, v] of Object.entries(value)) {
      const childPath = `${path}/${shownSegment(key)}`;
      // Keys: invisible characters only (a property name is short and not prose).
      scanInvisible(key, childPath, 'in the key', emit);
      walk(v, childPath, key, depth + 1, opts, emit);
    }
  }
}

function scanText(text: string, path: string, prose: boolean, opts: ScanOptions, emit: (f: TextFinding) => void): void {
  scanInvisible(text, path, undefined, emit);

  const max = opts.maxTextLength ?? DEFAULT_MAX_TEXT_LENGTH;
  const length = codePointLength(text);
  if (length > max)
    emit({
      kind: 'long_text',
      path,
      excerpt: excerptAt(text, 0, 0),
      detail: `${length} characters (more than ${max})`,
      count: 1,
    });

  if (!prose) return;
  // Bounded work per string whatever an upstream sends; anything longer is flagged `long_text` anyway.
  const normalised = normalise(text.length > MAX_MATCHED_LENGTH ? text.slice(0, MAX_MATCHED_LENGTH) : text);
  matchRules(normalised, path, undefined, emit);
  if (TAG_CHARACTERS.test(text)) {
    const hidden = normalise(decodeTagCharacters(text));
    if (hidden !== '') matchRules(hidden, path, 'in text hidden in Unicode tag characters', emit);
  }
}

function scanInvisible(text: string, path: string, where: string | undefined, emit: (f: TextFinding) => void): void {
  for (const rule of INVISIBLE) {
    const global = new RegExp(rule.re.source, 'gu');
    const matches = [...text.matchAll(global)];
    if (matches.length === 0) continue;
    const first = matches[0]!.index;
    let detail = `${rule.name}${where === undefined ? '' : ` ${where}`}: ${matches.length}`;
    if (rule.kind === 'tag_characters') {
      const hidden = decodeTagCharacters(text);
      if (hidden !== '') detail += `; they spell: "${showInvisible(clipCodePoints(hidden, 200))}"`;
    }
    emit({
      kind: rule.kind,
      path,
      excerpt: excerptAt(text, first, matches[0]![0].length),
      detail,
      count: matches.length,
    });
  }
}

function matchRules(text: string, path: string, where: string | undefined, emit: (f: TextFinding) => void): void {
  // One finding per (kind, rule name): the first match is shown, the rest counted.
  const seen = new Map<string, { finding: TextFinding; count: number }>();
  for (const rule of RULES) {
    for (const m of text.matchAll(rule.re)) {
      const key = `${rule.kind}\0${rule.name}`;
      const prior = seen.get(key);
      if (prior) {
        prior.count++;
        continue;
      }
      const detail = `${rule.name}: "${showInvisible(clipCodePoints(m[0], 60))}"${where === undefined ? '' : ` (${where})`}`;
      seen.set(key, {
        finding: { kind: rule.kind, path, excerpt: excerptAt(text, m.index, m[0].length), detail, count: 1 },
        count: 1,
      });
    }
  }
  for (const { finding, count } of seen.values()) emit({ ...finding, count });
}

/**
 * Invisible characters removed, NFKC (full-width and other compatibility forms folded), whitespace runs
 * collapsed to one space. Collapsing also keeps the rules' `\s*` and `\s+` from backtracking over long runs.
 */
function normalise(text: string): string {
  return text.replace(STRIP_FOR_MATCHING, '').normalize('NFKC').replace(/\s+/gu, ' ');
}

/**
 * About `EXCERPT_RADIUS` characters either side of [start, start+length) (the match itself clipped to 80),
 * shown safely, with `…` where cut. Offsets are UTF-16; a cut never splits a surrogate pair.
 */
function excerptAt(text: string, start: number, length: number): string {
  let from = Math.max(0, start - EXCERPT_RADIUS);
  let to = Math.min(text.length, start + Math.min(Math.max(length, 1), 80) + EXCERPT_RADIUS);
  if (from > 0 && isLowSurrogate(text.charCodeAt(from))) from--;
  if (to < text.length && isLowSurrogate(text.charCodeAt(to))) to++;
  return `${from > 0 ? '…' : ''}${showInvisible(text.slice(from, to))}${to < text.length ? '…' : ''}`;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
