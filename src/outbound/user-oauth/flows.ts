/**
 * The browser side of per-user OAuth, for the edge's routes: which upstream a `/start` ticket or a callback `state`
 * belongs to, and the user's and the operator's revocations. Transport-agnostic: the edge owns HTTP (cookies,
 * redirects, pages).
 */
import type { Principal } from '../../identity/principal.js';
import type { Sealer } from './sealer.js';
import { ConsentFlowError, openFlow, type StartResult, type UserOAuthProvider } from './user-oauth.js';

export class UserOAuthFlows {
  constructor(
    private readonly providers: ReadonlyMap<string, UserOAuthProvider>,
    private readonly flowBox: Sealer,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.providers.size;
  }

  has(upstream: string): boolean {
    return this.providers.has(upstream);
  }

  start(upstream: string, ticket: string): Promise<StartResult> {
    const provider = this.providers.get(upstream);
    if (provider === undefined) throw new ConsentFlowError('unknown_upstream');
    return provider.start(ticket).then((r) => r);
  }

  /** The callback: the state says which upstream; the state's own checks are the provider's. Returns the upstream. */
  async callback(params: URLSearchParams, cookies: ReadonlyMap<string, string>): Promise<string> {
    const raw = params.get('state');
    if (raw === null) throw new ConsentFlowError('no_state');
    const state = await openFlow(this.flowBox, raw, 'state', this.now());
    const provider = this.providers.get(state.u as string);
    if (provider === undefined) throw new ConsentFlowError('unknown_upstream');
    if (params.get('error') !== null)
      throw new ConsentFlowError(`authorization_denied: ${params.get('error')?.slice(0, 64)}`);
    await provider.callback(state, params, cookies);
    return provider.upstream;
  }

  revokeOwn(upstream: string, principal: Principal): Promise<boolean> {
    const provider = this.providers.get(upstream);
    if (provider === undefined) throw new ConsentFlowError('unknown_upstream');
    return provider.revokeOwn(principal);
  }

  revokeSubject(upstream: string, subject: string): Promise<number> {
    const provider = this.providers.get(upstream);
    if (provider === undefined) throw new ConsentFlowError('unknown_upstream');
    return provider.revokeSubject(subject);
  }
}
