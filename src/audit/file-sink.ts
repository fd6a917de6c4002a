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
  write(fd: number, buffer: Buffer, offset: number, length: number, position: null, cb: (err: NodeJS.ErrnoException | null, written: number) => void): void;
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

export class FileOutput implements AuditOutput {
  private fd: number | undefined;
  private queue: Buffer[] = [];
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

  write(line: string): boolean {
    if (this.closed) return false;
    const buf = Buffer.from(line, 'utf8');
    if (this.queued + buf.length > this.maxQueueBytes) return false;
    this.queue.push(buf);
    this.queued += buf.length;
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
    setImmediate(() => this.step());
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
      this.pending = this.queue.length === 1 ? this.queue[0]! : Buffer.concat(this.queue);
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
      }
      if (this.isFailing) {
        this.isFailing = false;
        this.events.onRecovery();
      }
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

/** Lines to a stream the caller owns (stdout, or the test's capture), through pino's destination interface. */
export class StreamOutput implements AuditOutput {
  private isFailing = false;

  constructor(
    private readonly stream: { write(line: string): unknown; flush?: (cb?: (err?: Error) => void) => void },
    private readonly events: OutputEvents,
  ) {
    const emitter = stream as Partial<NodeJS.EventEmitter>;
    emitter.on?.('error', (err: NodeJS.ErrnoException) => this.failed(err));
  }

  get failing(): boolean {
    return this.isFailing;
  }

  readonly unwrittenBytes = 0;

  write(line: string): boolean {
    try {
      this.stream.write(line);
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
