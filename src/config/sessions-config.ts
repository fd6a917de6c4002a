import type { SecretRef } from './secrets.js';
import type { SecretValue, SessionsConfig } from './types.js';

/**
 * The `sessions` section's defaults (spread into `CONFIG_DEFAULTS`; the schema's `default` annotations repeat
 * them and test/unit/config.test.ts keeps both equal). No keys: one random key per process.
 */
export const SESSIONS_DEFAULTS = {
  sessions: {
    keys: [] as never[],
    maxLifetimeMs: 24 * 60 * 60_000,
    store: 'memory' as const,
    memoryMaxEntries: 100_000,
    maxPerSubject: 100,
    maxPerClient: 2_500,
    unusedTimeoutMs: 60_000,
    maxSubscriptions: 1_000,
    maxListensPerPrincipal: 32,
  },
} as const;

/** `sessions` as written (the schema has checked the shapes and ranges). */
export interface RawSessions {
  keys?: SecretRef[];
  maxLifetimeMs?: number;
  store?: SessionsConfig['store'];
  memoryMaxEntries?: number;
  maxPerSubject?: number;
  maxPerClient?: number;
  unusedTimeoutMs?: number;
  maxSubscriptions?: number;
  maxListensPerPrincipal?: number;
}

export interface SessionsContext {
  /** Resolves one reference, reporting a failure itself (undefined then). */
  resolveSecret(ref: SecretRef, pointer: string): SecretValue | undefined;
  report(pointer: string, message: string): void;
  /** Whether the top-level `redis` section is present (a Redis store needs the connection it describes). */
  hasRedis: boolean;
  /** `server.sessionIdleTimeoutMs`: a session not yet used never gets longer than an idle one. */
  idleTimeoutMs: number;
}

/**
 * Fills the defaults and checks what the schema cannot: every key decodes to 32 bytes (A256GCM, RFC 7518 §5.3),
 * no key is listed twice, and a Redis store has a Redis connection. Messages name the key's place and source,
 * never its value.
 */
export function normaliseSessions(raw: RawSessions, ctx: SessionsContext): SessionsConfig {
  const d = SESSIONS_DEFAULTS.sessions;
  const keys: SecretValue[] = [];
  const seen = new Map<string, number>();
  (raw.keys ?? []).forEach((ref, i) => {
    const pointer = `/sessions/keys/${i}`;
    const key = ctx.resolveSecret(ref, pointer);
    if (key === undefined) return;
    const parsed = parseSessionKey(key.reveal());
    if (typeof parsed === 'string') {
      ctx.report(pointer, `session key ${key.source} ${parsed}`);
      return;
    }
    const text = Buffer.from(parsed).toString('base64url');
    const first = seen.get(text);
    if (first !== undefined) ctx.report(pointer, `is the same key as /sessions/keys/${first}`);
    seen.set(text, i);
    keys.push(key);
  });
  const store = raw.store ?? d.store;
  if (store === 'redis' && !ctx.hasRedis)
    ctx.report('/sessions/store', 'is "redis" but there is no top-level redis section (redis.url) to connect with');
  if (raw.unusedTimeoutMs !== undefined && raw.unusedTimeoutMs > ctx.idleTimeoutMs) {
    ctx.report(
      '/sessions/unusedTimeoutMs',
      `must not exceed server.sessionIdleTimeoutMs (${ctx.idleTimeoutMs}): it is the shorter clock of sessions never used`,
    );
  }
  return {
    keys,
    maxLifetimeMs: raw.maxLifetimeMs ?? d.maxLifetimeMs,
    store,
    memoryMaxEntries: raw.memoryMaxEntries ?? d.memoryMaxEntries,
    maxPerSubject: raw.maxPerSubject ?? d.maxPerSubject,
    maxPerClient: raw.maxPerClient ?? d.maxPerClient,
    // Left at its default, it follows a shorter idle timeout down instead of making that setting an error.
    unusedTimeoutMs: raw.unusedTimeoutMs ?? Math.min(d.unusedTimeoutMs, ctx.idleTimeoutMs),
    maxSubscriptions: raw.maxSubscriptions ?? d.maxSubscriptions,
    maxListensPerPrincipal: raw.maxListensPerPrincipal ?? d.maxListensPerPrincipal,
  };
}

/** Key length of A256GCM (RFC 7518 §5.3). */
export const SESSION_KEY_BYTES = 32;

/**
 * A key from `sessions.keys`: base64url (RFC 4648 §5, padding allowed) of exactly 32 bytes. Returns the key,
 * or a message for the loader that never quotes the value.
 */
export function parseSessionKey(text: string): Uint8Array | string {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(trimmed))
    return 'must be base64url (A-Z a-z 0-9 - _), e.g. from `openssl rand -base64 32 | tr "+/" "-_"`';
  const bytes = Buffer.from(trimmed, 'base64url');
  if (bytes.length !== SESSION_KEY_BYTES)
    return `must decode to exactly ${SESSION_KEY_BYTES} bytes (this one decodes to ${bytes.length})`;
  return new Uint8Array(bytes);
}

/** The raw key bytes of a normalised config (the loader has checked each one). */
export function sessionKeyBytes(config: SessionsConfig): Uint8Array[] {
  return config.keys.map((k) => {
    const parsed = parseSessionKey(k.reveal());
    if (typeof parsed === 'string') throw new TypeError(`session key ${k.source} ${parsed}`);
    return parsed;
  });
}

/**
 * The keys of `sessions.keys` as they are now: files that rotate replace their values in memory
 * (secret-rotation.ts), and the session codec asks `stamp` (their generations) on each use to notice.
 */
export function liveSessionKeys(config: SessionsConfig): { stamp(): string; keys(): Uint8Array[] } {
  return {
    stamp: () => config.keys.map((k) => k.generation).join(','),
    keys: () => sessionKeyBytes(config),
  };
}
