/** The JSON Schema check of gatehouse.yaml: its validator, and the words its errors are explained with. */
import type { ValidateFunction } from 'ajv/dist/2020.js';
import schemaJson from '../../schemas/gatehouse.schema.json' with { type: 'json' };
import type { ConfigProblem } from '../errors/config-error.js';
import { PRECOMPILED_VALIDATORS, schemaValidator } from './precompiled-schema.js';
import { mapSchemaErrors, type SchemaWording } from './schema-problems.js';
import type { YamlSource } from './yaml-source.js';

type SchemaObject = Record<string, unknown>;
const rootSchema = schemaJson as SchemaObject;
const defs = rootSchema.$defs as SchemaObject;
let validator: ValidateFunction | undefined;

/** The problems the schema finds in `data` (parsed from `src`); empty when it passes. */
export function schemaProblems(data: unknown, src: YamlSource): ConfigProblem[] {
  // verbose (SCHEMA_AJV_OPTIONS): errors carry their schema, which gives titles and allowed keys for the messages.
  // Precompiled by `npm run build` when it matches this schema (src/config/precompiled-schema.ts).
  validator ??= schemaValidator(rootSchema, PRECOMPILED_VALIDATORS.config);
  return validator(data) ? [] : mapSchemaErrors(validator.errors ?? [], src, CONFIG_WORDING);
}

/** One message per pattern, written for people; keyed by the `$defs` entry that holds the pattern. */
const PATTERN_HINTS: Readonly<Record<string, string>> = {
  upstreamName:
    'must be 1-32 lowercase letters, digits or "-", starting and ending with a letter or digit (no "_" or ".")',
  host: 'must be a hostname or an IP address (IPv6 without brackets, e.g. ::1)',
  httpPath: 'must start with "/" and contain only URL path characters (no spaces, query or fragment)',
  origin:
    'must be an origin, scheme://host[:port] with http or https and nothing after the port (e.g. https://app.example.com)',
  url: 'must be an absolute http:// or https:// URL without spaces',
  envName: 'must be a variable name: letters, digits and "_", not starting with a digit',
  headerName: "must be a header name: letters, digits and !#$%&'*+-.^_`|~ (no spaces or colons)",
  headerValue: 'must not contain line breaks',
  envValue: 'must not contain NUL characters',
  scope: 'must be a scope: printable ASCII without spaces, \\ or " (RFC 6749 §3.3)',
  redisUrl: 'must be a redis:// or rediss:// URL without spaces',
  limitId: 'must be 1-64 letters, digits, ".", "_" or "-"',
};

/** pattern source → hint, built from the schema so that a pattern without a hint fails at start-up, not in a message. */
const patternHints: ReadonlyMap<string, string> = (() => {
  const map = new Map<string, string>();
  for (const [name, def] of Object.entries(defs)) {
    for (const pattern of collectPatterns(def)) {
      const hint = PATTERN_HINTS[name];
      if (hint === undefined)
        throw new Error(`schemas/gatehouse.schema.json: pattern in $defs/${name} has no message in PATTERN_HINTS`);
      map.set(pattern, hint);
    }
  }
  return map;
})();

function collectPatterns(schema: unknown): string[] {
  if (Array.isArray(schema)) return schema.flatMap(collectPatterns);
  if (typeof schema !== 'object' || schema === null) return [];
  return Object.entries(schema).flatMap(([k, v]) =>
    k === 'pattern' && typeof v === 'string' ? [v] : collectPatterns(v),
  );
}

/** Keys that only one kind of transport accepts; used to explain the schema's `false` entries. */
const STDIO_ONLY_KEYS = new Set(['command', 'args', 'cwd', 'envAllow', 'env', 'shutdownGraceMs']);
const AUTH_MODES: ReadonlySet<unknown> = new Set(['none', 'dev', 'oauth', 'builtin']);
/** The mode each mode-specific `auth` block belongs to. */
const AUTH_BLOCK_MODE: Readonly<Record<string, string>> = {
  jwt: 'oauth',
  introspection: 'oauth',
  dev: 'dev',
  builtin: 'builtin',
};

const CONFIG_WORDING: SchemaWording = {
  patternHints,
  rootShape: 'the file must be a YAML mapping with at least an "upstreams:" list',
  defs,
  // A key required by an if/then names the key that decided it: an upstream's transport, a client's auth, a store's kind.
  decidingKeys: ['transport', 'auth', 'kind'],
  forbiddenKey(p, key, src) {
    if (p === `/auth/${key}`) {
      // jwt/introspection belong to mode oauth, dev to mode dev, builtin to mode builtin (the allOf at the end of $defs/auth).
      const mode = src.valueAt('/auth', 'mode');
      const got =
        mode === undefined
          ? ', and this file sets no auth.mode (the default is "none")'
          : AUTH_MODES.has(mode)
            ? `, and this one has mode "${String(mode)}"`
            : '';
      return `key "${key}" is only for auth.mode "${AUTH_BLOCK_MODE[key] ?? 'oauth'}"${got}`;
    }
    if (/^\/auth\/builtin\/store\/[^/]+$/.test(p)) {
      const kind = src.valueAt('/auth/builtin/store', 'kind');
      return `key "${key}" is only for store kind "redis"${typeof kind === 'string' ? `, and this one has kind "${kind}"` : ''}`;
    }
    if (/^\/auth\/builtin\/clients\/\d+\/[^/]+$/.test(p)) {
      const auth = src.valueAt(p.slice(0, p.lastIndexOf('/')), 'auth');
      const owner = key === 'jwksFile' ? 'private_key_jwt' : 'tls_client_auth';
      return `key "${key}" is only for clients with auth "${owner}"${typeof auth === 'string' ? `, and this one has auth "${auth}"` : ''}`;
    }
    const transport = src.valueAt(p.slice(0, p.lastIndexOf('/')), 'transport');
    const owner = STDIO_ONLY_KEYS.has(key) ? 'stdio upstreams' : 'http and sse upstreams';
    const got = typeof transport === 'string' ? `, and this one has transport "${transport}"` : '';
    return `key "${key}" is only for ${owner}${got}`;
  },
  keyCount(e) {
    const properties = e.parentSchema?.properties as SchemaObject | undefined;
    return typeof properties === 'object' && properties !== null && 'fromEnv' in properties
      ? 'a secret reference takes exactly one key: { fromEnv: NAME } or { fromFile: PATH }'
      : undefined;
  },
};
