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
}

export interface CatalogueConfig {
  /** Between the upstream name and the tool/prompt name. Default `__`. */
  readonly separator: string;
  /** Exposed names longer than this are shortened to a readable prefix + hash. Default 64, at most 128. */
  readonly maxNameLength: number;
  /** With a single upstream, expose names without the prefix. Default false. */
  readonly unprefixedSingleUpstream: boolean;
}

export interface AuthConfig {
  /** Until the auth issue lands: `none`, allowed only on a loopback host (with a warning). */
  readonly mode: 'none';
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
