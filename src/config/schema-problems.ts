/** Ajv errors → `file:line: /pointer: message` problems written for people; one mapper for gatehouse.yaml and policies. */
import type { ErrorObject } from 'ajv/dist/2020.js';
import type { ConfigProblem } from '../errors/config-error.js';
import { escapePointer, unescapePointer } from '../lib/json-pointer.js';
import { suggest } from '../lib/suggest.js';
import { clip, kindOf, plural, TYPE_NAMES, withUnit } from '../lib/value-words.js';
import { credentialKind } from './secrets.js';
import type { YamlSource } from './yaml-source.js';

type SchemaObject = Record<string, unknown>;

/** What one schema's errors are explained with, supplied by the loader of that schema. */
export interface SchemaWording {
  /** Pattern source → what the pattern asks for, in words. */
  readonly patternHints: ReadonlyMap<string, string>;
  /** The message when the document itself has the wrong type (an empty file, a list). */
  readonly rootShape: string;
  /** The schema's `$defs`: a oneOf/anyOf branch that is a `$ref` is named by the title of its definition. */
  readonly defs?: Readonly<SchemaObject>;
  /** Keys whose value selects an if/then: a key the `then` requires is said to be needed by that value. */
  readonly decidingKeys?: readonly string[];
  /** Why the key at `pointer` may not be there (a `false` schema): the form it belongs to. */
  forbiddenKey(pointer: string, key: string, src: YamlSource): string;
  /** A minProperties/maxProperties message that says more than the count (e.g. what a secret reference is). */
  keyCount?(e: ErrorObject): string | undefined;
  /**
   * The policy files' wording, which their tests pin: limits without units, no "(put it in quotes)" on a number
   * where a string belongs, "must not be an empty list", a repeated entry without the line of the first, enum values
   * echoed even when they look like credentials, and no line for a root that is not a mapping (an empty file).
   */
  readonly terse?: boolean;
}

export function mapSchemaErrors(
  errors: readonly ErrorObject[],
  src: YamlSource,
  wording: SchemaWording,
): ConfigProblem[] {
  const kept: ErrorObject[] = [];
  for (const e of errors) {
    // `if` failures only announce the `then` errors that follow; propertyNames wrap the inner error that has the detail.
    if (e.keyword === 'if' || e.keyword === 'propertyNames') continue;
    if (e.keyword === 'oneOf' || e.keyword === 'anyOf') {
      // Ajv emits a failed oneOf's branch errors just before it. Branches whose type did not even match are noise, and
      // so is the summary of a nested one; keep the errors of the branch that fits the value, or else say what it may be.
      const branch: ErrorObject[] = [];
      while (kept.length > 0 && isWithin(kept[kept.length - 1]!.instancePath, e.instancePath))
        branch.unshift(kept.pop()!);
      const informative = branch.filter(
        (b) =>
          !(b.keyword === 'type' && b.instancePath === e.instancePath) &&
          b.keyword !== 'anyOf' &&
          b.keyword !== 'oneOf',
      );
      kept.push(...(informative.length > 0 ? informative : [e]));
      continue;
    }
    kept.push(e);
  }
  const seen = new Set<string>();
  const problems: ConfigProblem[] = [];
  for (const e of kept) {
    const p = describeError(e, src, wording);
    const key = `${p.path}\n${p.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(p);
  }
  return problems;
}

function describeError(e: ErrorObject, src: YamlSource, wording: SchemaWording): ConfigProblem {
  const p = e.instancePath;
  const params = e.params as Record<string, unknown>;

  // An error about a key itself (propertyNames): point at the key.
  if (e.propertyName !== undefined) {
    return src.problem(
      `${p}/${escapePointer(e.propertyName)}`,
      `key "${clip(e.propertyName)}" ${valueMessage(e, wording)}`,
      'key',
    );
  }
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const known = Object.keys((e.parentSchema?.properties as SchemaObject | undefined) ?? {});
      return src.problem(`${p}/${escapePointer(key)}`, `unknown key "${clip(key)}"${suggest(key, known)}`, 'key');
    }
    case 'false schema':
      return src.problem(p, wording.forbiddenKey(p, unescapePointer(p.slice(p.lastIndexOf('/') + 1)), src), 'key');
    case 'required': {
      const key = String(params.missingProperty);
      const decidedBy = e.schemaPath.includes('/then/')
        ? wording.decidingKeys?.find((k) => typeof src.valueAt(p, k) === 'string')
        : undefined;
      const why = decidedBy !== undefined ? ` (${decidedBy} "${String(src.valueAt(p, decidedBy))}" needs it)` : '';
      return src.problem(p, `missing required key "${key}"${why}`);
    }
    case 'type': {
      if (p !== '') return src.problem(p, valueMessage(e, wording));
      const problem = src.problem(p, wording.rootShape);
      // An empty file has no node to point at; its first line is where the mapping belongs.
      return wording.terse === true ? problem : { ...problem, line: problem.line ?? 1 };
    }
    case 'uniqueItems': {
      if (wording.terse === true) return src.problem(`${p}/${String(params.i)}`, `repeats entry ${String(params.j)}`);
      // Ajv names the pair in either order, depending on the item type.
      const [first, dup] = [Number(params.j), Number(params.i)].sort((a, b) => a - b) as [number, number];
      const firstLine = src.line(`${p}/${first}`);
      return src.problem(
        `${p}/${dup}`,
        `repeats entry ${first}${firstLine === undefined ? '' : ` (line ${firstLine})`}`,
      );
    }
    default:
      return src.problem(p, valueMessage(e, wording));
  }
}

/** The message for an error about a value (also used for key names under propertyNames). */
function valueMessage(e: ErrorObject, wording: SchemaWording): string {
  const params = e.params as Record<string, unknown>;
  const terse = wording.terse === true;
  const number = (n: unknown): string =>
    terse ? String(n) : withUnit(unescapePointer(e.instancePath.slice(e.instancePath.lastIndexOf('/') + 1)), Number(n));
  switch (e.keyword) {
    case 'type': {
      const expected = String(params.type);
      const quoteHint =
        !terse && expected === 'string' && (typeof e.data === 'number' || typeof e.data === 'boolean')
          ? ' (put it in quotes)'
          : '';
      return `must be ${TYPE_NAMES[expected] ?? expected}, not ${kindOf(e.data)}${quoteHint}`;
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ');
      return `must be one of ${allowed}${got(e.data, terse)}`;
    }
    case 'const':
      return `must be ${JSON.stringify(params.allowedValue)}${got(e.data, terse)}`;
    case 'pattern':
      return wording.patternHints.get(String(params.pattern)) ?? `must match the pattern ${String(params.pattern)}`;
    case 'minimum':
      return `must be at least ${number(params.limit)}`;
    case 'maximum':
      return `must be at most ${number(params.limit)}`;
    case 'minLength':
      return Number(params.limit) === 1
        ? 'must not be empty'
        : `must be at least ${String(params.limit)} characters long`;
    case 'maxLength':
      return `must be at most ${String(params.limit)} characters long`;
    case 'minItems':
      return terse && Number(params.limit) === 1
        ? 'must not be an empty list'
        : `must have at least ${plural(Number(params.limit), 'entry', 'entries')}`;
    case 'maxItems':
      return `must have at most ${plural(Number(params.limit), 'entry', 'entries')}`;
    case 'minProperties':
    case 'maxProperties':
      return (
        wording.keyCount?.(e) ??
        `must have ${e.keyword === 'minProperties' ? 'at least' : 'at most'} ${plural(Number(params.limit), 'key', 'keys')}`
      );
    case 'oneOf':
    case 'anyOf': {
      const titles = (Array.isArray(e.schema) ? e.schema : [])
        .map((branch) => branchTitle(branch, wording.defs))
        .filter((t): t is string => t !== undefined);
      const quoteHint =
        typeof e.data === 'number' || typeof e.data === 'boolean' ? ' (put plain values in quotes)' : '';
      return titles.length > 0
        ? `must be ${titles.join(' or ')}, not ${kindOf(e.data)}${quoteHint}`
        : 'does not match any allowed form';
    }
    default:
      return e.message ?? `fails ${e.keyword}`;
  }
}

/** Echoes a rejected enum value only when it is short (and, unless terse, cannot be a credential). */
function got(v: unknown, terse: boolean): string {
  if (typeof v === 'number' || typeof v === 'boolean') return ` (got ${String(v)})`;
  if (typeof v === 'string' && v.length <= 40 && !/[\r\n]/.test(v) && (terse || credentialKind(v) === undefined))
    return ` (got ${JSON.stringify(v)})`;
  return '';
}

function branchTitle(branch: unknown, defs: Readonly<SchemaObject> | undefined): string | undefined {
  if (typeof branch !== 'object' || branch === null) return undefined;
  const { title, $ref } = branch as SchemaObject;
  if (typeof title === 'string') return title;
  if (typeof $ref === 'string' && $ref.startsWith('#/$defs/'))
    return branchTitle(defs?.[$ref.slice('#/$defs/'.length)], defs);
  return undefined;
}

function isWithin(pointer: string, parent: string): boolean {
  return pointer === parent || pointer.startsWith(`${parent}/`);
}
