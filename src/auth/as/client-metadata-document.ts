/**
 * Client ID metadata documents (MCP 2025-11-25 §Client ID Metadata Documents; draft-ietf-oauth-client-id-
 * metadata-document): a `client_id` that is an https URL names a JSON document describing the client. It is
 * fetched through the SSRF-guarded fetcher, must name itself (`client_id` equal to the URL, character for
 * character) and carry `client_name` and `redirect_uris`. Results are cached briefly (HTTP `max-age`,
 * capped at 5 minutes; `no-store`/`no-cache` are not cached); concurrent look-ups of one URL share a fetch.
 */
import type { StoredClient } from '../../stores/as/as-store.js';
import { validateClientMetadata } from './client-metadata.js';
import { isLoopbackHost } from './redirect-uri.js';
import type { SafeFetcher } from './safe-fetch.js';

export const MAX_CLIENT_ID_URL_LENGTH = 2048;
const MAX_CACHE_SECONDS = 300;
const MAX_CACHE_ENTRIES = 500;

/** Whether a client id is URL-shaped at all (then it is never looked up as a registered id). */
export function looksLikeUrl(clientId: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(clientId);
}

/**
 * Why a URL cannot be a client id: https (http only on loopback with the unsafe test switch), a path other
 * than `/`, no fragment, no userinfo, no dot segments, no whitespace or backslash.
 */
export function clientIdUrlProblem(id: string, opts: { allowHttpLoopback?: boolean } = {}): string | undefined {
  if (id.length > MAX_CLIENT_ID_URL_LENGTH) return 'too long';
  if (/[\s\u0000-\u001f\u007f\\]/.test(id)) return 'whitespace or backslash';
  if (id.includes('#')) return 'fragment';
  let url: URL;
  try {
    url = new URL(id);
  } catch {
    return 'not a URL';
  }
  const httpOk = opts.allowHttpLoopback === true && url.protocol === 'http:' && isLoopbackHost(url.hostname);
  if (url.protocol !== 'https:' && !httpOk) return 'not https';
  if (url.username !== '' || url.password !== '') return 'userinfo';
  if (url.pathname === '/' || url.pathname === '') return 'no path';
  const rawPath =
    id
      .slice(id.indexOf('//') + 2)
      .replace(/^[^/?]*/, '')
      .split('?')[0] ?? '';
  if (rawPath.split('/').some((seg) => ['.', '..'].includes(seg.replace(/%2e/gi, '.')))) return 'dot segment';
  // What the parser would print must be what the client sent: no normalisation tricks.
  if (url.href !== id) return 'not in canonical form';
  return undefined;
}

export type ResolveResult =
  { readonly ok: true; readonly client: StoredClient } | { readonly ok: false; readonly detail: string };

export interface ClientMetadataResolverOptions {
  fetch: SafeFetcher;
  scopesSupported: readonly string[];
  /** Epoch milliseconds. */
  now: () => number;
  allowHttpLoopback?: boolean;
}

export class ClientMetadataResolver {
  readonly #opts: ClientMetadataResolverOptions;
  readonly #cache = new Map<string, { client: StoredClient; until: number }>();
  readonly #inFlight = new Map<string, Promise<ResolveResult>>();

  constructor(opts: ClientMetadataResolverOptions) {
    this.#opts = opts;
  }

  async resolve(clientId: string): Promise<ResolveResult> {
    const problem = clientIdUrlProblem(clientId, { allowHttpLoopback: this.#opts.allowHttpLoopback === true });
    if (problem !== undefined) return { ok: false, detail: `client_id URL refused: ${problem}` };
    const cached = this.#cache.get(clientId);
    if (cached !== undefined && cached.until > this.#opts.now()) return { ok: true, client: cached.client };
    let pending = this.#inFlight.get(clientId);
    if (pending === undefined) {
      pending = this.#fetch(clientId).finally(() => this.#inFlight.delete(clientId));
      this.#inFlight.set(clientId, pending);
    }
    return pending;
  }

  async #fetch(clientId: string): Promise<ResolveResult> {
    const fetched = await this.#opts.fetch(clientId);
    if (!fetched.ok)
      return { ok: false, detail: `metadata document fetch refused: ${fetched.reason} (${fetched.detail})` };
    const doc = fetched.body;
    if (typeof doc !== 'object' || doc === null || (doc as { client_id?: unknown }).client_id !== clientId) {
      return { ok: false, detail: 'metadata document client_id does not equal its URL' };
    }
    const checked = validateClientMetadata(doc, {
      scopesSupported: this.#opts.scopesSupported,
      requireClientName: true,
    });
    if (!checked.ok) return { ok: false, detail: `metadata document invalid: ${checked.detail}` };
    const client: StoredClient = {
      clientId,
      ...checked.value,
      tokenEndpointAuthMethod: 'none',
      issuedAt: Math.floor(this.#opts.now() / 1000),
      source: 'metadata_document',
    };
    const seconds = Math.min(fetched.maxAgeSeconds ?? MAX_CACHE_SECONDS, MAX_CACHE_SECONDS);
    if (seconds > 0) {
      if (this.#cache.size >= MAX_CACHE_ENTRIES) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(clientId, { client, until: this.#opts.now() + seconds * 1000 });
    }
    return { ok: true, client };
  }
}
