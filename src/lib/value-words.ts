/** How config and policy error messages name JSON types and values (shared by both loaders). */
export const TYPE_NAMES: Readonly<Record<string, string>> = {
  object: 'a mapping (key: value)',
  array: 'a list',
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  null: 'empty',
};

/** The kind of a value as a reader of YAML would say it. */
export function kindOf(v: unknown): string {
  if (v === null || v === undefined) return 'empty';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'number') return Number.isInteger(v) ? 'a whole number' : 'a fractional number';
  if (typeof v === 'boolean') return String(v);
  return 'a string';
}

/** A number with its unit when the field name gives one: `...Bytes` in KiB/MiB, `...Ms` in s/min/h. */
export function withUnit(field: string, n: number): string {
  if (field.endsWith('Bytes') && n >= 1024) {
    const [value, unit] = n >= 1024 * 1024 ? [n / (1024 * 1024), 'MiB'] : [n / 1024, 'KiB'];
    return `${n} (${Number.isInteger(value) ? value : value.toFixed(1)} ${unit})`;
  }
  if (field.endsWith('Ms') && n >= 1000) {
    const [value, unit] = n >= 3_600_000 ? [n / 3_600_000, 'h'] : n >= 60_000 ? [n / 60_000, 'min'] : [n / 1000, 's'];
    return `${n} (${Number.isInteger(value) ? value : value.toFixed(1)} ${unit})`;
  }
  return String(n);
}

export function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** A key quoted in a message, cut to 64 characters (a key can be any length). */
export function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 61)}...` : s;
}
