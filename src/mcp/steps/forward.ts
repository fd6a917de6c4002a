/** The last step of a call (docs/architecture.md §4): the router sends it to the target's upstream. */
import type { CallStep } from '../call.js';
import { forwardContext } from '../request-context.js';

export const forwardStep: CallStep = {
  name: 'forward',
  run(call) {
    const { ctx } = call;
    return call.deps.router.forward(
      call.target,
      ctx.message.method,
      call.upstreamParams ?? ctx.params,
      forwardContext(ctx, call.ask),
    );
  },
};
