/**
 * Versions the front door negotiates, newest first. 2024-11-05 clients used the old HTTP+SSE transport and
 * cannot reach a Streamable HTTP endpoint, so the list starts where Streamable HTTP did (2025-03-26).
 */
export const SUPPORTED_PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26'] as const;
export const LATEST_PROTOCOL_VERSION = SUPPORTED_PROTOCOL_VERSIONS[0];

export function isSupportedVersion(v: string): boolean {
  return (SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(v);
}

/** Batches exist only in 2025-03-26; 2025-06-18 removed them (changelog #1). */
export function allowsBatches(version: string): boolean {
  return version === '2025-03-26';
}

/**
 * The stateless generation (MCP 2026-07-28, basic/versioning): no `initialize`, every request carries its version in
 * `_meta`. Kept apart from the list above so that a modern version can never be negotiated by `initialize`.
 */
export const MODERN_PROTOCOL_VERSIONS = ['2026-07-28'] as const;

export function isModernVersion(v: string | undefined): boolean {
  return v !== undefined && (MODERN_PROTOCOL_VERSIONS as readonly string[]).includes(v);
}
