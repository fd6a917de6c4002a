/**
 * The normalised, frozen configuration that `loadConfig` returns. Field names mirror `gatehouse.yaml`
 * (see `schemas/gatehouse.schema.json`); defaults are filled in and secret references are resolved
 * into `SecretValue`s, whose text never appears in `toString()`/JSON output.
 */

/** A secret read from an environment variable or a file at load time. */
export interface SecretValue {
  /** Where it came from, for messages: `env:NAME` or `file:/abs/path`. Never the value. */
  readonly source: string;
  /** The secret itself. Only upstream/ credential code reads this. */
  reveal(): string;
  /** `[secret env:NAME]` — so string interpolation, JSON and `util.inspect` show the source, never the value. */
  toString(): string;
  toJSON(): string;
}

/** A header or env value: plain text (not secret) or a resolved secret reference. */
export type ValueOrSecret = string | SecretValue;

export type UpstreamMode = 'shared' | 'per-session';

export interface UpstreamCommon {
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
  readonly mode: UpstreamMode;
  readonly restart: { readonly initialDelayMs: number; readonly maxDelayMs: number };
}

export type UpstreamConfig = StdioUpstreamConfig | HttpUpstreamConfig;

export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  /** The MCP endpoint path. Default `/mcp`. */
  readonly path: string;
  /** Origins allowed besides loopback ones (`http://localhost:*`, `http://127.0.0.1:*`, `http://[::1]:*`). */
  readonly allowedOrigins: readonly string[];
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
  /** Peers (IPs or CIDRs) whose forwarded headers are believed; everyone else's are ignored. */
  readonly trustedProxies: readonly string[];
  /** RFC 9440 `Client-Cert` (or e.g. `X-Forwarded-Client-Cert`), honoured only from `trustedProxies`. */
  readonly forwardedClientCertHeader?: string;
}

export interface CatalogueConfig {
  /** Between the upstream name and the tool/prompt name. Default `__`. */
  readonly separator: string;
  /** Exposed names longer than this are shortened to a readable prefix + hash. Default 64, at most 128. */
  readonly maxNameLength: number;
  /** With a single upstream, expose names without the prefix. Default false. */
  readonly unprefixedSingleUpstream: boolean;
}

/** JWT access tokens checked locally against keys from configured sources only (DESIGN.md §6). */
export interface JwtConfig {
  readonly issuer: string;
  /** Fetched with a 5 s timeout, cached, refetched on an unknown `kid` at most every 30 s. */
  readonly jwksUri?: string;
  /** Absolute path of a JWKS file (public keys), read at start. */
  readonly jwksFile?: string;
}

/** Opaque tokens through RFC 7662 introspection, with a short bounded cache. */
export interface IntrospectionConfig {
  readonly endpoint: string;
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: SecretValue;
  readonly cacheSeconds: number;
  readonly cacheMaxEntries: number;
}

export interface DevAuthConfig {
  /** Absolute path of the generated local signing key (created on first run, never committed). */
  readonly keyFile: string;
  readonly issuer: string;
}

export interface AuthConfig {
  /**
   * `none`: no authentication, loopback only (with a warning). `dev`: tokens signed by a local key that
   * `gatehouse token` mints, loopback only. `oauth`: tokens from an external authorization server (JWT, introspection or both).
   */
  readonly mode: 'none' | 'dev' | 'oauth';
  /** The canonical URI of the MCP endpoint: the audience every token must carry (RFC 8707, RFC 9728 `resource`). */
  readonly resource: string;
  /** Authorization servers advertised in the protected resource metadata. */
  readonly authorizationServers: readonly string[];
  readonly scopesSupported: readonly string[];
  /** Scopes every request to the MCP endpoint needs (on top of per-tool scopes from policy). */
  readonly requiredScopes: readonly string[];
  /** Asymmetric algorithms only; `none` and HMAC are not expressible. */
  readonly algorithms: readonly string[];
  readonly clockSkewSeconds: number;
  /** Require the JWT header `typ: at+jwt` (RFC 9068). */
  readonly requireTokenType: boolean;
  /** Claim names: where scopes (string or array), groups and the client id are found. */
  readonly claims: { readonly scope: string; readonly groups: string; readonly clientId: string };
  readonly jwt?: JwtConfig;
  readonly introspection?: IntrospectionConfig;
  readonly dev?: DevAuthConfig;
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

export interface LoggingConfig {
  readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export interface GatehouseConfig {
  /** Absolute path of the file it was loaded from. */
  readonly file: string;
  readonly server: ServerConfig;
  readonly auth: AuthConfig;
  readonly catalogue: CatalogueConfig;
  readonly logging: LoggingConfig;
  readonly upstreams: readonly UpstreamConfig[];
}
