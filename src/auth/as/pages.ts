/**
 * The few HTML pages of the authorization server: an error page (for requests whose redirect URI is not
 * validated — those are never redirected) and the consent page. Every value is escaped; no script; the
 * headers forbid framing (clickjacking on the consent button) and caching.
 */

/** Headers for every HTML answer. No `form-action`: browsers apply it to the redirect after the form post. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
});

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;line-height:1.5}
.host{font-size:1.3rem;font-weight:bold;word-break:break-all}.warn{color:#8a4b00}code{word-break:break-all}
button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem}`;

function layout(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;
}

export function errorPage(title: string, message: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p><p>You can close this window.</p>`);
}

export interface ConsentView {
  readonly action: string;
  readonly id: string;
  readonly csrf: string;
  readonly clientId: string;
  readonly clientName: string | undefined;
  readonly source: 'registration' | 'metadata_document';
  readonly redirectUri: string;
  readonly scopes: readonly string[];
  readonly subject: string;
}

export function consentPage(v: ConsentView): string {
  const redirect = new URL(v.redirectUri);
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(redirect.hostname);
  const name = v.clientName ?? v.clientId;
  const origin =
    v.source === 'metadata_document'
      ? `<p>Client identity published at <code>${escapeHtml(v.clientId)}</code>.</p>`
      : `<p class="warn">This client registered itself; its name is not verified.</p>`;
  const scopeList =
    v.scopes.length === 0
      ? '<p>No scopes.</p>'
      : `<ul>${v.scopes.map((s) => `<li><code>${escapeHtml(s)}</code></li>`).join('')}</ul>`;
  const body = `<h1>Allow access?</h1>
<p><strong>${escapeHtml(name)}</strong> asks to act on the MCP gateway as <strong>${escapeHtml(v.subject)}</strong>.</p>
${origin}
<p>After you decide, you will be sent to:</p>
<p class="host">${escapeHtml(redirect.host)}</p>
<p><code>${escapeHtml(v.redirectUri)}</code></p>
${loopback ? '<p class="warn">This address is on your own computer: allow only if you started this sign-in from an application here.</p>' : ''}
<p>Access requested:</p>${scopeList}
<form method="post" action="${escapeHtml(v.action)}">
<input type="hidden" name="id" value="${escapeHtml(v.id)}">
<input type="hidden" name="csrf" value="${escapeHtml(v.csrf)}">
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`;
  return layout('Allow access?', body);
}
