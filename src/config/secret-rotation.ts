/**
 * Secrets that rotate without a restart (docs/configuration.md "Secrets that rotate"). A `fromFile` secret is
 * usually a Kubernetes Secret volume: the file is a symbolic link into `..data/`, which the kubelet swaps atomically
 * when the Secret changes. This watcher notices (fs.watch on the file's folder, debounced, and a periodic stat as
 * the fallback for file systems where watching says nothing), reads the file by the loader's rules, checks the
 * new value for every use it has, and replaces the value in memory (`replaceSecretValue`): everything holding the
 * `SecretValue` reads the new one from its next use, with no file access on the hot path. Calls already sent keep
 * the value they went out with.
 *
 * An unreadable, empty or unusable new file keeps the old value: the old one still works, so the gateway stays
 * ready, and the problem is logged once and shown in `/readyz` detail until the file is good again.
 *
 * What is watched is a fixed list of the uses that read their secret per use (`rotatableSecrets`): upstream static
 * headers, upstream TLS material, `sessions.keys`, the audit HMAC key. Other secrets are read once at start
 * (docs/deployment.md "What rotates without a restart").
 */
import { createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { maxFileBytes, readSecretFile, replaceSecretValue, type SecretResultText } from './secrets.js';
import { parseSessionKey } from './sessions-config.js';
import type { GatehouseConfig, SecretValue } from './types.js';

/** One use of a file-backed secret: where the config holds it, and what a new value must satisfy there. */
export interface WatchedSecret {
  readonly secret: SecretValue;
  /** A readable name of the use, e.g. `upstreams[orders].headers.X-Api-Key`, `sessions.keys[0]`. */
  readonly use: string;
  /** Undefined when the value fits this use; otherwise why not (never quoting the value). */
  readonly check: (value: string) => string | undefined;
}

/** A rotation that took effect. Names the file and its uses, never the value. */
export interface RotationEvent {
  readonly source: string;
  readonly file: string;
  readonly usedBy: readonly string[];
}

/** A changed file that could not be used (`message`), or that is good again (`message` undefined). */
export interface RotationProblem extends RotationEvent {
  readonly message: string | undefined;
}

/** `/readyz` detail: what is watched, and each file whose new content is refused (the old value still serves). */
export interface RotationStatus {
  watched: number;
  rotations: number;
  problems?: { source: string; usedBy: readonly string[]; problem: string; since: string }[];
}

/** The file system as the watcher uses it (tests inject one). */
export interface RotationFs {
  /** What identifies the file's current content without reading it (follows symbolic links); throws when absent. */
  stamp(file: string): string;
  read(file: string, maxBytes: number): SecretResultText;
  /** Calls `onEvent` on any change inside `dir`; undefined when the folder cannot be watched (the poll remains). */
  watch(dir: string, onEvent: () => void): { close(): void } | undefined;
}

export const NODE_ROTATION_FS: RotationFs = {
  stamp(file) {
    const s = fs.statSync(file);
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  },
  read: (file, maxBytes) => readSecretFile(file, maxBytes),
  watch(dir, onEvent) {
    try {
      const w = fs.watch(dir, { persistent: false }, () => onEvent());
      // A watched folder that goes away (an unmounted volume) errors; the poll keeps looking.
      w.on('error', () => w.close());
      return w;
    } catch {
      return undefined;
    }
  },
};

export interface SecretRotationOptions {
  readonly secrets: readonly WatchedSecret[];
  readonly onRotated: (event: RotationEvent) => void;
  readonly onProblem: (problem: RotationProblem) => void;
  readonly fs?: RotationFs;
  /** The stat fallback's period. Default 10 s. */
  readonly intervalMs?: number;
  /** How long a folder must be quiet after an event before its files are read (a swap is several events). Default 250 ms. */
  readonly debounceMs?: number;
  readonly now?: () => number;
}

interface WatchedFile {
  readonly file: string;
  readonly uses: WatchedSecret[];
  stamp: string | undefined;
  problem: { message: string; since: number } | undefined;
}

export class SecretRotation {
  readonly #files = new Map<string, WatchedFile>();
  readonly #fs: RotationFs;
  readonly #now: () => number;
  #watchers: { close(): void }[] = [];
  #poll: NodeJS.Timeout | undefined;
  readonly #debounce = new Map<string, NodeJS.Timeout>();
  #rotations = 0;

  constructor(private readonly opts: SecretRotationOptions) {
    this.#fs = opts.fs ?? NODE_ROTATION_FS;
    this.#now = opts.now ?? Date.now;
    for (const w of opts.secrets) {
      const file = fileOf(w.secret);
      if (file === undefined) continue;
      const entry = this.#files.get(file) ?? { file, uses: [], stamp: undefined, problem: undefined };
      entry.uses.push(w);
      this.#files.set(file, entry);
    }
  }

  /** How many files are watched. */
  get size(): number {
    return this.#files.size;
  }

  /**
   * Reads each file once (a change since the config loaded counts as a rotation), then watches the folders and
   * starts the poll.
   */
  start(): void {
    if (this.#files.size === 0) return;
    this.checkAll();
    for (const dir of new Set([...this.#files.keys()].map((f) => path.dirname(f)))) {
      const w = this.#fs.watch(dir, () => this.#soon(dir));
      if (w !== undefined) this.#watchers.push(w);
    }
    this.#poll = setInterval(() => this.checkAll(), this.opts.intervalMs ?? 10_000);
    this.#poll.unref();
  }

  close(): void {
    if (this.#poll !== undefined) clearInterval(this.#poll);
    this.#poll = undefined;
    for (const t of this.#debounce.values()) clearTimeout(t);
    this.#debounce.clear();
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
  }

  /** Looks at every watched file now (the poll; also for tests and an operator's SIGHUP). */
  checkAll(): void {
    for (const f of this.#files.values()) this.#check(f);
  }

  status(): RotationStatus {
    const problems = [...this.#files.values()]
      .filter((f) => f.problem !== undefined)
      .map((f) => ({
        source: `file:${f.file}`,
        usedBy: f.uses.map((u) => u.use),
        problem: f.problem!.message,
        since: new Date(f.problem!.since).toISOString(),
      }));
    return { watched: this.#files.size, rotations: this.#rotations, ...(problems.length > 0 ? { problems } : {}) };
  }

  /** A folder changed: read its files once it has been quiet for the debounce time. */
  #soon(dir: string): void {
    const pending = this.#debounce.get(dir);
    if (pending !== undefined) clearTimeout(pending);
    const t = setTimeout(() => {
      this.#debounce.delete(dir);
      for (const f of this.#files.values()) if (path.dirname(f.file) === dir) this.#check(f);
    }, this.opts.debounceMs ?? 250);
    t.unref();
    this.#debounce.set(dir, t);
  }

  #stampOf(file: string): string | undefined {
    try {
      return this.#fs.stamp(file);
    } catch {
      return undefined;
    }
  }

  #check(f: WatchedFile): void {
    const stamp = this.#stampOf(f.file);
    if (stamp !== undefined && stamp === f.stamp) return;
    f.stamp = stamp;
    const first = f.uses[0]!.secret;
    const read = this.#fs.read(f.file, maxFileBytes(first));
    const problem = read.ok ? this.#unfit(f, read.value) : read.message;
    if (problem !== undefined) {
      // Said once per distinct problem: the poll sees the same bad file every 10 s.
      if (f.problem?.message !== problem) {
        f.problem = { message: problem, since: this.#now() };
        this.opts.onProblem({ ...this.#event(f), message: problem });
      }
      return;
    }
    const value = (read as { value: string }).value;
    if (f.problem !== undefined) {
      f.problem = undefined;
      this.opts.onProblem({ ...this.#event(f), message: undefined });
    }
    if (value === first.reveal()) return;
    for (const u of f.uses) replaceSecretValue(u.secret, value);
    this.#rotations += 1;
    this.opts.onRotated(this.#event(f));
  }

  #unfit(f: WatchedFile, value: string): string | undefined {
    for (const u of f.uses) {
      const why = u.check(value);
      if (why !== undefined) return `secret file ${f.file} ${why} (${u.use}); the previous value stays in use`;
    }
    return undefined;
  }

  #event(f: WatchedFile): RotationEvent {
    return { source: `file:${f.file}`, file: f.file, usedBy: f.uses.map((u) => u.use) };
  }
}

/** The absolute path of a `fromFile` secret, or undefined for one from the environment (which cannot change). */
function fileOf(secret: SecretValue): string | undefined {
  return secret.source.startsWith('file:') ? secret.source.slice('file:'.length) : undefined;
}

// ─── The uses that rotate ────────────────────────────────────────────────────────────────────────────────

const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

const checks = {
  header: (v: string): string | undefined =>
    HEADER_VALUE.test(v) ? undefined : 'holds characters a header value cannot carry (a line break, a control)',
  privateKey: (v: string): string | undefined => {
    if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/.test(v)) return 'is an encrypted private key';
    try {
      createPrivateKey(v);
      return undefined;
    } catch {
      return 'is not a PEM private key';
    }
  },
  certificates: (v: string): string | undefined => {
    if (!v.includes('-----BEGIN CERTIFICATE-----')) return 'holds no PEM certificate';
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(v)) return 'also holds a private key';
    return undefined;
  },
  sessionKey: (v: string): string | undefined => {
    const parsed = parseSessionKey(v);
    return typeof parsed === 'string' ? `is not a session key: it ${parsed}` : undefined;
  },
  hmacKey: (v: string): string | undefined =>
    Buffer.byteLength(v, 'utf8') < 32 ? 'is shorter than 32 bytes (audit.hashChain.hmacKey)' : undefined,
};

/**
 * The file-backed secrets of `config` whose users read them per use, so that a new value takes effect: upstream
 * static headers, upstream TLS (CA bundle, client certificate, its key), `sessions.keys`, the audit HMAC key.
 */
export function rotatableSecrets(config: GatehouseConfig): WatchedSecret[] {
  const out: WatchedSecret[] = [];
  const add = (secret: SecretValue | undefined, use: string, check: WatchedSecret['check']): void => {
    if (secret !== undefined && fileOf(secret) !== undefined) out.push({ secret, use, check });
  };
  for (const u of config.upstreams) {
    if (u.transport === 'stdio') continue;
    for (const [name, value] of Object.entries(u.headers))
      if (typeof value !== 'string') add(value, `upstreams[${u.name}].headers.${name}`, checks.header);
    add(u.tls?.ca, `upstreams[${u.name}].tls.caFile`, checks.certificates);
    add(u.tls?.cert, `upstreams[${u.name}].tls.certFile`, checks.certificates);
    add(u.tls?.key, `upstreams[${u.name}].tls.key`, checks.privateKey);
  }
  config.sessions?.keys.forEach((k, i) => add(k, `sessions.keys[${i}]`, checks.sessionKey));
  add(config.audit.hashChain.hmacKey, 'audit.hashChain.hmacKey', checks.hmacKey);
  return out;
}
