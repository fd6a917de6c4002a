/**
 * Builds the session authority the config asks for (docs/architecture.md §7): the keys of `sessions.keys`, or one
 * random key for this process, and the revocation/idle store the composition root chose.
 */
import type { Logger } from 'pino';
import { liveSessionKeys, sessionKeyBytes, SESSIONS_DEFAULTS } from '../config/sessions-config.js';
import type { GatehouseConfig } from '../config/types.js';
import type { SessionStore } from '../stores/sessions/session-store.js';
import { SessionAuthority } from './session-authority.js';
import { SessionTokenCodec } from './session-token.js';

export function createSessionAuthority(config: GatehouseConfig, store: SessionStore, logger: Logger): SessionAuthority {
  const sessions = config.sessions ?? SESSIONS_DEFAULTS.sessions;
  const keys = sessionKeyBytes(sessions);
  if (keys.length === 0) {
    // Said once, at start: the operator of one node needs nothing; the operator of several needs to know —
    // and a shared session store says there are several: their ids would still not move between them.
    const message =
      'sessions.keys not set: session ids are sealed with a random key of this process; sessions end with a restart and cannot move between replicas';
    if (sessions.store === 'redis')
      logger.warn(`${message} (sessions.store is redis: set the same sessions.keys on every replica)`);
    else logger.info(message);
  }
  // Live: a key file that changes (a Kubernetes Secret volume) is used from the next session on (secret-rotation.ts).
  const codec = keys.length > 0 ? new SessionTokenCodec(liveSessionKeys(sessions)) : SessionTokenCodec.ephemeral();
  return new SessionAuthority({ codec, store, maxLifetimeMs: sessions.maxLifetimeMs });
}
