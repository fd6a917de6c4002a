import type { ErrorObject } from 'ajv/dist/2020.js';
import type { ConfigProblem } from '../errors/config-error.js';
import { escapePointer, type YamlSource } from './yaml-source.js';
import { suggest } from '../lib/suggest.js';
import { kindOf, TYPE_NAMES } from '../lib/value-words.js';

/**
 * Ajv errors of the policy and fixture schemas → `file:line: /pointer: message` problems written for people:
 * unknown keys with a "did you mean", keys that only some rules may carry, patterns explained in words.
 */
type SchemaObject = Record<string, unknown>;

const PATTERN_HINTS: Readonly<Record<string, string>> = {
  '^[a-z0-9][a-z0-9._-]*$':
    'must be a rule id: lowercase letters, digits, ".", "_" and "-", starting with a letter or digit',
  '^[A-Za-z0-9._*-]{1,128}$': 'must be a name of 1-128 characters A-Z a-z 0-9 . _ - where "*" matches any characters',
  '^[\\x21-\\x7E]{1,2048}$': 'must be a URI pattern of printable ASCII without spaces (at most 2048 characters)',
  '^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$':
    'must be an upstream name as configured: 1-32 lowercase letters, digits or "-"',
  '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$': 'must be a scope: printable ASCII without spaces, \\ or " (RFC 6749 §3.3)',
  '^(/|\\./|\\.\\./)':
    'must be an absolute path (starting with "/") or one relative to the policy file\'s folder (starting with "./" or "../")',
  '^[a-z][a-z0-9+.-]*$': 'must be a URL scheme in lower case, without ":" (e.g. https)',
};

const ALLOW_ONLY = new Set(['arguments', 'redact', 'limits']);
const KIND_OF_KEY: Readonly<Record<string, string>> = { roots: 'path', schemes: 'url', hosts: 'url', ports: 'url' };

export function mapSchemaErrors(errors: readonly ErrorObject[], src: YamlSource): ConfigProblem[] {
  const kept: ErrorObject[] = [];
  for (const e of errors) {
    if (e.keyword === 'if' || e.keyword === 'propertyNames') continue;
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf') {
      // The branch errors just before it are noise when the value's type fits no branch; keep one summary then.
      const branch: ErrorObject[] = [];
      while (kept.length > 0 && isWithin(kept[kept.length - 1]!.instancePath, e.instancePath))
        branch.unshift(kept.pop()!);
      const informative = branch.filter(
        (b) => !(b.keyword === 'type' && b.instancePath === e.instancePath) && b.keyword !== 'anyOf',
      );
      kept.push(...(informative.length > 0 ? informative : [e]));
      continue;
    }
    kept.push(e);
  }
  const seen = new Set<string>();
  const out: ConfigProblem[] = [];
  for (const e of kept) {
    const p = describeError(e, src);
    const key = `${p.path}\n${p.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(p);
  }
  return out;
}

function describeError(e: ErrorObject, src: YamlSource): ConfigProblem {
  const p = e.instancePath;
  const params = e.params as Record<string, unknown>;
  if (e.propertyName !== undefined) {
    return src.problem(
      `${p}/${escapePointer(e.propertyName)}`,
      `key "${clip(e.propertyName)}" ${valueMessage(e)}`,
      'key',
    );
  }
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const known = Object.keys((e.parentSchema?.properties as SchemaObject | undefined) ?? {});
      return src.problem(`${p}/${escapePointer(key)}`, `unknown key "${clip(key)}"${suggest(key, known)}`, 'key');
    }
    case 'false schema': {
      const key = p.slice(p.lastIndexOf('/') + 1);
      if (ALLOW_ONLY.has(key))
        return src.problem(p, `key "${key}" is only for allow rules (this rule has effect: deny)`, 'key');
      const kind = KIND_OF_KEY[key];
      return src.problem(
        p,
        kind ? `key "${key}" is only for constraints of kind ${kind}` : `key "${key}" is not allowed here`,
        'key',
      );
    }
    case 'required':
      return src.problem(p, `missing required key "${String(params.missingProperty)}"`);
    case 'type':
      if (p === '') return src.problem(p, 'the file must be a YAML mapping with "version: 1" and a "rules:" list');
      return src.problem(p, valueMessage(e));
    case 'uniqueItems':
      return src.problem(`${p}/${String(params.i)}`, `repeats entry ${String(params.j)}`);
    default:
      return src.problem(p, valueMessage(e));
  }
}

function valueMessage(e: ErrorObject): string {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'type':
      return `must be ${TYPE_NAMES[String(params.type)] ?? String(params.type)}, not ${kindOf(e.data)}`;
    case 'enum':
      return `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}${got(e.data)}`;
    case 'const':
      return `must be ${JSON.stringify(params.allowedValue)}${got(e.data)}`;
    case 'pattern':
      return PATTERN_HINTS[String(params.pattern)] ?? `must match the pattern ${String(params.pattern)}`;
    case 'minItems':
      return Number(params.limit) === 1
        ? 'must not be an empty list'
        : `must have at least ${String(params.limit)} entries`;
    case 'maxItems':
      return `must have at most ${String(params.limit)} entries`;
    case 'minProperties':
      return e.instancePath.endsWith('/match')
        ? 'must name at least one of tools, resources, prompts, requests, upstreams'
        : `must have at least ${String(params.limit)} key${Number(params.limit) === 1 ? '' : 's'}`;
    case 'minLength':
      return Number(params.limit) === 1
        ? 'must not be empty'
        : `must be at least ${String(params.limit)} characters long`;
    case 'maxLength':
      return `must be at most ${String(params.limit)} characters long`;
    case 'minimum':
      return `must be at least ${String(params.limit)}`;
    case 'maximum':
      return `must be at most ${String(params.limit)}`;
    case 'anyOf':
    case 'oneOf': {
      const titles = (Array.isArray(e.schema) ? e.schema : [])
        .map((b) => (typeof b === 'object' && b !== null ? (b as SchemaObject).title : undefined))
        .filter((t): t is string => typeof t === 'string');
      return titles.length > 0
        ? `must be ${titles.join(' or ')}, not ${kindOf(e.data)}`
        : 'does not match any allowed form';
    }
    default:
      return e.message ?? `fails ${e.keyword}`;
  }
}

function got(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean') return ` (got ${String(v)})`;
  if (typeof v === 'string' && v.length <= 40 && !/[\r\n]/.test(v)) return ` (got ${JSON.stringify(v)})`;
  return '';
}

function isWithin(pointer: string, parent: string): boolean {
  return pointer === parent || pointer.startsWith(`${parent}/`);
}

function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 61)}...` : s;
}
