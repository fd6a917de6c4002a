/** The last step of a call (docs/architecture.md §4): the router sends it to the target's upstream. */
import type { CallStep } from '../call.js';
import { forwardContext } from '../request-context.js';
import { withoutRequestEnvelope } from '../request-meta.js';

export const forwardStep: CallStep = {
  name: 'forward',
  run(call) {
    const { ctx } = call;
    // Every upstream today holds a 2025 session: the client's 2026 envelope is not forwarded (request-meta.ts).
    const params = withoutRequestEnvelope(call.upstreamParams ?? ctx.params);
    return call.deps.router.forward(call.target, ctx.message.method, params, forwardContext(ctx, call.ask));
  },
};
