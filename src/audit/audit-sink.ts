import type { Logger } from 'pino';

/**
 * One record per decision and per outcome (docs/architecture.md §9). The audit issue adds the hash chain, redaction and
 * file sinks; the shape and the rule — fire and forget, never throws into the request path — start here.
 */
export interface AuditEvent {
  type:
    | 'mcp.request'
    /** A request an upstream sent the client (sampling, elicitation, roots): its decision and how it ended. */
    | 'mcp.relay'
    | 'mcp.session'
    | 'upstream.state'
    | 'config'
    | 'auth.failure'
    /**
     * Tool pinning (docs/architecture.md §8): a tool quarantined, warned about, released, or a pin whose tool is gone.
     */
    | 'tool.pin.quarantined'
    | 'tool.pin.warn'
    | 'tool.pin.released'
    | 'tool.pin.unpinned'
    /** Instruction-like or invisible text in a new or changed tool definition (findings in `detail`). */
    | 'tool.scan'
    /** The edge refused a request or connection before any MCP handling (`reason`: rate_limited, overloaded, max_sessions, …). */
    | 'http.rejected'
    /** The first record of a process's hash chain (src/audit/chain.ts): what it continues, in `detail`. */
    | 'chain.start'
    /** A shared store's connection went down or came back (`detail`: `redis up` / `redis down: <error>`). */
    | 'store.state'
    /** The audit output itself failed or recovered (`outcome`), with the records lost meanwhile in `lost`. */
    | 'audit.sink'
    /**
     * Per-user OAuth to an upstream (src/outbound/user-oauth/): a consent asked for, started, granted or refused, a
     * grant refreshed, dropped or revoked (`reason`: what happened; `detail`: why a flow was refused). Never a token.
     */
    | 'upstream.grant'
    /**
     * A `fromFile` secret whose file changed (src/config/secret-rotation.ts): `outcome: ok` when the new value took
     * effect, `error` when it was refused and the previous value stays in use (`detail`: why). `source` names the
     * file and `usedBy` what reads it; never the value.
     */
    | 'secret.rotated';
  /**
   * auth.failure: why (AuthFailureReason), and the HTTP status answered. Never the token.
   * mcp.request with `decision: deny`: the deny reason (no_matching_rule, denied_by_rule, insufficient_scope,
   * invalid_arguments, quarantined, or unknown_tool / unknown_prompt / unknown_resource for a target that does not exist).
   */
  reason?: string;
  status?: number;
  remoteAddress?: string;
  certThumbprint?: string;
  requestId?: string;
  session?: string;
  /** The MCP protocol version the request was made in (a 2025 session's, or a 2026-07-28 request's own). */
  protocolVersion?: string;
  subject?: string;
  clientId?: string;
  method?: string;
  tool?: string;
  resource?: string;
  prompt?: string;
  /**
   * mcp.relay: the upstream's request as the policy names it (`sampling/createMessage`, `elicitation/create:form`,
   * `elicitation/create:url`, `roots/list`); absent for a request the gateway does not relay.
   */
  relay?: string;
  upstream?: string;
  /** The call's arguments with every field the policy marks `redact` replaced (allowed calls only); never as sent. */
  arguments?: Record<string, unknown>;
  decision?: 'allow' | 'deny';
  rule?: string;
  policyRevision?: string;
  outcome?: 'ok' | 'error' | 'denied' | 'cancelled';
  errorCode?: string;
  detail?: string;
  durationMs?: number;
  /** http.rejected: how many refusals this record stands for, when more than one (coalesced under a flood; edge/rejection-recorder.ts). */
  count?: number;
  /** tool.pin.*: the approved hash (from the lock) and the hash of the definition listed now. */
  oldHash?: string;
  newHash?: string;
  /** audit.sink: records that could not be written since the previous audit.sink record. */
  lost?: number;
  /**
   * mcp.request that reached the credentials step (a forwarded call): which outbound credential it carried —
   * `static` (the upstream's configured headers), `exchanged` (RFC 8693 token exchange), `user-grant` (the user's
   * own OAuth grant at the upstream), `id-jag`. Never the credential itself. (Not named `credential`: the redactor
   * blanks every key containing that word, audit/redact.ts.)
   */
  outbound?: 'static' | 'exchanged' | 'user-grant' | 'id-jag';
  /**
   * mcp.request of a tool that declares an `outputSchema` (or a listed resource with a `mimeType`) at an upstream with
   * `outputValidation` warn or enforce: whether the result matched (mcp/steps/output.ts). When false, `detail` says
   * where and which keyword (never the values).
   */
  outputValid?: boolean;
  /**
   * mcp.request of a call whose policy declares `cache:` (docs/policy.md "Result cache"): `hit` (answered from the
   * cache or from an identical call in flight; the upstream was not called), `miss` (forwarded), `bypass` (the cache
   * store could not answer; forwarded).
   */
  cache?: 'hit' | 'miss' | 'bypass';
  /**
   * mcp.request of a call carrying the idempotency key its policy names (docs/policy.md "Idempotent writes"): `first`
   * (forwarded), `replay` (the first call's result, not forwarded), `conflict` (the key was used with other arguments).
   */
  idempotency?: 'first' | 'replay' | 'conflict';
  /** With a per-user credential: the subject the upstream sees (e.g. the exchanged token's `sub`). */
  upstreamSubject?: string;
  /** secret.rotated: where the secret comes from (`file:/run/secrets/…`). Never the value. */
  source?: string;
  /** secret.rotated: what uses it (`upstreams[crm].headers.X-Api-Key`, `sessions.keys[0]`, `audit.hashChain.hmacKey`). */
  usedBy?: readonly string[];
}

export interface AuditSink {
  /** Fire and forget: never throws, never waits for the disk (docs/architecture.md §1 ⑦). */
  record(event: AuditEvent): void;
  /**
   * False while the sink cannot write and `audit.onFailure` is `closed`: the front door then refuses calls
   * (GW_AUDIT_UNAVAILABLE) until it recovers. Absent: always accepting.
   */
  accepting?(): boolean;
}

/** Writes records through a pino logger of their own (kept apart from operational logs by the caller). */
export class LoggerAuditSink implements AuditSink {
  constructor(private readonly logger: Logger) {}

  record(event: AuditEvent): void {
    try {
      this.logger.info({ audit: event }, event.type);
    } catch {
      // Recording never fails a call (docs/architecture.md §1 ⑦); the audit issue adds loss counting.
    }
  }
}

export class NullAuditSink implements AuditSink {
  record(): void {}
}

/**
 * Counts by label (e.g. auth failures by reason) until the metrics issue exports them as OpenTelemetry
 * counters; a bounded label set, so memory stays flat.
 */
export class ReasonCounter {
  private readonly counts = new Map<string, number>();

  inc(reason: string): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}
