/** The words the errors of the policy and fixture schemas are explained with (src/config/schema-problems.ts maps them). */
import schemaJson from '../../schemas/policy.schema.json' with { type: 'json' };
import type { SchemaWording } from '../config/schema-problems.js';

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

/** Keys only allow rules may carry, and the constraint kind each constraint key belongs to. */
const ALLOW_ONLY = new Set(['arguments', 'redact', 'limits']);
const KIND_OF_KEY: Readonly<Record<string, string>> = { roots: 'path', schemes: 'url', hosts: 'url', ports: 'url' };

/** Policy files and their `*.test.yaml` fixtures: unknown keys get a "did you mean", patterns are explained in words. */
export const POLICY_WORDING: SchemaWording = {
  patternHints: new Map(Object.entries(PATTERN_HINTS)),
  rootShape: 'the file must be a YAML mapping with "version: 1" and a "rules:" list',
  defs: schemaJson.$defs,
  forbiddenKey(_pointer, key) {
    if (ALLOW_ONLY.has(key)) return `key "${key}" is only for allow rules (this rule has effect: deny)`;
    const kind = KIND_OF_KEY[key];
    return kind ? `key "${key}" is only for constraints of kind ${kind}` : `key "${key}" is not allowed here`;
  },
  keyCount: (e) =>
    e.keyword === 'minProperties' && e.instancePath.endsWith('/match')
      ? 'must name at least one of tools, resources, prompts, requests, upstreams'
      : undefined,
  terse: true,
};
