/**
 * The normalised, frozen configuration that `loadConfig` returns. Field names mirror `gatehouse.yaml`
 * (see `schemas/gatehouse.schema.json`); defaults are filled in and secret references are resolved
 * into `SecretValue`s, whose text never appears in `toString()`/JSON output.
 */

/** A secret read from an environment variable or a file at load time. */
export interface SecretValue {
  /** Where it came from, for messages: `env:NAME` or `file:/abs/path`. Never the value. */
  readonly source: string;
  /** The secret itself. Only upstream/ credential code and the known-secret redactor (known-secrets.ts) read this. */
  reveal(): string;
  /**
   * 0 at load; one more each time the file of a `fromFile` secret changed and its new value replaced the old
   * (src/config/secret-rotation.ts). Whoever derives something from the value (a TLS context, a cipher key) compares
   * it to rebuild: an integer comparison, no file access per use.
   */
  readonly generation: number;
  /** `[secret env:NAME]` — so string interpolation, JSON and `util.inspect` show the source, never the value. */
  toString(): string;
  toJSON(): string;
}

/** A header or env value: plain text (not secret) or a resolved secret reference. */
export type ValueOrSecret = string | SecretValue;

export type UpstreamMode = 'shared' | 'per-session';

/**
 * Which MCP generation the gateway speaks to an upstream (docs/protocol-2026-07-28.md §2.1): `auto` probes with
 * `server/discover` and falls back to `initialize`; `legacy` only initializes (2025 and older); `2026-07-28` requires
 * the stateless generation and fails the connect otherwise.
 */
export type UpstreamProtocol = 'auto' | 'legacy' | '2026-07-28';

/**
 * Plus the resilience keys: breaker, in-flight cap, queue and retries (docs/configuration.md "Upstream resilience").
 */
export interface UpstreamCommon extends UpstreamResilienceConfig {
  /** `^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$` — no `_`, so the exposed-name separator splits unambiguously. */
  readonly name: string;
  /** If true, /readyz fails until this upstream has answered initialize. Default true. */
  readonly required: boolean;
  /** Per-call deadline; on expiry the gateway sends notifications/cancelled upstream. Default 60000. */
  readonly timeoutMs: number;
  /** Upper bound even when progress notifications keep a call alive (MCP lifecycle §Timeouts). Default 300000. */
  readonly maxTotalTimeoutMs: number;
  /** Largest single message (stdio line / HTTP body / SSE event) accepted from this upstream. Default 4 MiB. */
  readonly maxMessageBytes: number;
  /** Which parts of this upstream the catalogue exposes. */
  readonly expose: { readonly tools: boolean; readonly resources: boolean; readonly prompts: boolean };
  /** Tool pinning mode of this upstream; absent: `pinning.mode`. */
  readonly pinning?: PinningMode;
  /**
   * Results checked against what the upstream declares (a tool's `outputSchema`, a listed resource's `mimeType`):
   * `enforce` fails a call whose result does not match, `warn` passes it and records it, `off` does not check.
   * Default `warn` (docs/configuration.md "Output validation").
   */
  readonly outputValidation: OutputValidationMode;
  /** The MCP generation spoken to it (`auto` for legacy SSE means legacy). Default `auto`. */
  readonly protocol: UpstreamProtocol;
}

/** The resilience keys of an upstream (docs/configuration.md "Upstream resilience"; src/upstream/resilience.ts). */
export interface UpstreamResilienceConfig {
  /** Calls in flight to this upstream at once (per instance for per-session upstreams). Default 64. */
  readonly maxInFlight: number;
  /** Calls waiting for a slot beyond that; more fail at once with GW_UPSTREAM_BUSY. 0: no queue. Default 256. */
  readonly maxQueued: number;
  /** Longest wait in that queue (also bounded by the call's maxTotalTimeoutMs). Default 10000. */
  readonly queueTimeoutMs: number;
  /** Opens after `failureThreshold` consecutive timeouts/transport failures/crashes; fails fast for `openMs`. */
  readonly breaker: { readonly enabled: boolean; readonly failureThreshold: number; readonly openMs: number };
  /** Retries of idempotent reads only (the list/read/get methods and `tools`, globs of original tool names). */
  readonly retry: { readonly attempts: number; readonly backoffMs: number; readonly tools: readonly string[] };
}

export interface StdioUpstreamConfig extends UpstreamCommon {
  readonly transport: 'stdio';
  readonly command: string;
  readonly args: readonly string[];
  /** Absolute (resolved against the config file's folder). */
  readonly cwd: string;
  /** Names copied from the gateway's own environment (an allowlist; nothing else is inherited). */
  readonly envAllow: readonly string[];
  /** Variables set for the child (plain or secret). */
  readonly env: Readonly<Record<string, ValueOrSecret>>;
  readonly mode: UpstreamMode;
  readonly restart: { readonly initialDelayMs: number; readonly maxDelayMs: number };
  /** How long to wait after closing stdin before SIGTERM, then before SIGKILL. */
  readonly shutdownGraceMs: number;
}

export interface HttpUpstreamConfig extends UpstreamCommon {
  readonly transport: 'http' | 'sse';
  readonly url: string;
  /** Outbound headers (e.g. a legacy server's static `X-API-Key`), never the client's. */
  readonly headers: Readonly<Record<string, ValueOrSecret>>;
  /**
   * Outbound identity (docs/authentication.md "Outbound identity"): a credential per caller, obtained by the
   * upstream's CredentialProvider (src/outbound/) and sent on each call over the configured headers. Absent: the
   * configured headers only (`outbound: static` in the audit record).
   */
  readonly credentials?: UpstreamCredentialsConfig;
  /** TLS towards an https upstream (src/upstream/upstream-tls.ts): a private CA, mTLS, minimum version, SPKI pins. */
  readonly tls?: UpstreamTlsConfig;
  readonly mode: UpstreamMode;
  readonly restart: { readonly initialDelayMs: number; readonly maxDelayMs: number };
}

/** `upstreams[].tls`, checked at load: the files exist and hold what they should; the key matches the certificate. */
export interface UpstreamTlsConfig {
  /** Absolute path of a PEM CA bundle the upstream's certificate must chain to. */
  readonly caFile?: string;
  /** `replace`: only `caFile` is trusted (a private CA); `add`: `caFile` and Node's public roots. */
  readonly caMode: 'replace' | 'add';
  /** mTLS to the upstream: absolute path of the client certificate chain (PEM) and its key. */
  readonly certFile?: string;
  readonly key?: SecretValue;
  /**
   * The contents of `caFile` and `certFile`, read at load and held live: replaced when the file changes (a Kubernetes
   * Secret volume's swap, src/config/secret-rotation.ts), like `key`. Public material: never redacted.
   */
  readonly ca?: SecretValue;
  readonly cert?: SecretValue;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** RFC 7469-style pins: base64 SHA-256 of a certificate's SubjectPublicKeyInfo; one must match the chain presented. */
  readonly pinnedSpki: readonly string[];
}

export type UpstreamConfig = StdioUpstreamConfig | HttpUpstreamConfig;

/** `upstreams[].credentials`: exactly one source of per-caller credentials. */
export interface UpstreamCredentialsConfig {
  readonly tokenExchange?: TokenExchangeConfig;
  readonly oauth?: UpstreamOAuthConfig;
  readonly idJag?: IdJagConfig;
}

/**
 * Enterprise-managed authorization (MCP extension io.modelcontextprotocol/enterprise-managed-authorization, profile
 * of draft-ietf-oauth-identity-assertion-authz-grant) for one upstream (src/outbound/id-jag/): an ID-JAG from the
 * corporate IdP (RFC 8693), redeemed at the upstream's authorization server (RFC 7523 jwt-bearer).
 */
export interface IdJagConfig {
  /** The corporate IdP: its token endpoint (configured, or discovered from `issuer`) and the gateway's client there. */
  readonly idp: {
    readonly tokenEndpoint?: string;
    readonly issuer?: string;
    readonly clientAuth: TokenEndpointAuthConfig;
  };
  /** The upstream's authorization server: `issuer` is the ID-JAG's `audience`; the gateway's client there. */
  readonly authorizationServer: {
    readonly issuer: string;
    readonly tokenEndpoint?: string;
    readonly clientAuth: TokenEndpointAuthConfig;
  };
  /** The upstream's RFC 9728 resource identifier (default: its url). */
  readonly resource: string;
  /** Space-separated; absent: the IdP's and AS's default. */
  readonly scope?: string;
  readonly timeoutMs: number;
  readonly cacheMaxEntries: number;
  readonly expirySkewSeconds: number;
}

/** RFC 8693 token exchange for one upstream (src/outbound/token-exchange/). */
export interface TokenExchangeConfig {
  /** The token endpoint, configured or discovered from `issuer` (undefined until discovery). */
  readonly tokenEndpoint?: string;
  /** The authorization server's issuer; discovery starts here when `tokenEndpoint` is absent. */
  readonly issuer?: string;
  readonly audience: readonly string[];
  readonly resource: readonly string[];
  /** Space-separated; absent: the AS's default. */
  readonly scope?: string;
  readonly requestedTokenType: string;
  readonly clientAuth: TokenEndpointAuthConfig;
  /** RFC 8693 `actor_token`: `self-signed` names the gateway (its private_key_jwt client) as the actor. */
  readonly actor: 'none' | 'self-signed';
  readonly timeoutMs: number;
  readonly cacheMaxEntries: number;
  readonly expirySkewSeconds: number;
}

/** How the gateway authenticates at a token endpoint: private_key_jwt preferred, client_secret_basic only when unavoidable. */
export type TokenEndpointAuthConfig =
  | {
      readonly method: 'private_key_jwt';
      readonly clientId: string;
      /** A private JWK or a PEM PKCS#8 key. */
      readonly key: SecretValue;
      readonly keyId?: string;
      readonly alg?: 'ES256' | 'ES384' | 'RS256' | 'PS256' | 'EdDSA';
    }
  | {
      readonly method: 'tls_client_auth';
      readonly clientId: string;
      readonly cert: SecretValue;
      readonly key: SecretValue;
    }
  | { readonly method: 'client_secret_basic'; readonly clientId: string; readonly clientSecret: SecretValue };

/**
 * `credentials.oauth`: the gateway is an OAuth 2.1 client of the upstream's own authorization server, one grant per
 * user (src/outbound/user-oauth/; docs/authentication.md "Per-user OAuth to upstreams").
 */
export interface UpstreamOAuthConfig {
  /** RFC 8707 `resource` asked for, canonical; default: the upstream's URL. */
  readonly resource: string;
  /** Scopes asked for; empty: the authorization server's default (or the metadata's `scopes_supported`). */
  readonly scopes: readonly string[];
  /** Dynamic registration (RFC 7591, once per upstream, kept in the grant store) or a client registered by hand. */
  readonly client: UpstreamOAuthClientConfig;
  /** The authorization server's issuer, over what the upstream's RFC 9728 metadata names. */
  readonly authorizationServer?: string;
  /** Deadline of one request to the upstream's metadata or authorization server. Default 10000. */
  readonly timeoutMs: number;
}

export type UpstreamOAuthClientConfig =
  | { readonly registration: 'dynamic' }
  | { readonly clientId: string; readonly clientAuth: 'none' }
  | {
      readonly clientId: string;
      readonly clientAuth: 'client_secret_basic' | 'client_secret_post';
      readonly clientSecret: SecretValue;
    };

/** `outbound` in gatehouse.yaml: settings shared by the upstreams' credential providers. */
export interface OutboundConfig {
  readonly oauth: OutboundOAuthConfig;
}

/** `outbound.oauth`: per-user OAuth to upstreams (docs/configuration.md "Per-user OAuth to upstreams"). */
export interface OutboundOAuthConfig {
  /**
   * The gateway's public origin (and path prefix) the consent and callback URLs are built on; absent: the origin of
   * `auth.resource`. The upstream's authorization server sends the browser to `<base>/oauth/upstream/callback`.
   */
  readonly callbackBaseUrl?: string;
  /** Where grants and registered clients live: `memory` (this replica, lost on restart) or `redis`. */
  readonly store: 'memory' | 'redis';
  /** Keys (32 bytes, base64url) that seal grants at rest: the first seals, all open. Empty: one random key per process. */
  readonly keys: readonly SecretValue[];
  /** How long a consent URL (and the browser's start-to-callback round) stays usable, in seconds. Default 600. */
  readonly consentTtlSeconds: number;
  /** `store: memory` holds at most this many grants. Default 100000. */
  readonly memoryMaxEntries: number;
}

export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  /** The MCP endpoint path. Default `/mcp`. */
  readonly path: string;
  /**
   * Browser origins allowed besides the gateway's own (the origins of `auth.resource` and the built-in issuer; on a
   * loopback listener also `http(s)://127.0.0.1|localhost|[::1]` at its port). Exact strings, as browsers send them.
   */
  readonly allowedOrigins: readonly string[];
  /** `Host` names allowed besides IP literals, loopback names and the hosts of `auth.resource` and the issuer. */
  readonly allowedHosts: readonly string[];
  readonly bodyLimitBytes: number;
  readonly maxSessions: number;
  /** Idle sessions are dropped after this long. Default 30 min. */
  readonly sessionIdleTimeoutMs: number;
  /** SIGTERM: how long in-flight calls may take to finish before connections are closed. */
  readonly shutdownTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** HTTPS (and mTLS) when set. */
  readonly tls?: TlsConfig;
  /**
   * Peers (IPs or CIDRs) whose forwarded headers are believed; everyone else's are ignored. Default `[]`.
   * The loader checks each entry with `node:net` and refuses `0.0.0.0/0` and `::/0`.
   */
  readonly trustedProxies: readonly string[];
  /**
   * RFC 9440 `Client-Cert` (or e.g. `X-Forwarded-Client-Cert`), honoured only from `trustedProxies`.
   * Lower-cased by the loader; set only when `trustedProxies` is not empty.
   */
  readonly forwardedClientCertHeader?: string;
  /** Most TCP connections open at once (Node `server.maxConnections`); sockets beyond it are closed at once. */
  readonly maxConnections: number;
  /**
   * Who sees the body of `/readyz` (upstream names and states, Redis and audit status, policy revision):
   * `loopback` (default: only a socket peer on 127.0.0.0/8 or ::1, e.g. `kubectl exec … curl`), `all`, or `none`.
   * Everyone else gets only `{"status": …}` and the status code, which is all a probe needs.
   */
  readonly readinessDetail: 'loopback' | 'all' | 'none';
  /** HTTP-level rate limits of what is not an MCP call: OAuth endpoints, registration, session creation (edge/http-limits.ts). */
  readonly httpRateLimit: HttpRateLimitConfig;
  /** Back-pressure (`@fastify/under-pressure`): 503 + Retry-After while the process is overloaded (edge/overload.ts). */
  readonly overload: OverloadConfig;
}

/** A fixed window per key: at most `perIp` requests per client address (and `perClient` per client) every `windowSeconds`. */
export interface HttpRateLimitWindow {
  readonly windowSeconds: number;
  readonly perIp: number;
}

export interface HttpRateLimitConfig {
  readonly enabled: boolean;
  /** The built-in authorization server's endpoints (authorize, callback, consent, token, revoke); per OAuth `client_id` too. */
  readonly oauth: HttpRateLimitWindow & { readonly perClient: number };
  /** RFC 7591 dynamic registration, on top of `oauth` (no client exists yet: per address only). */
  readonly registration: HttpRateLimitWindow;
  /** New MCP sessions (POST without `Mcp-Session-Id`); `perClient` counts per authenticated caller (subject + client). */
  readonly sessions: HttpRateLimitWindow & { readonly perClient: number };
  /**
   * Failed authentications (401) on the MCP path per address: past `perIp` in a window, the address is refused
   * (429) before any token is verified until the window ends — a flood of forged tokens costs no verification
   * and no introspection round trip.
   */
  readonly authFailures: HttpRateLimitWindow;
}

export interface OverloadConfig {
  readonly enabled: boolean;
  /** Mean event-loop delay over the last sample (1 s) above which requests are refused. */
  readonly maxEventLoopDelayMs: number;
  /** Absent: 90 % of V8's heap limit (`--max-old-space-size`). */
  readonly maxHeapUsedBytes?: number;
  /** Absent: not checked (set it below the container's memory limit). */
  readonly maxRssBytes?: number;
  readonly retryAfterSeconds: number;
}

export interface CatalogueConfig {
  /** Between the upstream name and the tool/prompt name. Default `__`. */
  readonly separator: string;
  /** Exposed names longer than this are shortened to a readable prefix + hash. Default 64, at most 128. */
  readonly maxNameLength: number;
  /** With a single upstream, expose names without the prefix. Default false. */
  readonly unprefixedSingleUpstream: boolean;
}

/**
 * JWT access tokens checked locally against keys from configured sources only (docs/architecture.md §6).
 * Exactly one of `jwksUri` and `jwksFile` is set (the loader enforces it).
 */
export interface JwtConfig {
  /** Compared exactly with `iss`; https (http only on loopback hosts), no query or fragment. */
  readonly issuer: string;
  /** Fetched with a 5 s timeout, cached, refetched on an unknown `kid` at most every 30 s. */
  readonly jwksUri?: string;
  /** Absolute path of a JWKS file (public keys only; the loader refuses `d`/`k` members), read at start. */
  readonly jwksFile?: string;
  /**
   * Claims a token must carry besides `iss`, `aud`, `exp` and `sub` (always required). `iat` must then be a number,
   * `jti` and `client_id` non-empty strings, any other claim not null. Default: RFC 9068 §2.2's `iat`, `jti`,
   * `client_id` when `requireTokenType` is on, none otherwise (`defaultRequiredClaims`).
   */
  readonly requiredClaims: readonly string[];
  /** Refuse tokens whose `iat` is longer ago than this (plus the skew); needs `iat`. Absent: no limit (the default). */
  readonly maxTokenAgeSeconds?: number;
}

/** Opaque tokens through RFC 7662 introspection, with a short bounded cache. */
export interface IntrospectionConfig {
  readonly endpoint: string;
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: SecretValue;
  /** 0..300, default 30. */
  readonly cacheSeconds: number;
  /** 1..1000000, default 10000. */
  readonly cacheMaxEntries: number;
}

export interface DevAuthConfig {
  /** Absolute path of the generated local signing key (created on first run, never committed). Default `.gatehouse/dev-signing-key.json` in the config folder. */
  readonly keyFile: string;
  /** Any non-empty string. Default `urn:gatehouse:dev`. */
  readonly issuer: string;
}

export interface AuthConfig {
  /**
   * `none`: no authentication, loopback only (with a warning). `dev`: tokens signed by a local key that
   * `gatehouse token` mints, loopback only. `oauth`: tokens from an external authorization server (JWT, introspection or both).
   * `builtin`: tokens from the built-in authorization server (`builtin`), served by the gateway itself.
   */
  readonly mode: 'none' | 'dev' | 'oauth' | 'builtin';
  /**
   * The canonical URI of the MCP endpoint: the audience every token must carry (RFC 8707, RFC 9728 `resource`).
   * Lower-case scheme and host, no default port, no trailing `/` (unless the path is `/`). Default
   * `http(s)://host:port/path` from `server` (https with `tls`, IPv6 in brackets; see `defaultResource`). With
   * `port: 0` that default says `:0` — the real port is only known once listening, so set it outside tests.
   */
  readonly resource: string;
  /**
   * Authorization servers advertised in the protected resource metadata. Default: the `jwt` and
   * `introspection` issuers (mode oauth), `[builtin.issuer]` (mode builtin), `[]` (modes dev and none).
   */
  readonly authorizationServers: readonly string[];
  readonly scopesSupported: readonly string[];
  /** Scopes every request to the MCP endpoint needs (on top of per-tool scopes from policy). */
  readonly requiredScopes: readonly string[];
  /** Asymmetric algorithms only; `none` and HMAC are not expressible. */
  readonly algorithms: readonly string[];
  /** Tolerance on `exp`, `nbf` and `iat` (a future `iat` beyond it is refused), JWT and introspection alike. */
  readonly clockSkewSeconds: number;
  /** Require the JWT header `typ: at+jwt` (RFC 9068). */
  readonly requireTokenType: boolean;
  /** Claim names: where scopes (string or array), groups and the client id are found. */
  readonly claims: { readonly scope: string; readonly groups: string; readonly clientId: string };
  readonly jwt?: JwtConfig;
  readonly introspection?: IntrospectionConfig;
  readonly dev?: DevAuthConfig;
  readonly builtin?: BuiltinAsConfig;
}

export interface TlsConfig {
  /** Absolute path of the server certificate chain (PEM). */
  readonly certFile: string;
  readonly key: SecretValue;
  /** Absolute path of the CA bundle client certificates are checked against (never Node's public roots). */
  readonly clientCaFile?: string;
  readonly clientCertificates: 'none' | 'request' | 'require';
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
}

export interface PolicyConfig {
  /** Absolute path of the policy folder (resolved against the config file's folder); it exists at load time. */
  readonly dir: string;
}

export type PinningMode = 'enforce' | 'warn' | 'off';

/** Per upstream: what a result that breaks its declared outputSchema (or resource MIME type) does (mcp/steps/output.ts). */
export type OutputValidationMode = 'enforce' | 'warn' | 'off';

/**
 * Tool pinning (docs/architecture.md §4, §8): approved tool definitions in `tools.lock`; a changed one is quarantined.
 */
export interface PinningConfig {
  /** `enforce`: new or changed tools are hidden and refused; `warn`: recorded only; `off` (default): not checked. */
  readonly mode: PinningMode;
  /** Absolute path of the lock; default `<policy.dir>/tools.lock`. Absent only when there is neither. */
  readonly lockFile?: string;
}

/** `audit` in gatehouse.yaml (src/audit/): one record per decision and outcome, redacted and hash-chained. */
export interface AuditConfig {
  /** `stdout` (default): JSON lines on standard output, beside the operational logs (`"stream":"audit"`); `file`: `file`. */
  readonly sink: 'stdout' | 'file';
  /** sink file: the absolute path (resolved against the config folder); its folder exists. Reopened on SIGHUP. */
  readonly file?: string;
  /** When records cannot be written: `closed` (default) refuses calls with GW_AUDIT_UNAVAILABLE; `open` goes on and counts the loss. */
  readonly onFailure: 'closed' | 'open';
  readonly hashChain: {
    /** Default true: each record carries `prevHash` and `hash` (`gatehouse audit verify`). */
    readonly enabled: boolean;
    /** HMAC-SHA-256 instead of plain SHA-256, so an editor of the file cannot recompute the chain. */
    readonly hmacKey?: SecretValue;
  };
  /** Extra key names whose values are replaced, and `/regex/flags` patterns replaced inside every string. */
  readonly redact: readonly string[];
}

export interface LoggingConfig {
  readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/**
 * OpenTelemetry metrics and traces (docs/architecture.md §9): `telemetry` in gatehouse.yaml. Everything is off by
 * default.
 */
export interface TelemetryConfig {
  /** `service.name` of the OpenTelemetry resource. Default `gatehouse`. */
  readonly serviceName: string;
  readonly metrics: {
    /** A scrape endpoint on its own listener, never the MCP port. Default off, 127.0.0.1:9464/metrics. */
    readonly prometheus: {
      readonly enabled: boolean;
      readonly host: string;
      readonly port: number;
      readonly path: string;
    };
    /** Push to a collector (OTLP/HTTP): the full URL and the export interval (default 60 s). */
    readonly otlp?: { readonly endpoint: string; readonly intervalMs: number };
  };
  readonly traces: {
    /** Default false; when true the loader requires `otlp.endpoint`. */
    readonly enabled: boolean;
    /** Continue a client's W3C `traceparent` (its trace id; sampling stays ours). Default true. */
    readonly acceptTraceparent: boolean;
    /** 0..1, default 1. */
    readonly sampleRatio: number;
    readonly otlp?: { readonly endpoint: string };
  };
}

export interface GatehouseConfig {
  /** Absolute path of the file it was loaded from. */
  readonly file: string;
  readonly server: ServerConfig;
  readonly auth: AuthConfig;
  readonly catalogue: CatalogueConfig;
  readonly logging: LoggingConfig;
  /**
   * The policy files that decide every request (docs/architecture.md §4, §8). Required unless `auth.mode` is `none`:
   * there, without it, the gateway allows everything (loopback only). With it, no matching rule means deny.
   */
  readonly policy?: PolicyConfig;
  readonly pinning: PinningConfig;
  /**
   * Audit records: where they go, what happens when they cannot be written, the hash chain (docs/operations.md
   * "Audit records").
   */
  readonly audit: AuditConfig;
  /** Metrics and traces; the loader always fills it (optional for configs built in code: absent means all off). */
  readonly telemetry?: TelemetryConfig;
  /** The shared Redis connection (`redis` in gatehouse.yaml); absent: nothing uses Redis through it. */
  readonly redis?: RedisConfig;
  /**
   * MCP call limits (docs/configuration.md "Rate limits and quotas"); the loader always fills it (absent in code-built
   * configs: no rules).
   */
  readonly limits?: LimitsConfig;
  /**
   * Where the policy's `cache:` results and `idempotency:` keys live (docs/configuration.md "Result cache and
   * idempotency"); the loader always fills it (absent in code-built configs: memory with the defaults).
   */
  readonly cache?: CacheConfig;
  /**
   * Session ids any replica can serve (docs/deployment.md "Sessions across replicas"); the loader always fills it
   * (absent in code-built configs: one random key per process, memory store).
   */
  readonly sessions?: SessionsConfig;
  /** Outbound identity settings (`outbound`); the loader always fills it (absent in code-built configs: defaults). */
  readonly outbound?: OutboundConfig;
  readonly upstreams: readonly UpstreamConfig[];
}

/** `sessions` in gatehouse.yaml (docs/architecture.md §7). */
export interface SessionsConfig {
  /** Keys that seal session ids (32 bytes, base64url): the first encrypts, all decrypt. Empty: a random key per process. */
  readonly keys: readonly SecretValue[];
  /** Absolute lifetime of a session, whatever its activity. Default 86400000 (24 h). */
  readonly maxLifetimeMs: number;
  /** Where revocations and idle clocks live: `memory` (this replica) or `redis` (the top-level `redis` connection). */
  readonly store: 'memory' | 'redis';
  /** `store: memory` holds at most this many idle clocks and revocations (src/stores/sessions/memory-session-store.ts). Default 100000. */
  readonly memoryMaxEntries: number;
  /**
   * Sessions one subject (issuer + subject) may hold on this replica; a new one ends the subject's own oldest
   * idle session, or is refused when all are busy (src/mcp/session-admission.ts). Default 100.
   */
  readonly maxPerSubject: number;
  /** Sessions one OAuth client (issuer + client id) may hold on this replica, shared fairly by its subjects. Default 2500. */
  readonly maxPerClient: number;
  /**
   * A session that has not completed `initialize` and made a request within this long after it opened ends
   * (404). Default 60000, never above `server.sessionIdleTimeoutMs`.
   */
  readonly unusedTimeoutMs: number;
  /**
   * `resources/subscribe` URIs one session may hold at once; one more is refused before it reaches the upstream
   * (each is kept by this replica and by the upstream for the session's life). Default 1000.
   */
  readonly maxSubscriptions: number;
  /**
   * MCP 2026-07-28 `subscriptions/listen` streams one principal may hold open on this replica at once; one more is
   * refused before its acknowledgement (-32603 `Subscription limit reached`). Default 32.
   */
  readonly maxListensPerPrincipal: number;
}

/**
 * The built-in authorization server (docs/architecture.md §6): Gatehouse terminates OAuth 2.1 for MCP clients and
 * federates the user's login to the corporate OpenID provider. Loaded from `auth.builtin` when
 * `auth.mode: builtin`.
 */
export interface BuiltinAsConfig {
  /** Our issuer identifier (RFC 8414 §2): defaults to the origin of `auth.resource`. */
  readonly issuer: string;
  /** Private signing keys (JWK JSON, secret references). The first signs; all are published for rotation. */
  readonly signingKeys: readonly SecretValue[];
  readonly accessTokenTtlSeconds: number;
  readonly refreshTokenTtlSeconds: number;
  /** Authorization codes: single use, at most 60 s. */
  readonly codeTtlSeconds: number;
  readonly registration: {
    readonly enabled: boolean;
    /** When set, RFC 7591 registration requires this initial access token. */
    readonly initialAccessToken?: SecretValue;
  };
  /** MCP 2025-11-25 client ID metadata documents (URL-shaped client ids), fetched with SSRF protection. */
  readonly clientIdMetadataDocuments: boolean;
  /** The corporate OpenID provider users log in at. */
  readonly idp: {
    readonly issuer: string;
    readonly clientId: string;
    readonly clientSecret?: SecretValue;
    readonly scopes: readonly string[];
  };
  /** Which of our scopes a user may be granted, from their IdP claims: first match adds its scopes. */
  readonly scopeMapping: readonly {
    readonly claim: string;
    readonly value: string;
    readonly scopes: readonly string[];
  }[];
  /** Pre-registered machine clients for client_credentials (private_key_jwt or RFC 8705 tls_client_auth). */
  readonly clients: readonly {
    readonly clientId: string;
    readonly auth: 'private_key_jwt' | 'tls_client_auth';
    /** private_key_jwt: absolute path of the client's public JWKS. */
    readonly jwksFile?: string;
    /** tls_client_auth: the certificate subject DN that identifies the client (RFC 8705 §2.1.2). */
    readonly tlsSubject?: string;
    readonly scopes: readonly string[];
  }[];
  /** `url` is a secret reference when it carries a password (the loader refuses one written inline). */
  readonly store:
    { readonly kind: 'memory' } | { readonly kind: 'redis'; readonly url: ValueOrSecret; readonly keyPrefix: string };
}

/**
 * The one Redis connection of the gateway (src/stores/redis/redis-client.ts), shared by the parts that keep global
 * state there (rate limits; sessions' revocations). Commands fail fast while Redis is away.
 */
export interface RedisConfig {
  /** `redis://` or `rediss://`; a secret reference when it carries a password (the loader refuses one inline). */
  readonly url: ValueOrSecret;
  /** Prepended to every key written. Default `gatehouse:`. */
  readonly keyPrefix: string;
  /** Default 5000. */
  readonly connectTimeoutMs: number;
  /** A command that takes longer fails (the limit's `onStoreError` decides). Default 1000. */
  readonly commandTimeoutMs: number;
}

export type LimitDimension = 'subject' | 'client' | 'tool' | 'upstream';
export type StoreErrorMode = 'closed' | 'open';

/** A token bucket: `count` calls per `periodMs`, `burst` at once (default `count`). */
export interface RateLimitSpec {
  readonly count: number;
  readonly periodMs: number;
  readonly burst: number;
}

/** One named limit on `tools/call` (docs/configuration.md "Rate limits and quotas"). */
export interface LimitRuleConfig {
  /** `^[A-Za-z0-9._-]{1,64}$`, unique; named in audit records (`rule`) and Redis keys. */
  readonly id: string;
  /** What one budget is counted per; empty: one global budget. */
  readonly per: readonly LimitDimension[];
  /** Globs of exposed tool names this rule covers; absent: every tool. */
  readonly tools?: readonly string[];
  readonly rate?: RateLimitSpec;
  /** Calls in flight at once. */
  readonly concurrency?: number;
  /** What happens when the store cannot answer; default `limits.onStoreError`. */
  readonly onStoreError: StoreErrorMode;
}

export interface LimitsConfig {
  /** `memory` (default; one replica) or `redis` (needs the top-level `redis` section; shared by replicas). */
  readonly store: 'memory' | 'redis';
  /** Default for every rule and for the policy rules' `limits`: `closed` (refuse) or `open` (allow, logged). Default `closed`. */
  readonly onStoreError: StoreErrorMode;
  readonly rules: readonly LimitRuleConfig[];
}

/** The `cache` section: the store of cached results and idempotency keys. */
export interface CacheConfig {
  /** `memory` (this process; bounded, least recently used evicted first) or `redis` (shared by every replica). */
  readonly store: 'memory' | 'redis';
  /** Memory store: most entries (cached results, remembered writes and claims together). */
  readonly maxEntries: number;
  /** Memory store: most bytes of keys and values (UTF-16). */
  readonly maxBytes: number;
}
