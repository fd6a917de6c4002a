import type { IncomingHttpHeaders } from 'node:http';
import type { Principal } from '../lib/principal.js';

/** What auth sees of a request. The token is read here and nowhere after (DESIGN.md §2). */
export interface AuthRequest {
  headers: IncomingHttpHeaders;
  remoteAddress: string | undefined;
}

export type AuthResult =
  | { ok: true; principal: Principal }
  | { ok: false; status: 401 | 403; wwwAuthenticate: string; reason: string };

/** Step ② of the pipeline: a request becomes a Principal, or a challenge (the auth issue fills it in). */
export interface Authenticator {
  authenticate(req: AuthRequest): AuthResult | Promise<AuthResult>;
}

const ANONYMOUS: Principal = Object.freeze({ subject: 'anonymous', scopes: new Set<string>(), groups: [], anonymous: true });

/**
 * `auth.mode: none`: every request is the anonymous principal. The config loader allows this mode only on
 * a loopback host, and the gateway logs a warning at start.
 */
export class LoopbackOnlyAnonymous implements Authenticator {
  authenticate(): AuthResult {
    return { ok: true, principal: ANONYMOUS };
  }
}
