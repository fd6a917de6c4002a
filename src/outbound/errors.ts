/** The errors a credential provider throws (credential-provider.ts), as the pipeline and the wire see them. */
import { GatewayError } from '../errors/gateway-error.js';

/** At most this much of an IdP's own error text reaches the log and the audit detail (never the wire). */
const MAX_IDP_TEXT = 200;

/**
 * The upstream's credential could not be obtained (the IdP refused, timed out or answered nonsense). The client hears
 * "Upstream credential unavailable" and the upstream's name in `data.upstream`; the IdP's words, sanitised and
 * truncated, go to `detail` only (logs and audit).
 */
export function credentialFailed(upstream: string, reason: string, cause?: unknown): GatewayError {
  return new GatewayError('GW_UPSTREAM_CREDENTIAL_FAILED', {
    detail: `${upstream}: ${sanitiseIdpText(reason)}`,
    data: { upstream },
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** Control characters out, whitespace folded, truncated: an IdP's text as a log line may carry it. */
export function sanitiseIdpText(text: string): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').trim();
  return clean.length > MAX_IDP_TEXT ? `${clean.slice(0, MAX_IDP_TEXT)}…` : clean;
}

/**
 * The user has no grant at this upstream yet and must consent in a browser first (per-user OAuth). Carries the
 * consent URL, which is meant for the user: `data` is `{ upstream, url, elicitationId }`, the shape of a URL-mode
 * elicitation (MCP 2025-11-25 client/elicitation, `URLElicitationRequiredError` -32042). Mapping it to an elicitation
 * or to the 2026-07-28 equivalent is the mcp layer's job; as it stands it reaches the client as this error.
 */
export class ConsentRequiredError extends GatewayError {
  readonly upstream: string;
  readonly url: string;
  readonly elicitationId: string;

  constructor(opts: { upstream: string; url: string; elicitationId: string; message?: string }) {
    super('GW_UPSTREAM_CONSENT_REQUIRED', {
      detail: `${opts.upstream}: the user has not authorised this upstream yet`,
      data: {
        upstream: opts.upstream,
        url: opts.url,
        elicitationId: opts.elicitationId,
        ...(opts.message !== undefined ? { message: opts.message } : {}),
      },
    });
    this.name = 'ConsentRequiredError';
    this.upstream = opts.upstream;
    this.url = opts.url;
    this.elicitationId = opts.elicitationId;
  }
}
