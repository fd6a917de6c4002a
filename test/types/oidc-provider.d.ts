/**
 * The small part of `oidc-provider` (a dev dependency without type declarations) that the tests use:
 * it plays the corporate authorization server.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  class OidcError extends Error {
    constructor(description?: string);
  }

  export default class Provider {
    constructor(issuer: string, configuration?: Record<string, unknown>);
    readonly issuer: string;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    static readonly errors: {
      InvalidTarget: typeof OidcError;
      InvalidScope: typeof OidcError;
      InvalidRequest: typeof OidcError;
    };
  }
}
