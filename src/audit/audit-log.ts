/**
 * The production audit sink: each event is redacted (built-in credential shapes + `audit.redact`), sealed into
 * the hash chain, serialised once as a JSON line in pino's shape (level info always: the operational
 * `logging.level` never drops a record) and handed to its output — stdout or a file. `record` does all of that synchronously
 * and never throws; only the write is asynchronous.
 *
 * When the output fails: `onFailure: closed` makes `accepting()` false, so the front door refuses calls with
 * GW_AUDIT_UNAVAILABLE until a write succeeds again; `open` lets calls go on. Either way records keep queueing
 * (bounded); what does not fit is counted in `lost` — before it is chained, so the chain on disk stays intact —
 * logged at most every 30 s, and written as an `audit.sink` record once the output recovers. Never silent.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditEvent, AuditSink } from './audit-sink.js';
import { HashChain, type ChainHead } from './chain.js';
import type { AuditOutput, OutputEvents } from './file-sink.js';
import type { Redactor } from './redact.js';

/** pino's info level, first on every line (as the operational log's lines); the hash covers it too. */
const LEVEL_INFO = 30;
const LOSS_LOG_INTERVAL_MS = 30_000;

export interface AuditLogOptions {
  /** Built from the events this log passes in (so the output can report failure and recovery). */
  output: (events: OutputEvents) => AuditOutput;
  sink: 'stdout' | 'file';
  onFailure: 'closed' | 'open';
  redact: Redactor;
  /** Operational logger: sink failures and losses are reported there (never a record's content). */
  logger: Logger;
  /** Omit to write records without a hash chain (`audit.hashChain.enabled: false`). */
  chain?: {
    /**
     * `audit.hashChain.hmacKey`: records are then HMAC-SHA-256, not plain SHA-256. A live value (a SecretValue) is
     * looked at on every record: when its file rotated, the next record is sealed with the new key under its `kid`.
     */
    key?: string | { reveal(): string; readonly generation: number };
    /** The last record already in the file (read at start), which this process's chain continues. */
    previous?: ChainHead;
    /** Why `previous` is absent although the file had records (for the chain.start record). */
    previousUnknown?: string;
    id?: string;
  };
  now?: () => number;
}

export interface AuditLogStatus {
  sink: 'stdout' | 'file';
  onFailure: 'closed' | 'open';
  failing: boolean;
  /** Records not written since start (queue full while the output failed, or a serialisation error). */
  lost: number;
  chain?: ChainHead;
}

export class AuditLog implements AuditSink {
  private lostCount = 0;
  private lostSinceRecord = 0;
  private lastLossLog = 0;
  private failingSince: number | undefined;
  private lastError: string | undefined;
  private readonly output: AuditOutput;
  private readonly chain: HashChain | undefined;
  /** The chain id as JSON text (the same in every record). */
  private readonly chainJson: string = '';
  private readonly now: () => number;
  /** A live HMAC key and the generation the chain was keyed with. */
  private readonly liveKey: { reveal(): string; readonly generation: number } | undefined;
  private keyGeneration = 0;

  constructor(private readonly opts: AuditLogOptions) {
    this.now = opts.now ?? Date.now;
    this.output = opts.output({ onFailure: (err) => this.failed(err), onRecovery: () => this.recovered() });
    const c = opts.chain;
    if (c !== undefined) {
      if (c.key !== undefined && typeof c.key !== 'string') {
        this.liveKey = c.key;
        this.keyGeneration = c.key.generation;
      }
      const key = typeof c.key === 'string' ? c.key : c.key?.reveal();
      this.chain = new HashChain({
        id: c.id ?? randomUUID(),
        ...(key !== undefined ? { key } : {}),
        ...(c.previous !== undefined ? { previous: c.previous.hash } : {}),
      });
      this.chainJson = JSON.stringify(this.chain.id);
      const continues =
        c.previous !== undefined
          ? `continues chain ${c.previous.chain} after seq ${c.previous.seq}`
          : opts.sink === 'stdout'
            ? 'new chain: a stdout sink cannot read the previous head'
            : (c.previousUnknown ?? 'new chain: the file had no records');
      this.record({
        type: 'chain.start',
        outcome: 'ok',
        detail: `${continues}; host ${hostname()} pid ${process.pid}; ${key !== undefined ? `hmac-sha256 key ${this.chain.kid}` : 'sha256'}`,
      });
    }
  }

  /** Records lost since start (a counter for metrics). */
  get lost(): number {
    return this.lostCount;
  }

  accepting(): boolean {
    return this.opts.onFailure === 'open' || (!this.output.failing && this.output.backlogged !== true);
  }

  status(): AuditLogStatus {
    return {
      sink: this.opts.sink,
      onFailure: this.opts.onFailure,
      failing: this.output.failing,
      lost: this.lostCount,
      ...(this.chain !== undefined ? { chain: this.chain.head } : {}),
    };
  }

  record(event: AuditEvent): void {
    // An output reports failure or recovery from inside its write, and the owner records that: such a record
    // waits until the one being written is done, or it would be chained after a record that then gets rewound.
    if (this.recording) {
      this.reentrant.push(event);
      return;
    }
    this.recording = true;
    try {
      this.noteLoss();
      // Written: if records were lost while the output was behind, the gap is recorded right after.
      if (this.write(event)) this.noteLoss();
    } finally {
      this.recording = false;
    }
    const next = this.reentrant.shift();
    if (next !== undefined) this.record(next);
  }

  private recording = false;
  /** At most the failure and the recovery record of the output (one each per write). */
  private readonly reentrant: AuditEvent[] = [];

  /**
   * Redacts, seals and writes one record; false (counted lost, un-chained) when it was not written. The redacted
   * event is serialised once, as canonical JSON (JSON.stringify escaping: a newline or `"}` in a value cannot
   * start another record): that text is both hashed (inside the record's canonical body) and written. The line
   * keeps pino's shape — `{"level":30,"stream":"audit","time":…,"audit":…,"chain":…,"seq":…,"prevHash":…,"hash":…}`
   * — so `gatehouse audit verify` and log shippers read it as before.
   */
  private write(event: AuditEvent): boolean {
    try {
      const audit = this.opts.redact.json(event);
      const time = this.timeText(this.now());
      let line = `{"level":${LEVEL_INFO},"stream":"audit","time":${time},"audit":${audit}`;
      const head = this.chain?.head;
      if (this.liveKey !== undefined && this.liveKey.generation !== this.keyGeneration) {
        // The key file rotated (secret-rotation.ts): this record is the first sealed with the new key.
        this.keyGeneration = this.liveKey.generation;
        this.chain!.setKey(this.liveKey.reveal());
      }
      if (this.chain !== undefined) {
        // The hashed body is this line's canonical JSON without `hash`: its members in code-unit order (audit,
        // chain, kid, level, prevHash, seq, stream, time), spelled out rather than sorted per record — what
        // `recordHash` computes from the line read back (test/unit/audit-fast-paths.test.ts checks it).
        const chainJson = this.chainJson;
        const kid = this.chain.kid !== undefined ? `"kid":${JSON.stringify(this.chain.kid)},` : '';
        const m = this.chain.sealCanonical(
          (_chain, seq, prevHash) =>
            `{"audit":${audit},"chain":${chainJson},${kid}"level":${LEVEL_INFO},"prevHash":${JSON.stringify(prevHash)},"seq":${seq},"stream":"audit","time":${time}}`,
        );
        line += `,"chain":${chainJson},${kid}"seq":${m.seq},"prevHash":${JSON.stringify(m.prevHash)},"hash":${JSON.stringify(m.hash)}`;
      }
      if (!this.output.write(`${line}}\n`)) {
        // The output refused it (queue full, or the write failed): un-chain it, so the chain on disk has no gap —
        // the loss is counted and recorded (audit.sink `lost`) instead.
        if (head !== undefined) this.chain!.rewind(head);
        this.lose(1);
        return false;
      }
      return true;
    } catch (err) {
      // A record that cannot be serialised is lost, counted and logged — the call goes on.
      this.lastError = err instanceof Error ? err.message : String(err);
      this.lose(1);
      return false;
    }
  }

  private lastTimeMs = Number.NaN;
  private lastTime = '';

  /** The record's `time` as JSON text; records in the same millisecond share it (toISOString is one of the costlier steps of a record). */
  private timeText(ms: number): string {
    if (ms !== this.lastTimeMs) {
      this.lastTimeMs = ms;
      this.lastTime = JSON.stringify(new Date(ms).toISOString());
    }
    return this.lastTime;
  }

  /** SIGHUP after rotation: the next record goes to a new file at the configured path (the chain continues). */
  reopen(): void {
    this.output.reopen();
  }

  flush(timeoutMs?: number): Promise<void> {
    return this.output.flush(timeoutMs);
  }

  async close(timeoutMs?: number): Promise<void> {
    await this.output.close(timeoutMs);
    // Shutting down while the output fails: what is still queued is gone — say so (never silent).
    if (this.output.unwrittenBytes > 0)
      this.opts.logger.error(
        { sink: this.opts.sink, unwrittenBytes: this.output.unwrittenBytes, lost: this.lostCount },
        'audit sink closed with records not written',
      );
  }

  /**
   * Records refused while the output was writing but behind (a slow disk or stdout reader, not a failure: no
   * recovery event follows) are written down as an `audit.sink` record once it has room again, so the gap is in
   * the trail itself.
   */
  private noteLoss(): void {
    if (this.lostSinceRecord === 0 || this.output.failing || this.output.backlogged === true) return;
    const lost = this.lostSinceRecord;
    this.lostSinceRecord = 0;
    this.write({
      type: 'audit.sink',
      outcome: 'error',
      lost,
      detail: `${lost} record${lost === 1 ? '' : 's'} lost: the output fell behind (backlog full)`,
    });
  }

  private lose(n: number): void {
    this.lostCount += n;
    this.lostSinceRecord += n;
    const t = this.now();
    if (t - this.lastLossLog >= LOSS_LOG_INTERVAL_MS) {
      this.lastLossLog = t;
      this.opts.logger.error(
        { sink: this.opts.sink, lost: this.lostCount, error: this.lastError },
        'audit records lost',
      );
    }
  }

  private failed(err: NodeJS.ErrnoException): void {
    this.failingSince = this.now();
    this.lastError = err.code ?? err.message;
    this.opts.logger.error(
      { sink: this.opts.sink, error: this.lastError, onFailure: this.opts.onFailure },
      this.opts.onFailure === 'closed'
        ? 'audit sink failing: calls are refused until it recovers'
        : 'audit sink failing: calls go on (audit.onFailure open), records may be lost',
    );
    this.record({ type: 'audit.sink', outcome: 'error', detail: `write failed: ${this.lastError}` });
  }

  private recovered(): void {
    const since = this.failingSince ?? this.now();
    this.failingSince = undefined;
    this.opts.logger.warn(
      { sink: this.opts.sink, lost: this.lostCount, failedForMs: this.now() - since },
      'audit sink recovered',
    );
    const lost = this.lostSinceRecord;
    this.lostSinceRecord = 0;
    this.record({
      type: 'audit.sink',
      outcome: 'ok',
      lost,
      detail: `recovered after ${this.now() - since} ms (${this.lastError ?? 'error'})`,
    });
  }
}
