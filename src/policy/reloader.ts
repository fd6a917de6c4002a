/**
 * Hot reload of `policy.dir` (docs/architecture.md §8: "swapped atomically on change; a bad file keeps the old policy
 * running and says what is wrong, where"). Watches the folder (debounced), and reloads on demand (SIGHUP).
 * Each reload compiles the whole set with `reloadPolicy`; the outcome goes to `onReload`, which the
 * composition root turns into a log line, an audit record and list_changed announcements.
 */
import fs from 'node:fs';
import { formatProblem } from '../errors/config-error.js';
import { reloadPolicy, type CompiledPolicyEngine } from './engine.js';

/** What `/readyz` and operators see of the reloads since start. */
export interface PolicyReloadStatus {
  /** The revision serving now. */
  readonly revision: string;
  /** The problems of the last failed reload (`file:line: /path: message`, one per line), cleared by a good one. */
  readonly lastError?: string;
  /** ISO time of the last reload attempt (or of the start-up load). */
  readonly lastReloadAt: string;
  /** Failed reloads since start. */
  readonly failures: number;
}

export type PolicyReloadOutcome =
  | {
      readonly ok: true;
      readonly previous: string;
      readonly revision: string;
      readonly changed: boolean;
      readonly trigger: string;
    }
  | { readonly ok: false; readonly error: string; readonly revision: string; readonly trigger: string };

export interface PolicyReloaderOptions {
  readonly dir: string;
  readonly engine: CompiledPolicyEngine;
  readonly onReload: (outcome: PolicyReloadOutcome) => void;
  /** Quiet time after the last file event before reloading. Default 200 ms. */
  readonly debounceMs?: number;
  readonly now?: () => number;
}

export class PolicyReloader {
  #status: PolicyReloadStatus;
  #watcher: fs.FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #now: () => number;

  constructor(private readonly opts: PolicyReloaderOptions) {
    this.#now = opts.now ?? Date.now;
    this.#status = Object.freeze({
      revision: opts.engine.revision,
      lastReloadAt: new Date(this.#now()).toISOString(),
      failures: 0,
    });
  }

  get status(): PolicyReloadStatus {
    return this.#status;
  }

  /** Starts watching the folder. A folder that cannot be watched is reported by the caller; SIGHUP still works. */
  watch(): void {
    if (this.#watcher) return;
    this.#watcher = fs.watch(this.opts.dir, { persistent: false }, () => this.#schedule());
    this.#watcher.on('error', () => undefined);
  }

  #schedule(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.reload('watch');
    }, this.opts.debounceMs ?? 200);
    this.#timer.unref();
  }

  /** One reload now (`trigger`: `watch`, `SIGHUP`, …). Never throws. */
  reload(trigger: string): PolicyReloadOutcome {
    let outcome: PolicyReloadOutcome;
    const at = new Date(this.#now()).toISOString();
    try {
      const r = reloadPolicy(this.opts.dir, this.opts.engine);
      if (r.ok) {
        outcome = { ok: true, previous: r.previous, revision: r.revision, changed: r.changed, trigger };
        this.#status = Object.freeze({ revision: r.revision, lastReloadAt: at, failures: this.#status.failures });
      } else {
        outcome = {
          ok: false,
          error: r.error.problems.map(formatProblem).join('\n'),
          revision: this.opts.engine.revision,
          trigger,
        };
      }
    } catch (err) {
      // e.g. the folder itself vanished: not a ConfigError, but the running policy stays all the same.
      outcome = {
        ok: false,
        error: `${this.opts.dir}: ${err instanceof Error ? err.message : String(err)}`,
        revision: this.opts.engine.revision,
        trigger,
      };
    }
    if (!outcome.ok) {
      this.#status = Object.freeze({
        revision: this.opts.engine.revision,
        lastError: outcome.error,
        lastReloadAt: at,
        failures: this.#status.failures + 1,
      });
    }
    this.opts.onReload(outcome);
    return outcome;
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#watcher?.close();
    this.#watcher = undefined;
  }
}
