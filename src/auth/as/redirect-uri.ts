/**
 * Redirect URIs a client may register (MCP authorization §Communication Security; OAuth 2.1 §2.3.1;
 * RFC 8252 §7.3): https, or http on a loopback address (`127.0.0.1`, `localhost`, `[::1]`, any port).
 * Never a fragment, never userinfo, never another scheme (`javascript:`, `data:`, custom schemes).
 * At `/authorize` the comparison is an exact string match against the registered values (no normalisation).
 */

export type RedirectUriProblem = 'not_a_url' | 'scheme' | 'fragment' | 'userinfo' | 'too_long' | 'whitespace';

export const MAX_REDIRECT_URI_LENGTH = 2000;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname.toLowerCase());
}

export function redirectUriProblem(uri: string): RedirectUriProblem | undefined {
  if (uri.length > MAX_REDIRECT_URI_LENGTH) return 'too_long';
  // The WHATWG parser strips tabs/newlines and trims: what we store must be what we compare.
  if (/[\s\u0000-\u001f\u007f\\]/.test(uri)) return 'whitespace';
  if (uri.includes('#')) return 'fragment';
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'not_a_url';
  }
  if (url.username !== '' || url.password !== '') return 'userinfo';
  if (url.protocol === 'https:') return url.hostname === '' ? 'not_a_url' : undefined;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return undefined;
  return 'scheme';
}

/** `/authorize`: the presented URI must be one of the registered strings, character for character. */
export function matchesRegisteredRedirectUri(presented: string, registered: readonly string[]): boolean {
  return registered.includes(presented);
}
