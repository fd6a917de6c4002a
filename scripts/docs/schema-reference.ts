/**
 * A JSON Schema (draft 2020-12, the subset schemas/*.schema.json use) rendered as a Markdown reference: one table of
 * top-level keys, then a section per top-level object (or list of objects) with every key below it as a dotted
 * path (`server.tls.certFile`, `upstreams[].retry.tools`), its type, default, allowed values and description.
 *
 * `$ref`s are followed (an object definition with a `title`, such as the secret reference, is described once, in
 * "Shared definitions", and linked), `oneOf`/`anyOf` are shown as alternatives, and `if`/`then` rules as sentences.
 * A schema shape this renderer does not know makes it throw: a reference that silently leaves a rule out would be
 * worse than a failing `npm run docs`.
 */
import { code, orList, slug, table } from './markdown.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Schema = { [key: string]: Json };

export interface SchemaReferenceOptions {
  /** The page's `# …` title. */
  title: string;
  /** Markdown between the title and the schema's own description. */
  intro: string;
}

const isObject = (v: Json | undefined): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);

export function schemaReference(root: Schema, options: SchemaReferenceOptions): string {
  return new SchemaRenderer(root).render(options);
}

class SchemaRenderer {
  private readonly defs: Record<string, Schema>;
  private readonly sharedUsed = new Set<string>();

  constructor(private readonly root: Schema) {
    const defs = root['$defs'];
    this.defs = isObject(defs) ? (defs as Record<string, Schema>) : {};
  }

  render(options: SchemaReferenceOptions): string {
    const out: string[] = [`# ${options.title}`, options.intro];
    const description = this.root['description'];
    if (typeof description === 'string') out.push(description);

    const properties = this.properties(this.root);
    const required = this.requiredOf(this.root);
    const sections: string[] = [];
    const topRows: string[][] = [];
    for (const [name, prop] of properties) {
      const body = this.objectBody(prop);
      const key = body === undefined ? code(name) : `[${code(name)}](#${slug(name)})`;
      topRows.push(this.row(key, prop, required.has(name)));
      if (body === undefined) continue;
      const lines: string[] = [`## ${code(name)}`];
      const text = this.describe(prop);
      if (text !== '') lines.push(text);
      const rows: string[][] = [];
      const conditions: string[] = [];
      this.flatten(body.path(name), body.schema, rows, conditions);
      lines.push(table(['key', 'type', 'default', 'description'], rows));
      if (conditions.length > 0) lines.push(conditions.map((c) => `- ${c}`).join('\n'));
      sections.push(lines.join('\n\n'));
    }
    out.push('## Top-level keys', table(['key', 'type', 'default', 'description'], topRows), ...sections);

    const shared = [...this.sharedUsed].sort();
    if (shared.length > 0) {
      out.push('## Shared definitions');
      for (const name of shared) {
        const def = this.defs[name]!;
        const lines: string[] = [`### ${this.sharedName(name, true)}`];
        if (typeof def['description'] === 'string') lines.push(def['description']);
        const rows: string[][] = [];
        const conditions: string[] = [];
        this.flatten('', def, rows, conditions);
        const constraints = this.constraintsOf(def);
        if (constraints.length > 0) lines.push(`${capitalise(constraints.join('; '))}.`);
        lines.push(table(['key', 'type', 'default', 'description'], rows));
        if (conditions.length > 0) lines.push(conditions.map((c) => `- ${c}`).join('\n'));
        out.push(lines.join('\n\n'));
      }
    }
    return `${out.join('\n\n')}\n`;
  }

  /** Rows for every key under `schema` (an object with properties), depth first, and its `if`/`then` rules. */
  private flatten(prefix: string, schema: Schema, rows: string[][], conditions: string[]): void {
    const required = this.requiredOf(schema);
    const join = (name: string): string => (prefix === '' ? name : `${prefix}.${name}`);
    conditions.push(...this.conditionsOf(prefix, schema));
    for (const [name, prop] of this.properties(schema)) {
      rows.push(this.row(code(join(name)), prop, required.has(name)));
      const body = this.objectBody(prop);
      if (body !== undefined) this.flatten(body.path(join(name)), body.schema, rows, conditions);
    }
  }

  /** Where a property's own keys are: an object with properties, or a list of them (`key[]`); not shared ones. */
  private objectBody(prop: Json): { schema: Schema; path: (key: string) => string } | undefined {
    const { schema, ref } = this.resolve(prop);
    if (ref !== undefined && this.isShared(ref)) return undefined;
    if (isObject(schema['properties'])) return { schema, path: (key) => key };
    if (schema['type'] === 'array' && schema['items'] !== undefined) {
      const items = this.resolve(schema['items']);
      if (items.ref !== undefined && this.isShared(items.ref)) return undefined;
      if (isObject(items.schema['properties'])) return { schema: items.schema, path: (key) => `${key}[]` };
    }
    return undefined;
  }

  private row(key: string, prop: Json, required: boolean): string[] {
    const { schema } = this.resolve(prop);
    const type = this.typeOf(prop) + (required ? ', required' : '');
    const fallback = this.impliedDefault(schema);
    const value = schema['default'];
    const shown =
      value === undefined || (fallback !== undefined && canonical(fallback) === canonical(value))
        ? '—'
        : code(typeof value === 'string' ? value : yamlish(value));
    const description = this.describe(prop);
    const constraints = this.constraintsOf(prop);
    const allowed = constraints.length > 0 ? `Allowed: ${constraints.join('; ')}.` : '';
    return [key, type, shown, [description, allowed].filter((s) => s !== '').join(' ')];
  }

  /**
   * A key's description: the referring site's, then the referenced definition's own when it says something else
   * (both apply in JSON Schema), then, for a list of objects, the item's. A shared definition's is in its section.
   */
  private describe(prop: Json): string {
    const parts: string[] = [];
    const add = (text: Json | undefined): void => {
      if (typeof text === 'string' && text !== '' && !parts.includes(text)) parts.push(text);
    };
    const own = (node: Json | undefined): Json | undefined => {
      if (!isObject(node)) return undefined;
      const ref = typeof node['$ref'] === 'string' ? /^#\/\$defs\/([^/]+)$/.exec(node['$ref']) : null;
      if (ref !== null && this.isShared(ref[1]!)) return node['description'];
      return node['description'] ?? (ref !== null ? own(this.defs[ref[1]!]) : undefined);
    };
    if (isObject(prop)) {
      add(prop['description']);
      const ref = typeof prop['$ref'] === 'string' ? /^#\/\$defs\/([^/]+)$/.exec(prop['$ref']) : null;
      if (ref !== null && !this.isShared(ref[1]!)) add(own(this.defs[ref[1]!]));
    }
    const { schema } = this.resolve(prop);
    if (schema['type'] === 'array' && this.objectBody(prop) !== undefined) add(own(schema['items']));
    return parts.join(' ');
  }

  /** The schema with its `$ref` followed (the referring site's keywords win), and the definition's name. */
  private resolve(node: Json): { schema: Schema; ref?: string } {
    if (!isObject(node)) {
      if (node === true) return { schema: {} };
      throw new Error(`schema reference: cannot render the schema ${JSON.stringify(node)}`);
    }
    const ref = node['$ref'];
    if (typeof ref !== 'string') return { schema: node };
    const m = /^#\/\$defs\/([^/]+)$/.exec(ref);
    if (m === null || this.defs[m[1]!] === undefined) throw new Error(`schema reference: unknown $ref ${ref}`);
    const target = this.resolve(this.defs[m[1]!]!);
    const site = { ...node };
    delete site['$ref'];
    return { schema: { ...target.schema, ...site }, ref: m[1]! };
  }

  /** An object definition with a title (the secret reference) is described once and linked. */
  private isShared(ref: string): boolean {
    const def = this.defs[ref];
    return def !== undefined && typeof def['title'] === 'string' && isObject(def['properties']);
  }

  /** "a secret reference ({ fromEnv: NAME } or …)" → "secret reference", or "Secret reference" as a heading. */
  private sharedName(ref: string, heading = false): string {
    const title = String(this.defs[ref]!['title'])
      .replace(/\s*\(.*\)$/, '')
      .replace(/^(a|an) /, '');
    return heading ? capitalise(title) : title;
  }

  private sharedLink(ref: string, plural = false): string {
    this.sharedUsed.add(ref);
    return `[${this.sharedName(ref)}${plural ? 's' : ''}](#${slug(this.sharedName(ref, true))})`;
  }

  private properties(schema: Schema): [string, Json][] {
    const props = schema['properties'];
    return isObject(props) ? Object.entries(props) : [];
  }

  private requiredOf(schema: Schema): Set<string> {
    const required = schema['required'];
    return new Set(Array.isArray(required) ? required.map(String) : []);
  }

  private typeOf(node: Json, plural = false): string {
    const { schema, ref } = this.resolve(node);
    if (ref !== undefined && this.isShared(ref)) return this.sharedLink(ref, plural);
    const alternatives = this.alternatives(schema);
    if (alternatives !== undefined) {
      const labels = alternatives.map((alt) => this.label(alt));
      return labels.some((l) => /,| or /.test(l)) ? labels.join(', or ') : orList(labels);
    }
    const s = plural ? 's' : '';
    if ('const' in schema) return jsonType(schema['const']!) + s;
    const type = schema['type'];
    if (type === 'array') return `list of ${this.typeOf(schema['items'] ?? true, true)}`;
    if (type === 'object' && !isObject(schema['properties']) && schema['additionalProperties'] !== undefined) {
      const values = schema['additionalProperties'];
      if (values === false) return `object${s}`;
      return `map${plural ? 's' : ''} of names to ${this.typeOf(values, true)}`;
    }
    if (typeof type === 'string') return type + s;
    if (Array.isArray(schema['enum'])) {
      const types = [...new Set(schema['enum'].map(jsonType))];
      return orList(types.map((t) => t + s));
    }
    if (schema['anyOf'] === undefined && Object.keys(schema).every((k) => k === 'description' || k === 'title'))
      return plural ? 'values' : 'any value';
    throw new Error(`schema reference: cannot name the type of ${JSON.stringify(schema)}`);
  }

  private alternatives(schema: Schema): Json[] | undefined {
    const alts = schema['oneOf'] ?? schema['anyOf'];
    return Array.isArray(alts) ? alts : undefined;
  }

  /** One alternative of a oneOf/anyOf: its title, else its type. */
  private label(alt: Json): string {
    if (isObject(alt) && typeof alt['title'] === 'string') return alt['title'];
    const { schema, ref } = this.resolve(alt);
    if (ref !== undefined && this.isShared(ref)) return this.sharedLink(ref);
    if (typeof schema['title'] === 'string') return schema['title'];
    return this.typeOf(alt);
  }

  /** What the value must satisfy beyond its type, as short phrases ("0 to 65535", "pattern `…`"). */
  private constraintsOf(node: Json): string[] {
    const { schema, ref } = this.resolve(node);
    if (ref !== undefined && this.isShared(ref) && node !== this.defs[ref]) return [];
    const out: string[] = [];
    const alternatives = this.alternatives(schema);
    if (alternatives !== undefined) {
      for (const alt of alternatives) {
        const c = this.constraintsOf(alt);
        if (c.length > 0) out.push(`${this.label(alt)}: ${c.join(', ')}`);
      }
    }
    if ('const' in schema) out.push(`must be ${code(literal(schema['const']!))}`);
    if (Array.isArray(schema['enum'])) out.push(`one of ${schema['enum'].map((v) => code(literal(v))).join(', ')}`);
    out.push(...range(schema['minimum'], schema['maximum'], ''));
    if (schema['exclusiveMinimum'] !== undefined || schema['exclusiveMaximum'] !== undefined)
      throw new Error('schema reference: exclusiveMinimum/exclusiveMaximum are not rendered yet');
    out.push(...range(schema['minLength'], schema['maxLength'], ' characters'));
    if (typeof schema['pattern'] === 'string') out.push(`pattern ${code(schema['pattern'])}`);
    out.push(...range(schema['minItems'], schema['maxItems'], ' items'));
    if (schema['uniqueItems'] === true) out.push('no duplicates');
    if (schema['items'] !== undefined && this.objectBody(node) === undefined) {
      const each = this.constraintsOf(schema['items']);
      if (each.length > 0) out.push(`each: ${each.join(', ')}`);
    }
    if (schema['minProperties'] !== undefined && schema['minProperties'] === schema['maxProperties']) {
      out.push(`exactly ${schema['minProperties'] === 1 ? 'one key' : `${String(schema['minProperties'])} keys`}`);
    } else {
      out.push(...range(schema['minProperties'], schema['maxProperties'], ' keys'));
    }
    if (schema['propertyNames'] !== undefined) {
      const names = this.constraintsOf(schema['propertyNames']);
      if (names.length > 0) out.push(`names: ${names.join(', ')}`);
    }
    const values = schema['additionalProperties'];
    if (isObject(values)) {
      const c = this.constraintsOf(values);
      if (c.length > 0) out.push(`values: ${c.join(', ')}`);
    }
    if (isObject(schema['properties']) && values === undefined) out.push('keys not listed here are accepted too');
    return out;
  }

  /** The `if`/`then` rules of an object (its own, or in `allOf`), as sentences naming full key paths. */
  private conditionsOf(prefix: string, schema: Schema): string[] {
    const join = (name: string): string => code(prefix === '' ? name : `${prefix}.${name}`);
    const rules: Schema[] = [];
    if (schema['if'] !== undefined) rules.push(schema);
    for (const part of Array.isArray(schema['allOf']) ? schema['allOf'] : []) {
      if (!isObject(part) || part['if'] === undefined)
        throw new Error(`schema reference: cannot render allOf part ${JSON.stringify(part)}`);
      rules.push(part);
    }
    return rules.map((rule) => {
      const cond = rule['if'];
      const then = rule['then'];
      if (!isObject(cond) || !isObject(then) || rule['else'] !== undefined)
        throw new Error(`schema reference: cannot render the rule ${JSON.stringify(rule)}`);
      const whens = Object.entries(isObject(cond['properties']) ? cond['properties'] : {}).map(([name, test]) => {
        if (!isObject(test)) throw new Error(`schema reference: cannot render the test ${JSON.stringify(test)}`);
        if ('const' in test) return `${join(name)} is ${code(literal(test['const']!))}`;
        if (isObject(test['not']) && 'const' in test['not'])
          return `${join(name)} is not ${code(literal(test['not']['const']!))}`;
        if (Array.isArray(test['enum'])) return `${join(name)} is ${orList(test['enum'].map((v) => code(literal(v))))}`;
        throw new Error(`schema reference: cannot render the test ${JSON.stringify(test)}`);
      });
      if (whens.length === 0) throw new Error(`schema reference: a rule without a condition: ${JSON.stringify(rule)}`);
      const effects: string[] = [];
      const required = Array.isArray(then['required']) ? then['required'].map(String) : [];
      if (required.length > 0)
        effects.push(`${orList(required.map(join), 'and')} ${required.length === 1 ? 'is' : 'are'} required`);
      const props = isObject(then['properties']) ? then['properties'] : {};
      const absent = Object.entries(props)
        .filter(([, v]) => v === false)
        .map(([k]) => join(k));
      if (absent.length > 0) effects.push(`${orList(absent, 'and')} must not be set`);
      const unknown = Object.keys(then).filter((k) => k !== 'required' && k !== 'properties');
      if (unknown.length > 0 || Object.values(props).some((v) => v !== true && v !== false) || effects.length === 0)
        throw new Error(`schema reference: cannot render the effect ${JSON.stringify(then)}`);
      return `When ${orList(whens, 'and')}: ${effects.join('; ')}.`;
    });
  }

  /** The object its properties' defaults add up to, to leave out an object default that says nothing more. */
  private impliedDefault(schema: Schema): Json | undefined {
    if (!isObject(schema['properties'])) return undefined;
    const out: Schema = {};
    for (const [name, prop] of this.properties(schema)) {
      const { schema: s } = this.resolve(prop);
      const value = s['default'] ?? this.impliedDefault(s);
      if (value !== undefined) out[name] = value;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
}

function range(min: Json | undefined, max: Json | undefined, unit: string): string[] {
  const n = (v: Json): string => (typeof v === 'number' ? String(v) : JSON.stringify(v));
  const units = (v: Json): string => (v === 1 ? unit.replace(/s$/, '') : unit);
  if (min !== undefined && max !== undefined) return [`${n(min)} to ${n(max)}${unit}`];
  if (min !== undefined)
    return unit === ' characters' && min === 1 ? ['not empty'] : [`at least ${n(min)}${units(min)}`];
  if (max !== undefined) return [`at most ${n(max)}${units(max)}`];
  return [];
}

function jsonType(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** A value in a code span: a string as it is, anything else as `yamlish` writes it. */
function literal(v: Json): string {
  return typeof v === 'string' && v.trim() !== '' ? v : yamlish(v);
}

/** A value as it would be written in the YAML file, on one line. */
export function yamlish(v: Json): string {
  if (typeof v === 'string') return /^[A-Za-z0-9_./@+][A-Za-z0-9_./:@+-]*$/.test(v) ? v : JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(yamlish).join(', ')}]`;
  if (isObject(v) && Object.keys(v).length === 0) return '{}';
  if (isObject(v))
    return `{ ${Object.entries(v)
      .map(([k, x]) => `${k}: ${yamlish(x)}`)
      .join(', ')} }`;
  return String(v);
}

/** JSON with sorted keys, to compare two values. */
function canonical(v: Json): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObject(v))
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k]!)}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
