/**
 * Outbound identity (docs/architecture.md §1 ⑥, docs/authentication.md "Outbound identity"): the credential a call
 * carries to an upstream that must know who is calling. The pipeline's credentials step (mcp/steps/credentials.ts)
 * asks the upstream's provider once per forwarded call; the headers it returns travel with that one HTTP request
 * (CallOptions.headers → SendContext.headers) and nowhere else.
 *
 * The inbound token is handed to a provider as a `SecretValue` only so that a provider may present it where the
 * configuration says (token exchange: `subject_token` at the configured token endpoint). A provider never puts it
 * in a header, a log line or an audit record (threat model #1).
 */
import type { SecretValue } from '../config/types.js';
import type { Principal } from '../identity/principal.js';
import type { Cancellation } from '../lib/cancellation.js';

/** Which kind of outbound credential a call carried; what the audit record's `outbound` says. */
export type OutboundCredentialKind = 'static' | 'exchanged' | 'user-grant' | 'id-jag';

/** A credential for one call to one upstream. */
export interface OutboundCredential {
  readonly kind: OutboundCredentialKind;
  /**
   * Headers for the call's HTTP request, by lower-case name (usually just `authorization`). They override the
   * upstream's configured `authorization` header and nothing else (upstream/http-headers.ts `withCallHeaders`).
   */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * For the per-user kinds: the subject the upstream will see (the exchanged token's `sub`, the grant's user), for
   * the audit record. Never the credential.
   */
  readonly subject?: string;
}

/** What a provider is asked for: whose credential, for which upstream. */
export interface CredentialRequest {
  readonly principal: Principal;
  /** The caller's verified bearer token, as the edge received it on this very request; absent without one. */
  readonly inboundToken: SecretValue | undefined;
  /** The upstream's configured name. */
  readonly upstream: string;
  /** The request's cancellation: a provider stops waiting (for an IdP, a store) when the client goes away. */
  readonly cancel: Cancellation;
}

/**
 * One upstream's source of per-call credentials. Throws a GatewayError: `GW_UPSTREAM_CREDENTIAL_FAILED` (the IdP
 * refused or is unreachable: the reason in `detail`, never on the wire) or a `ConsentRequiredError` (the user must
 * grant access first).
 */
export interface CredentialProvider {
  /** `tokenExchange`, `oauth`, …: for logs and `gatehouse check`. */
  readonly kind: OutboundCredentialKind;
  credentialFor(req: CredentialRequest): Promise<OutboundCredential>;
  /** Drops cached credentials and timers (App.close). */
  close?(): void;
}

/** The providers of the upstreams configured with `credentials:`, by upstream name; the others have none. */
export type CredentialProviders = ReadonlyMap<string, CredentialProvider>;
