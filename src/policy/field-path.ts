/**
 * Where an argument sits inside a tool call's `arguments`: a JSON pointer (`/options/target`, RFC 6901) or a
 * dotted path (`options.target`). Numeric segments index arrays. Lookups read own properties only, so
 * `constructor` or `__proto__` never reach the prototype.
 */
export interface FieldPath {
  /** As written in the policy. */
  readonly text: string;
  /** Canonical JSON pointer, used in audit records and `redact`. */
  readonly pointer: string;
  readonly segments: readonly string[];
}

const DOTTED = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/;

export function parseFieldPath(text: string): { ok: true; path: FieldPath } | { ok: false; message: string } {
  let segments: string[];
  if (text.startsWith('/')) {
    segments = text.slice(1).split('/');
    if (/~(?![01])/.test(text))
      return { ok: false, message: 'is not a valid JSON pointer ("~" must be written ~0, "/" inside a name ~1)' };
    segments = segments.map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (segments.some((s) => s === '')) return { ok: false, message: 'has an empty segment' };
  } else {
    if (!DOTTED.test(text))
      return {
        ok: false,
        message:
          'must be a JSON pointer (/a/b) or a dotted path of names (a.b); use a pointer for names with other characters',
      };
    segments = text.split('.');
  }
  const pointer = segments.map((s) => `/${s.replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
  return { ok: true, path: Object.freeze({ text, pointer, segments: Object.freeze(segments) }) };
}

/** The value at `path`, and whether it exists. */
export function readField(root: unknown, path: FieldPath): { found: boolean; value: unknown } {
  let node: unknown = root;
  for (const seg of path.segments) {
    if (Array.isArray(node)) {
      if (!/^(0|[1-9][0-9]*)$/.test(seg)) return { found: false, value: undefined };
      const i = Number(seg);
      if (i >= node.length) return { found: false, value: undefined };
      node = node[i];
    } else if (typeof node === 'object' && node !== null) {
      if (!Object.hasOwn(node, seg)) return { found: false, value: undefined };
      node = (node as Record<string, unknown>)[seg];
    } else {
      return { found: false, value: undefined };
    }
  }
  return { found: true, value: node };
}

export const REDACTED = '[redacted]';

/**
 * A copy of `args` with every field in `pointers` replaced by `"[redacted]"`, for audit records. Fields that do
 * not exist are left absent; the input is not modified.
 */
export function redactArguments(
  args: Readonly<Record<string, unknown>>,
  pointers: readonly string[],
): Record<string, unknown> {
  // Copy on write along each redacted path only: the record never shares a changed container with the call's
  // arguments, and the untouched rest is shared read-only (the audit sink serialises it, never mutates it).
  let copy: Record<string, unknown> = { ...args };
  for (const pointer of pointers) {
    const parsed = parseFieldPath(pointer);
    if (!parsed.ok) continue;
    copy = redactAt(copy, parsed.path.segments, 0) as Record<string, unknown>;
  }
  return copy;
}

/** `node` with the field at `segs[i..]` replaced by REDACTED, copying each container on the way; `node` itself when absent. */
function redactAt(node: unknown, segs: readonly string[], i: number): unknown {
  const seg = segs[i]!;
  const last = i === segs.length - 1;
  if (Array.isArray(node)) {
    if (!/^(0|[1-9][0-9]*)$/.test(seg) || Number(seg) >= node.length) return node;
    const index = Number(seg);
    const value = last ? REDACTED : redactAt(node[index], segs, i + 1);
    if (value === node[index]) return node;
    const out = node.slice();
    out[index] = value;
    return out;
  }
  if (typeof node !== 'object' || node === null || !Object.hasOwn(node, seg)) return node;
  const obj = node as Record<string, unknown>;
  const value = last ? REDACTED : redactAt(obj[seg], segs, i + 1);
  if (value === obj[seg]) return node;
  return { ...obj, [seg]: value };
}
