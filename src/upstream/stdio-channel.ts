import { spawn, type ChildProcess } from 'node:child_process';
import type { StdioUpstreamConfig } from '../config/types.js';
import { truncate, type JsonRpcMessage } from '../lib/json-rpc.js';
import { lossyText } from '../lib/utf8.js';
import type { Channel, ChannelWarning, InboundMeta, SendContext } from './channel.js';
import { junk, readInbound } from './inbound.js';
import { findResponseId, LineSplitter } from './line-splitter.js';

const MAX_STDERR_LINE = 2_000;

/**
 * The environment a child gets: only the allow-listed names from ours, plus the configured values
 * (secrets revealed here and nowhere else). Nothing is inherited by default (MCP security BP §stdio in proxy
 * scenarios; the SDK inherits only HOME, LOGNAME, PATH, SHELL, TERM, USER for the same reason).
 */
export function childEnvironment(config: StdioUpstreamConfig, parentEnv: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of config.envAllow) {
    const v = parentEnv[name];
    if (v !== undefined) env[name] = v;
  }
  for (const [name, value] of Object.entries(config.env))
    env[name] = typeof value === 'string' ? value : value.reveal();
  return env;
}

/**
 * One child process speaking newline-delimited JSON-RPC on stdin/stdout (MCP transports §stdio).
 * The child runs in its own process group so that shutdown reaches grandchildren too (`npx` spawns one):
 * stdin EOF first, then SIGTERM to the group, then SIGKILL (MCP lifecycle §Shutdown).
 */
export class StdioChannel implements Channel {
  readonly kind = 'stdio' as const;
  onmessage?: (message: JsonRpcMessage, meta: InboundMeta) => void;
  onclose?: (error?: Error) => void;
  onwarn?: (warning: ChannelWarning) => void;

  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private closing = false;
  /** Lines waiting for this turn's write (see `send`). */
  private outbox: string[] = [];
  private readonly flushOutbox = (): void => {
    const lines = this.outbox;
    this.outbox = [];
    const stdin = this.child?.stdin;
    // A child gone in between: its calls fail through the close handler (RpcPeer.failAll), as with a lost write.
    if (!stdin || stdin.destroyed || !stdin.writable) return;
    stdin.write(lines.length === 1 ? lines[0]! : lines.join(''));
  };

  constructor(
    private readonly config: StdioUpstreamConfig,
    private readonly parentEnv: NodeJS.ProcessEnv = process.env,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.config.command, [...this.config.args], {
        cwd: this.config.cwd,
        env: childEnvironment(this.config, this.parentEnv),
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
        windowsHide: true,
      });
      this.child = child;
      let started = false;
      this.exited = new Promise((done) => child.once('close', () => done()));

      child.once('error', (err) => {
        if (!started) reject(err);
        else this.onwarn?.({ kind: 'stream', detail: `process error: ${err.message}` });
      });
      child.once('spawn', () => {
        started = true;
        resolve();
      });
      // 'close' (not 'exit'): stdout is drained by then, so a last response is not lost.
      child.once('close', (code, signal) => {
        const expected = this.closing;
        this.onclose?.(
          expected ? undefined : new Error(`process exited (code ${code ?? 'none'}, signal ${signal ?? 'none'})`),
        );
      });

      const stdout = new LineSplitter(this.config.maxMessageBytes, {
        line: (bytes) => this.handleLine(bytes),
        oversized: (bytes, head, tail) => {
          const responseId = findResponseId(head, tail);
          this.onwarn?.(
            responseId === undefined ? { kind: 'oversized', bytes } : { kind: 'oversized', bytes, responseId },
          );
        },
      });
      child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
      const stderr = new LineSplitter(64 * 1024, {
        // A log line, not a message: bad bytes show as U+FFFD.
        line: (bytes) => this.onwarn?.({ kind: 'stderr', line: truncate(lossyText(bytes), MAX_STDERR_LINE) }),
        oversized: () => undefined,
      });
      child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
      // A child that dies mid-write gives EPIPE; the exit handler reports it.
      child.stdin!.on('error', () => undefined);
    });
  }

  /**
   * One line of stdout. A line the gateway cannot use (not UTF-8, not JSON, too deep, not JSON-RPC) fails the
   * call it answered when its top-level id can be read (inbound.ts); one without a readable id — a log line
   * on stdout, or a reply mangled beyond its id — is logged and dropped: guessing which call it answered could
   * fail another client's call (threat model #16), so the calls in flight run on to their own deadlines.
   */
  private handleLine(bytes: Buffer): void {
    const m = readInbound(bytes);
    if (m.ok) this.onmessage?.(m.message, {});
    else this.onwarn?.(junk(m));
  }

  send(message: JsonRpcMessage, _ctx?: SendContext): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin || stdin.destroyed || !stdin.writable) return Promise.reject(new Error('process is not running'));
    // JSON.stringify never emits a raw newline, so one message is one line. The lines of one event-loop turn
    // go out as one string in one write at setImmediate: a pipe write per call was the largest cost in profiles,
    // and one write of the joined text is cheaper than corking (a Writable chunk per line, then writev).
    if (this.outbox.length === 0) setImmediate(this.flushOutbox);
    this.outbox.push(`${JSON.stringify(message)}\n`);
    return Promise.resolve();
  }

  setProtocolVersion(): void {
    // stdio carries no version header.
  }

  async close(graceMs = this.config.shutdownGraceMs): Promise<void> {
    const child = this.child;
    if (!child || this.closing) return this.exited;
    this.closing = true;
    if (child.exitCode !== null || child.signalCode !== null) return this.exited;
    // What was sent this turn (a last cancellation, say) goes before the EOF.
    if (this.outbox.length > 0) this.flushOutbox();
    child.stdin?.end();
    if (await settlesWithin(this.exited!, graceMs)) return;
    signalGroup(child, 'SIGTERM');
    if (await settlesWithin(this.exited!, graceMs)) return;
    signalGroup(child, 'SIGKILL');
    await this.exited;
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

async function settlesWithin(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const done = p.then(() => true);
  const result = await Promise.race([done, timeout]);
  clearTimeout(timer);
  return result;
}
