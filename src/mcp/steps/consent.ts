/**
 * Per-user OAuth's consent, as each client generation hears it (docs/authentication.md "Per-user OAuth to
 * upstreams"): the step around input-required and credentials that turns a provider's `ConsentRequiredError` into
 *
 * - a 2026-07-28 client that declared URL-mode elicitation: an `InputRequiredResult` with one `elicitation/create`
 *   (mode `url`) input request and a sealed `requestState` marked as the gateway's own question, so the retry's
 *   answer never reaches the upstream and the retry simply finds the grant;
 * - a 2025-11-25 client that declared URL-mode elicitation: `-32042` `URLElicitationRequiredError` with
 *   `data.elicitations: [{mode: 'url', url, message, elicitationId}]` (client/elicitation §URL mode);
 * - any other client: an error whose `data` carries the consent URL (`GW_UPSTREAM_CONSENT_URL`).
 *
 * The question is the gateway's, not an upstream's: no `upstreamRequests` rule is asked, and the audit record of the
 * call says `consent_required`.
 */
import { GatewayError } from '../../errors/gateway-error.js';
import { isJsonObject, type JsonObject } from '../../lib/json-rpc.js';
import { ConsentRequiredError } from '../../outbound/errors.js';
import type { CallStep } from '../call.js';
import { isModernVersion } from '../protocol-versions.js';

export const consentStep: CallStep = {
  name: 'consent',
  async run(call, next) {
    if (call.deps.credentials?.has(call.target.upstream) !== true) return next(call);
    try {
      return await next(call);
    } catch (err) {
      if (!(err instanceof ConsentRequiredError)) throw err;
      const { ctx, deps, target } = call;
      ctx.event.reason = 'consent_required';
      const elicitation = { mode: 'url', url: err.url, message: messageOf(err), elicitationId: err.elicitationId };
      if (!declaresUrlElicitation(ctx.clientCapabilities))
        throw new GatewayError('GW_UPSTREAM_CONSENT_URL', {
          detail: err.detail ?? target.upstream,
          data: { upstream: err.upstream, url: err.url, elicitationId: err.elicitationId },
        });
      if (ctx.session === undefined && isModernVersion(ctx.protocolVersion)) {
        const requestState = await deps.requestState.seal(
          ctx.principal,
          { upstream: target.upstream, method: ctx.message.method, name: target.name, args: call.args },
          { round: 1, own: true },
          deps.now(),
        );
        const result: JsonObject = {
          resultType: 'input_required',
          inputRequests: { [`consent-${err.elicitationId}`]: { method: 'elicitation/create', params: elicitation } },
          requestState,
        };
        return result;
      }
      throw new GatewayError('GW_UPSTREAM_CONSENT_REQUIRED', {
        detail: err.detail ?? target.upstream,
        data: { elicitations: [elicitation], upstream: err.upstream },
        cause: err,
      });
    }
  },
};

function messageOf(err: ConsentRequiredError): string {
  const m = err.data?.message;
  return typeof m === 'string' ? m : `Authorize the gateway at ${err.upstream}`;
}

/** client/elicitation: `elicitation: { url: {} }` declares URL mode (an empty `elicitation: {}` is form mode only). */
function declaresUrlElicitation(caps: JsonObject): boolean {
  const e = caps.elicitation;
  return isJsonObject(e) && isJsonObject(e.url);
}
