/**
 * The production audit sink: each event is redacted (built-in credential shapes + `audit.redact`), sealed into
 * the hash chain, serialised by a pino logger of its own (level info always: the operational `logging.level`
 * never drops a record) and handed to its output — stdout or a file. `record` does all of that synchronously
 * and never throws; only the write is asynchronous.
 *
 * When the output fails: `onFailure: closed` makes `accepting()` false, so the front door refuses calls with
 * GW_AUDIT_UNAVAILABLE until a write succeeds again; `open` lets calls go on. Either way records keep queueing
 * (bounded); what does not fit is counted in `lost` — before it is chained, so the chain on disk stays intact —
 * logged at most every 30 s, and written as an `audit.sink` record once the output recovers. Never silent.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { pino, type Logger } from 'pino';
import type { AuditEvent, AuditSink } from './audit-sink.js';
import { HashChain, type ChainHead } from './chain.js';
import type { AuditOutput, OutputEvents } from './file-sink.js';
import type { Redactor } from './redact.js';

/** pino writes `"level":30` first on every info line; the hash covers the line as written, so it covers this too. */
const PINO_INFO = { level: 30 } as const;
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
    /** `audit.hashChain.hmacKey`, revealed: records are then HMAC-SHA-256, not plain SHA-256. */
    key?: string;
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
  private readonly writer: Logger;
  private readonly now: () => number;

  constructor(private readonly opts: AuditLogOptions) {
    this.now = opts.now ?? Date.now;
    this.output = opts.output({ onFailure: (err) => this.failed(err), onRecovery: () => this.recovered() });
    // Serialisation only: pino turns the record into one JSON line (strings escaped: a newline or `"}` in a value
    // cannot start another record) and calls the output's write.
    this.writer = pino({ base: null, timestamp: false }, { write: (line: string) => this.emit(line) });
    const c = opts.chain;
    if (c !== undefined) {
      this.chain = new HashChain({ id: c.id ?? randomUUID(), ...(c.key !== undefined ? { key: c.key } : {}), ...(c.previous !== undefined ? { previous: c.previous.hash } : {}) });
      const continues =
        c.previous !== undefined
          ? `continues chain ${c.previous.chain} after seq ${c.previous.seq}`
          : opts.sink === 'stdout'
            ? 'new chain: a stdout sink cannot read the previous head'
            : (c.previousUnknown ?? 'new chain: the file had no records');
      this.record({ type: 'chain.start', outcome: 'ok', detail: `${continues}; host ${hostname()} pid ${process.pid}; ${c.key !== undefined ? 'hmac-sha256' : 'sha256'}` });
    }
  }

  /** Records lost since start (a counter for metrics). */
  get lost(): number {
    return this.lostCount;
  }

  accepting(): boolean {
    return this.opts.onFailure === 'open' || !this.output.failing;
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
    try {
      const audit = this.opts.redact(event) as Record<string, unknown>;
      const body: Record<string, unknown> = { stream: 'audit', time: new Date(this.now()).toISOString(), audit };
      const head = this.chain?.head;
      const sealed = this.chain !== undefined ? this.chain.seal({ ...PINO_INFO, ...body }) : body;
      const { level: _writtenByPino, ...line } = sealed;
      this.refused = true;
      this.writer.info(line);
      if (this.refused) {
        // The output refused it (queue full while failing): un-chain it, so the chain on disk has no gap — the
        // loss is counted and recorded (audit.sink `lost`) instead.
        if (head !== undefined) this.chain!.rewind(head);
        this.lose(1);
      }
    } catch (err) {
      // A record that cannot be serialised is lost, counted and logged — the call goes on.
      this.lastError = err instanceof Error ? err.message : String(err);
      this.lose(1);
    }
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
    if (this.output.unwrittenBytes > 0) this.opts.logger.error({ sink: this.opts.sink, unwrittenBytes: this.output.unwrittenBytes, lost: this.lostCount }, 'audit sink closed with records not written');
  }

  /** Set by `record` before serialising, cleared by `emit` when the output accepted the line. */
  private refused = false;

  private emit(line: string): void {
    if (this.output.write(line)) this.refused = false;
  }

  private lose(n: number): void {
    this.lostCount += n;
    this.lostSinceRecord += n;
    const t = this.now();
    if (t - this.lastLossLog >= LOSS_LOG_INTERVAL_MS) {
      this.lastLossLog = t;
      this.opts.logger.error({ sink: this.opts.sink, lost: this.lostCount, error: this.lastError }, 'audit records lost');
    }
  }

  private failed(err: NodeJS.ErrnoException): void {
    this.failingSince = this.now();
    this.lastError = err.code ?? err.message;
    this.opts.logger.error(
      { sink: this.opts.sink, error: this.lastError, onFailure: this.opts.onFailure },
      this.opts.onFailure === 'closed' ? 'audit sink failing: calls are refused until it recovers' : 'audit sink failing: calls go on (audit.onFailure open), records may be lost',
    );
    this.record({ type: 'audit.sink', outcome: 'error', detail: `write failed: ${this.lastError}` });
  }

  private recovered(): void {
    const since = this.failingSince ?? this.now();
    this.failingSince = undefined;
    this.opts.logger.warn({ sink: this.opts.sink, lost: this.lostCount, failedForMs: this.now() - since }, 'audit sink recovered');
    const lost = this.lostSinceRecord;
    this.lostSinceRecord = 0;
    this.record({ type: 'audit.sink', outcome: 'ok', lost, detail: `recovered after ${this.now() - since} ms (${this.lastError ?? 'error'})` });
  }
}
