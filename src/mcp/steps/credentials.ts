/**
 * Outbound identity (docs/architecture.md §4, docs/authentication.md "Outbound identity"): the step before forward.
 * For an upstream configured with `credentials:`, it asks that upstream's provider for the caller's credential and
 * puts it on the call (`call.outbound`), which forward hands down as the call's own headers. Other upstreams keep
 * their configured static headers, and the record says `outbound: static`.
 *
 * The inbound token reaches the provider as a SecretValue and nothing else here: never the call, the record, a log.
 */
import type { CallStep } from '../call.js';

export const credentialsStep: CallStep = {
  name: 'credentials',
  async run(call, next) {
    const { ctx, target } = call;
    const provider = call.deps.credentials?.get(target.upstream);
    if (provider === undefined) {
      ctx.event.outbound = 'static';
      return next(call);
    }
    // Asked once per call, also across the input-required step's retries (they run after this step).
    const credential = await provider.credentialFor({
      principal: ctx.principal,
      inboundToken: ctx.inboundToken,
      upstream: target.upstream,
      cancel: ctx.cancel,
    });
    ctx.event.outbound = credential.kind;
    if (credential.subject !== undefined) ctx.event.upstreamSubject = credential.subject;
    call.outbound = credential;
    return next(call);
  },
};
