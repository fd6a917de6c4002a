/**
 * Every error the gateway can answer with, and the one table that maps each code to what the wire sees.
 *
 * The wire gets the fixed public message (docs/architecture.md §5); the detail goes to logs and audit only.
 * `http` is the status of the HTTP response that carries the error: transport-level failures
 * answer with a 4xx and a JSON-RPC error body without id; protocol-level failures ride in a 200
 * (or in the SSE stream) as a JSON-RPC error response.
 */
export const ErrorCodes = {
  // Edge / transport (Streamable HTTP, MCP 2025-11-25 basic/transports)
  GW_HTTP_ORIGIN_FORBIDDEN: { http: 403, rpc: -32600, message: 'Forbidden origin' },
  GW_HTTP_HOST_FORBIDDEN: { http: 403, rpc: -32600, message: 'Forbidden host' },
  GW_HTTP_BODY_TOO_LARGE: { http: 413, rpc: -32600, message: 'Request body too large' },
  GW_HTTP_NOT_ACCEPTABLE: {
    http: 406,
    rpc: -32600,
    message: 'Not acceptable: the client must accept application/json and text/event-stream',
  },
  GW_HTTP_UNSUPPORTED_MEDIA_TYPE: {
    http: 415,
    rpc: -32600,
    message: 'Unsupported media type: expected application/json',
  },
  GW_HTTP_METHOD_NOT_ALLOWED: { http: 405, rpc: -32600, message: 'Method not allowed' },
  GW_HTTP_NOT_FOUND: { http: 404, rpc: -32600, message: 'Not found' },
  GW_HTTP_TOKEN_IN_QUERY: { http: 400, rpc: -32600, message: 'Access tokens must not be sent in the query string' },
  GW_HTTP_OVERLOADED: { http: 503, rpc: -32603, message: 'Service temporarily overloaded' },
  GW_HTTP_SHUTTING_DOWN: { http: 503, rpc: -32603, message: 'Service is shutting down' },
  /** server.httpRateLimit (edge/http-limits.ts): 429 with Retry-After (RFC 6585 §4). */
  GW_HTTP_RATE_LIMITED: { http: 429, rpc: -32600, message: 'Too many requests' },

  // Policy (docs/architecture.md §4): a valid token without a scope the target needs. The edge answers 403 with an
  // `insufficient_scope` challenge naming the scopes (MCP authorization §Scope Challenge Handling); where HTTP can
  // no longer carry it (a batch), the JSON-RPC error does, with `data.requiredScopes`.
  GW_AUTH_INSUFFICIENT_SCOPE: { http: 403, rpc: -32600, message: 'Forbidden: insufficient scope' },

  // Front door: sessions, versions, JSON-RPC framing
  GW_MCP_SESSION_REQUIRED: { http: 400, rpc: -32600, message: 'Bad Request: Mcp-Session-Id header is required' },
  GW_MCP_SESSION_NOT_FOUND: { http: 404, rpc: -32001, message: 'Session not found' },
  GW_MCP_SESSION_LIMIT: { http: 503, rpc: -32603, message: 'Too many sessions' },
  GW_MCP_SESSION_STORE_UNAVAILABLE: { http: 503, rpc: -32603, message: 'Session store unavailable' },
  GW_MCP_SUBSCRIPTION_LIMIT: { http: 200, rpc: -32600, message: 'Too many subscriptions' },
  /**
   * MCP 2026-07-28 `subscriptions/listen` past `sessions.maxListensPerPrincipal`: refused in-band before the
   * acknowledgement, with the code and text the official SDK server uses (basic/patterns/subscriptions).
   */
  GW_MCP_LISTEN_LIMIT: { http: 200, rpc: -32603, message: 'Subscription limit reached' },
  GW_MCP_STREAM_CONFLICT: { http: 409, rpc: -32600, message: 'Conflict: this session already has an open stream' },
  GW_MCP_PROTOCOL_VERSION_UNSUPPORTED: {
    http: 400,
    rpc: -32600,
    message: 'Bad Request: unsupported MCP-Protocol-Version',
  },
  /**
   * MCP 2026-07-28 (basic/transports/streamable-http §Server Validation): a routing header (`MCP-Protocol-Version`,
   * `Mcp-Method`, `Mcp-Name`) missing, not matching the body, or not a valid header value. Decided before anything.
   */
  GW_MCP_HEADER_MISMATCH: { http: 400, rpc: -32020, message: 'Header mismatch' },
  /** MCP 2026-07-28 (basic §_meta): a request without the required `_meta` fields is malformed: 400, -32602. */
  GW_MCP_META_INVALID: { http: 400, rpc: -32602, message: 'Invalid params: missing or malformed request _meta' },
  /** MCP 2026-07-28 (basic/versioning): a version the gateway does not serve; `data` lists those it does. */
  GW_MCP_VERSION_UNSUPPORTED: { http: 400, rpc: -32022, message: 'Unsupported protocol version' },
  /** MCP 2026-07-28 (transports §Protocol Version Header): a method this generation does not have is a 404. */
  GW_MCP_METHOD_UNKNOWN: { http: 404, rpc: -32601, message: 'Method not found' },
  GW_MCP_BATCH_REJECTED: { http: 400, rpc: -32600, message: 'Bad Request: JSON-RPC batches are not supported' },
  GW_MCP_PARSE_ERROR: { http: 400, rpc: -32700, message: 'Parse error' },
  GW_MCP_INVALID_REQUEST: { http: 400, rpc: -32600, message: 'Invalid Request' },
  GW_MCP_ALREADY_INITIALIZED: {
    http: 400,
    rpc: -32600,
    message: 'Invalid Request: initialize must open a new session',
  },
  GW_MCP_METHOD_NOT_FOUND: { http: 200, rpc: -32601, message: 'Method not found' },
  GW_MCP_INVALID_PARAMS: { http: 200, rpc: -32602, message: 'Invalid params' },
  GW_MCP_INVALID_CURSOR: { http: 200, rpc: -32602, message: 'Invalid cursor' },
  GW_MCP_TOOL_UNKNOWN: { http: 200, rpc: -32602, message: 'Unknown tool' },
  GW_MCP_PROMPT_UNKNOWN: { http: 200, rpc: -32602, message: 'Unknown prompt' },
  GW_MCP_RESOURCE_UNKNOWN: { http: 200, rpc: -32002, message: 'Resource not found' },
  /**
   * An idempotency key (policy `idempotency`, docs/policy.md "Idempotent writes") reused by the same caller for the
   * same tool with other arguments: a client bug, never silently replayed.
   */
  GW_MCP_IDEMPOTENCY_CONFLICT: {
    http: 200,
    rpc: -32602,
    message: 'Invalid params: idempotency key already used with other arguments',
  },
  /** The result-cache / idempotency store could not answer (Redis down) for a write that must be deduplicated. */
  GW_MCP_IDEMPOTENCY_UNAVAILABLE: { http: 200, rpc: -32603, message: 'Idempotency store unavailable' },
  GW_MCP_REQUEST_CANCELLED: { http: 200, rpc: -32800, message: 'Request cancelled' },
  /**
   * MCP 2026-07-28 (basic/patterns/mrtr §requestState): a retry whose `requestState` the gateway did not issue, was
   * altered, expired, or was issued to another principal or for another request. In-band, like any invalid params.
   */
  GW_MCP_REQUEST_STATE_INVALID: { http: 200, rpc: -32602, message: 'Invalid params: requestState failed verification' },
  /** MCP 2026-07-28 (MRTR §Error Handling): `inputResponses` that is not a map of response objects. */
  GW_MCP_INPUT_RESPONSES_INVALID: { http: 200, rpc: -32602, message: 'Invalid params: malformed inputResponses' },
  /**
   * An upstream's input request (2026-07-28 `inputRequests`) the policy does not let it put to this principal: the
   * call fails rather than lose one question (the upstream would only ask again). The rule goes to the audit record.
   */
  GW_MCP_INPUT_DENIED: { http: 200, rpc: -32603, message: 'Input request not allowed' },
  /** A logical request that asked the client for input more than `MAX_INPUT_ROUNDS` times (MRTR: clients cap rounds). */
  GW_MCP_INPUT_ROUNDS_EXCEEDED: { http: 200, rpc: -32603, message: 'Too many rounds of input requests' },
  /**
   * MCP 2026-07-28 (basic §_meta): the request needs a client capability its `_meta` did not declare; `data` lists
   * them (`requiredCapabilities`). Always 400 on HTTP.
   */
  GW_MCP_CLIENT_CAPABILITY_MISSING: { http: 400, rpc: -32021, message: 'Missing required client capability' },

  // Upstream (the message names the tool, never the upstream's own text)
  GW_UPSTREAM_UNAVAILABLE: { http: 200, rpc: -32603, message: 'Upstream unavailable' },
  GW_UPSTREAM_TIMEOUT: { http: 200, rpc: -32603, message: 'Upstream timed out' },
  GW_UPSTREAM_RESPONSE_TOO_LARGE: { http: 200, rpc: -32603, message: 'Upstream response too large' },
  GW_UPSTREAM_PROTOCOL: { http: 200, rpc: -32603, message: 'Upstream protocol error' },
  GW_UPSTREAM_REJECTED: { http: 200, rpc: -32603, message: 'Upstream rejected the request' },
  GW_UPSTREAM_INVALID_PARAMS: { http: 200, rpc: -32602, message: 'Invalid params' },
  GW_UPSTREAM_NOT_FOUND: { http: 200, rpc: -32601, message: 'Method not found' },
  GW_UPSTREAM_ELICITATION_REQUIRED: { http: 200, rpc: -32042, message: 'URL elicitation required' },
  // A 2026-07-28 upstream answered -32021 (basic §_meta): the call needs a client capability the gateway did not declare
  // for it. `data.requiredCapabilities` is the upstream's ClientCapabilities object (shape-checked, never its text); the
  // front door decides what the client hears (-32021 to a 2026 client whose request lacked it, a denial when the policy
  // stripped it). On its own it is a generic server-side failure.
  GW_UPSTREAM_CAPABILITY_REQUIRED: { http: 200, rpc: -32603, message: 'Upstream requires a client capability' },
  // Output validation (docs/configuration.md "Output validation"), `outputValidation: enforce`: the tool declares an
  // outputSchema and its result's structuredContent is missing or does not validate (or a resource's contents carry
  // another MIME type than its listing declares). The schema paths and keywords go to the audit `detail`, never values.
  GW_UPSTREAM_OUTPUT_INVALID: { http: 200, rpc: -32603, message: 'Upstream returned an invalid result' },
  // Upstream resilience (docs/configuration.md "Upstream resilience"): refused locally, before reaching the upstream.
  // Busy: maxInFlight calls running and the maxQueued queue full (or no slot within queueTimeoutMs).
  GW_UPSTREAM_BUSY: { http: 200, rpc: -32603, message: 'Upstream busy, try again later' },
  // Circuit open: the upstream failed breaker.failureThreshold times in a row; `data.retryAfterMs` says when a probe goes.
  GW_UPSTREAM_CIRCUIT_OPEN: { http: 200, rpc: -32603, message: 'Upstream temporarily unavailable' },
  // Outbound identity (docs/authentication.md "Outbound identity"): the caller's credential for the upstream could not
  // be obtained (token exchange refused, IdP down). `data.upstream` names it; the IdP's text goes to the log only.
  GW_UPSTREAM_CREDENTIAL_FAILED: { http: 200, rpc: -32603, message: 'Upstream credential unavailable' },
  // The user has not authorised the gateway at this upstream's own authorization server yet: `data` carries the consent
  // `url` (and `elicitationId`, `upstream`), the shape of a URL-mode elicitation (MCP 2025-11-25, -32042).
  GW_UPSTREAM_CONSENT_REQUIRED: { http: 200, rpc: -32042, message: 'User authorization required for this upstream' },
  // The same, for a client that did not declare URL-mode elicitation (a -32042 would promise one): `data.url` is the
  // consent URL to open in a browser, then the call is retried (docs/authentication.md "Per-user OAuth to upstreams").
  GW_UPSTREAM_CONSENT_URL: { http: 200, rpc: -32603, message: 'User authorization required: open data.url' },

  // Server -> client relaying
  GW_RELAY_CAPABILITY_MISSING: { http: 200, rpc: -32601, message: 'Client does not support this request' },
  // The policy refused the upstream's request (threat model #19). The same answer as a client that did not declare
  // the capability — what an MCP client without a handler answers (-32601) — so it tells the upstream nothing of
  // the policy; the rule and reason go to the audit record.
  GW_RELAY_DENIED: { http: 200, rpc: -32601, message: 'Client does not support this request' },
  GW_RELAY_UNROUTABLE: { http: 200, rpc: -32603, message: 'No client session to route this request to' },
  GW_RELAY_TIMEOUT: { http: 200, rpc: -32603, message: 'Client did not answer in time' },

  // Call limits (docs/configuration.md "Rate limits and quotas"), `data.retryAfterMs` on both. Rate limited is a
  // gateway code outside JSON-RPC's reserved -32768..-32000 (docs/architecture.md §5): the request was fine, the budget
  // is spent (or the calls in flight are at the cap). Limiter unavailable: the limit's store is unreachable and the
  // limit fails closed — a server-side fault, so the generic -32603, with its own message.
  GW_MCP_RATE_LIMITED: { http: 200, rpc: -31000, message: 'Rate limit exceeded' },
  GW_MCP_LIMITER_UNAVAILABLE: { http: 200, rpc: -32603, message: 'Rate limiter unavailable' },

  // Audit (docs/operations.md "Audit records"): with `audit.onFailure: closed`, calls are refused while records cannot
  // be written — nothing happens that is not recorded. A server-side fault: the generic -32603, with its own message.
  GW_AUDIT_UNAVAILABLE: { http: 503, rpc: -32603, message: 'Audit log unavailable' },

  GW_INTERNAL: { http: 500, rpc: -32603, message: 'Internal error' },
} as const satisfies Record<string, { http: number; rpc: number; message: string }>;

export type ErrorCode = keyof typeof ErrorCodes;
