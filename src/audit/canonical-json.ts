/**
 * The one serialisation a record's hash is computed over: JSON with object keys sorted (code-unit order) at
 * every depth, no whitespace, `undefined` members dropped. JSON.parse → canonicalJson gives the same text back,
 * which is what lets `gatehouse audit verify` recompute a hash from a line written by any JSON writer.
 */
export function canonicalJson(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    // undefined, functions, symbols: JSON has no such value (members holding one are dropped below).
    return text === undefined ? 'null' : text;
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const withJson = value as { toJSON?: () => unknown };
  if (typeof withJson.toJSON === 'function') return canonicalJson(withJson.toJSON());
  const record = value as Record<string, unknown>;
  const keys = sortedKeys(record);
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const v = record[key];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    out += `${out.length === 1 ? '' : ','}${quotedKey(key)}:${canonicalJson(v)}`;
  }
  return `${out}}`;
}

/** Own enumerable keys in code-unit order (`sort()`'s order); insertion sort, which is quicker for a record's few keys. */
export function sortedKeys(record: object): string[] {
  const keys = Object.keys(record);
  if (keys.length > 32) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}

/** Member names repeat from record to record: their JSON spelling is kept (bounded: cleared when full; short names only). */
const QUOTED = new Map<string, string>();
export function quotedKey(key: string): string {
  let q = QUOTED.get(key);
  if (q === undefined) {
    q = JSON.stringify(key);
    if (key.length <= 64) {
      if (QUOTED.size >= 4096) QUOTED.clear();
      QUOTED.set(key, q);
    }
  }
  return q;
}
