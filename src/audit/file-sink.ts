/**
 * The audit file: lines appended (O_APPEND, mode 0600) by asynchronous writes of whole batches, so recording
 * never waits for the disk. A write error (disk full, EIO, the file gone read-only…) keeps the unwritten bytes
 * and retries every second — the file resumes exactly where it stopped, with no half line — and reports
 * failing/recovered to the owner, which decides whether calls go on (`audit.onFailure`). `reopen()` (SIGHUP,
 * after log rotation moved the file away) closes the descriptor and opens the path again.
 */
import fs from 'node:fs';

/** What a sink writes lines to. `write` never throws: false means the line was not accepted (queue full). */
export interface AuditOutput {
  write(line: string): boolean;
  /** True between a failed write and the next successful one. */
  readonly failing: boolean;
  /** Bytes accepted but not yet on disk. */
  readonly unwrittenBytes: number;
  /**
   * The output is writing but falling behind (a slow disk): over half its backlog is taken. `audit.onFailure:
   * closed` then refuses new calls too, so the records of calls already in flight still fit. Absent: never.
   */
  readonly backlogged?: boolean;
  reopen(): void;
  /** Resolves once everything accepted so far is written (or `timeoutMs` passes). */
  flush(timeoutMs?: number): Promise<void>;
  close(timeoutMs?: number): Promise<void>;
}

export interface OutputEvents {
  /** The first failure of a run of failures (not every retry). */
  onFailure(err: NodeJS.ErrnoException): void;
  onRecovery(): void;
}

/** The file operations used, so tests can inject faults. */
export interface FileOps {
  openSync(path: string, flags: string, mode: number): number;
  write(
    fd: number,
    buffer: Buffer,
    offset: number,
    length: number,
    position: null,
    cb: (err: NodeJS.ErrnoException | null, written: number) => void,
  ): void;
  closeSync(fd: number): void;
}

const NODE_FS: FileOps = {
  openSync: (p, flags, mode) => fs.openSync(p, flags, mode),
  write: (fd, buffer, offset, length, position, cb) => fs.write(fd, buffer, offset, length, position, cb),
  closeSync: (fd) => fs.closeSync(fd),
};

export interface FileOutputOptions {
  /** Unwritten bytes held while the file fails; beyond this, lines are refused (and counted lost by the owner). Default 16 MiB. */
  maxQueueBytes?: number;
  retryMs?: number;
  ops?: FileOps;
}

/**
 * A batch is written this long after its first line was queued (or after the previous write ended), so a busy
 * gateway makes at most a few hundred writes a second instead of one per record (each write is a trip through
 * libuv's thread pool and a wake-up of one of its threads). Records are in memory until written either way;
 * this only groups them — and `flush()`/`close()` still wait for every accepted line.
 */
const COALESCE_MS = 5;

export class FileOutput implements AuditOutput {
  private fd: number | undefined;
  /** Lines accepted, not yet in a batch: joined and encoded once per write, not once per line. */
  private queue: string[] = [];
  private queued = 0;
  /** The batch being written and how much of it is on disk. */
  private pending: Buffer | undefined;
  private offset = 0;
  private writing = false;
  private isFailing = false;
  private reopenWanted = false;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private idle: (() => void)[] = [];
  private readonly maxQueueBytes: number;
  private readonly retryMs: number;
  private readonly ops: FileOps;

  /** Opens the file now: a sink that cannot open its file stops the start (the error names the path). */
  constructor(
    readonly file: string,
    private readonly events: OutputEvents,
    opts: FileOutputOptions = {},
  ) {
    this.maxQueueBytes = opts.maxQueueBytes ?? 16 * 1024 * 1024;
    this.retryMs = opts.retryMs ?? 1000;
    this.ops = opts.ops ?? NODE_FS;
    this.fd = this.ops.openSync(file, 'a', 0o600);
  }

  get failing(): boolean {
    return this.isFailing;
  }

  get unwrittenBytes(): number {
    return this.queued - this.offset;
  }

  get backlogged(): boolean {
    return this.unwrittenBytes > this.maxQueueBytes / 2;
  }

  write(line: string): boolean {
    if (this.closed) return false;
    const bytes = Buffer.byteLength(line, 'utf8');
    if (this.queued + bytes > this.maxQueueBytes) return false;
    this.queue.push(line);
    this.queued += bytes;
    if (!this.writing && !this.isFailing) this.kick();
    return true;
  }

  reopen(): void {
    this.reopenWanted = true;
    if (!this.writing) this.kick();
  }

  flush(timeoutMs = 5000): Promise<void> {
    if (!this.writing && this.queued === 0 && this.pending === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async close(timeoutMs = 5000): Promise<void> {
    if (this.closed) return;
    if (!this.isFailing) await this.flush(timeoutMs);
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.closeFd();
  }

  private kick(): void {
    this.writing = true;
    setTimeout(() => this.step(), COALESCE_MS);
  }

  /** One write of the pending batch (or the next one); runs until the queue is empty or a write fails. */
  private step(): void {
    if (this.closed) return this.settle();
    if (this.reopenWanted && this.pending === undefined) {
      this.reopenWanted = false;
      this.closeFd();
    }
    if (this.fd === undefined) {
      try {
        this.fd = this.ops.openSync(this.file, 'a', 0o600);
      } catch (err) {
        return this.fail(err as NodeJS.ErrnoException);
      }
    }
    if (this.pending === undefined) {
      if (this.queue.length === 0) return this.settle();
      this.pending = Buffer.from(this.queue.length === 1 ? this.queue[0]! : this.queue.join(''), 'utf8');
      this.offset = 0;
      this.queue = [];
    }
    const buf = this.pending;
    this.ops.write(this.fd, buf, this.offset, buf.length - this.offset, null, (err, written) => {
      if (err) {
        if (err.code === 'EAGAIN') return void setTimeout(() => this.step(), 10);
        return this.fail(err);
      }
      this.offset += written;
      if (this.offset >= buf.length) {
        this.queued -= buf.length;
        this.pending = undefined;
        // Else `unwrittenBytes` (queued - offset) would read negative until the next batch starts.
        this.offset = 0;
      }
      if (this.isFailing) {
        this.isFailing = false;
        this.events.onRecovery();
      }
      // The rest of a partial write goes at once; a new batch after a moment, so that it gathers more lines.
      if (this.pending === undefined && this.queue.length > 0 && !this.closed) return this.kick();
      this.step();
    });
  }

  private fail(err: NodeJS.ErrnoException): void {
    if (!this.isFailing) {
      this.isFailing = true;
      this.events.onFailure(err);
    }
    // A descriptor that failed may be stale (EBADF, the file system remounted): the retry opens the path afresh
    // and appends what is left of the batch, so the file holds no half line.
    this.closeFd();
    this.writing = false;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.writing && !this.closed) this.kick();
    }, this.retryMs);
    this.retryTimer.unref();
  }

  private settle(): void {
    this.writing = false;
    const waiting = this.idle;
    this.idle = [];
    for (const w of waiting) w();
  }

  private closeFd(): void {
    if (this.fd === undefined) return;
    try {
      this.ops.closeSync(this.fd);
    } catch {
      // already gone: nothing to keep
    }
    this.fd = undefined;
  }
}

/**
 * Lines to a stream the caller owns (stdout, or the test's capture), through pino's destination interface.
 * pino's destination (sonic-boom) with `maxLength` buffers up to that many bytes for a slow reader and drops a
 * write that would exceed it, emitting `drop` synchronously: such a line is refused (the owner un-chains it and
 * counts it lost), and the output stays `backlogged` until a write fits again or the buffer drains.
 */
export class StreamOutput implements AuditOutput {
  private isFailing = false;
  private dropped = false;
  private isBacklogged = false;

  constructor(
    private readonly stream: { write(line: string): unknown; flush?: (cb?: (err?: Error) => void) => void },
    private readonly events: OutputEvents,
  ) {
    const emitter = stream as Partial<NodeJS.EventEmitter>;
    emitter.on?.('error', (err: NodeJS.ErrnoException) => this.failed(err));
    emitter.on?.('drop', () => {
      this.dropped = true;
    });
    // Its buffer is empty again (sonic-boom emits `drain` then): not behind any more, even if no record comes —
    // `/readyz` depends on it, and a replica out of rotation would get no call to record.
    emitter.on?.('drain', () => {
      this.isBacklogged = false;
    });
  }

  get failing(): boolean {
    return this.isFailing;
  }

  get backlogged(): boolean {
    return this.isBacklogged;
  }

  readonly unwrittenBytes = 0;

  write(line: string): boolean {
    try {
      this.dropped = false;
      this.stream.write(line);
      this.isBacklogged = this.dropped;
      if (this.dropped) return false;
      if (this.isFailing) {
        this.isFailing = false;
        this.events.onRecovery();
      }
      return true;
    } catch (err) {
      this.failed(err as NodeJS.ErrnoException);
      return false;
    }
  }

  reopen(): void {}

  flush(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private failed(err: NodeJS.ErrnoException): void {
    if (this.isFailing) return;
    this.isFailing = true;
    this.events.onFailure(err);
  }
}
