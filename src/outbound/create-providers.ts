/**
 * The credential providers of the configured upstreams (docs/architecture.md §1 ⑥): one per upstream with
 * `credentials:`, chosen by its kind. Called by the composition root; a new kind (per-user OAuth, ID-JAG) is one
 * branch here and one provider beside token-exchange/ (id-jag/ is one).
 */
import type { Logger } from 'pino';
import type { GatehouseConfig } from '../config/types.js';
import type { CredentialProvider, CredentialProviders } from './credential-provider.js';
import { IdJagProvider } from './id-jag/id-jag.js';
import { TokenExchangeProvider } from './token-exchange/token-exchange.js';

export function createCredentialProviders(
  config: GatehouseConfig,
  logger: Logger,
  now: () => number = Date.now,
): Map<string, CredentialProvider> {
  const providers = new Map<string, CredentialProvider>();
  for (const u of config.upstreams) {
    if (u.transport === 'stdio' || u.credentials === undefined) continue;
    const te = u.credentials.tokenExchange;
    if (te !== undefined) {
      providers.set(
        u.name,
        new TokenExchangeProvider({
          upstream: u.name,
          config: te,
          now,
          onExchange: (e) => {
            if (e.ok) logger.debug({ upstream: e.upstream }, 'token exchanged');
            else logger.warn({ upstream: e.upstream, detail: e.detail }, 'token exchange failed');
          },
        }),
      );
    }
    const idJag = u.credentials.idJag;
    if (idJag !== undefined) {
      providers.set(
        u.name,
        new IdJagProvider({
          upstream: u.name,
          config: idJag,
          now,
          onExchange: (e) => {
            if (e.ok) logger.debug({ upstream: e.upstream }, 'ID-JAG obtained and redeemed');
            else logger.warn({ upstream: e.upstream, detail: e.detail }, 'ID-JAG exchange failed');
          },
        }),
      );
    }
  }
  return providers;
}

/** Closes every provider (App.close). */
export function closeCredentialProviders(providers: CredentialProviders): void {
  for (const p of providers.values()) p.close?.();
}
