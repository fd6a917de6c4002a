/** RFC 6901 JSON Pointer segments: `~` → `~0`, `/` → `~1` (the form ajv uses in `instancePath`), and back. */
export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}
