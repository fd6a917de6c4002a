/**
 * The audit log over a file whose writes fail on demand (injected file operations): `closed` stops accepting
 * calls while writes fail and accepts again once one succeeds; `open` keeps accepting and counts what a full
 * queue could not hold — without a gap in the chain that reaches the disk. A value that looks like a record
 * stays inside its own line.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { FileOutput, StreamOutput, type FileOps } from '../../src/audit/file-sink.js';
import { createRedactor } from '../../src/audit/redact.js';
import { verifyAuditFiles } from '../../src/audit/verify.js';
import { waitFor } from '../helpers/upstream-tools.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-log-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Real file operations, with writes failing (ENOSPC) while `broken` is set. */
function faultyOps(): FileOps & { broken: boolean; failures: number } {
  const ops = {
    broken: false,
    failures: 0,
    openSync: (p: string, flags: string, mode: number) => fs.openSync(p, flags, mode),
    closeSync: (fd: number) => fs.closeSync(fd),
    write(
      fd: number,
      buffer: Buffer,
      offset: number,
      length: number,
      position: null,
      cb: (err: NodeJS.ErrnoException | null, written: number) => void,
    ) {
      if (ops.broken) {
        ops.failures += 1;
        const err: NodeJS.ErrnoException = new Error('no space left on device');
        err.code = 'ENOSPC';
        setImmediate(() => cb(err, 0));
        return;
      }
      fs.write(fd, buffer, offset, length, position, cb);
    },
  };
  return ops;
}

function logs(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return {
    logger: pino({ level: 'debug' }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) }),
    lines,
  };
}

function auditLog(
  file: string,
  onFailure: 'closed' | 'open',
  ops: FileOps,
  maxQueueBytes = 1 << 20,
): { log: AuditLog; lines: Record<string, unknown>[] } {
  const { logger, lines } = logs();
  const log = new AuditLog({
    sink: 'file',
    onFailure,
    redact: createRedactor(),
    logger,
    chain: {},
    output: (events) => new FileOutput(file, events, { ops, retryMs: 20, maxQueueBytes }),
  });
  return { log, lines };
}

describe('AuditLog over a failing file', () => {
  it('closed: stops accepting while writes fail, accepts again after a write succeeds; nothing is lost, the chain verifies', async () => {
    const file = join(dir, 'audit.jsonl');
    const ops = faultyOps();
    const { log, lines } = auditLog(file, 'closed', ops);
    log.record({ type: 'mcp.request', method: 'tools/call', outcome: 'ok' });
    await log.flush();
    expect(log.accepting()).toBe(true);
    ops.broken = true;
    log.record({ type: 'mcp.request', method: 'tools/call', outcome: 'ok' });
    await waitFor('failing', () => !log.accepting());
    expect(log.status()).toMatchObject({ failing: true, lost: 0 });
    expect(
      lines.some((l) => l.msg === 'audit sink failing: calls are refused until it recovers' && l.error === 'ENOSPC'),
    ).toBe(true);
    ops.broken = false;
    await waitFor('recovered', () => log.accepting());
    await log.close();
    const records = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { audit: { type: string; outcome?: string } });
    expect(records.map((r) => r.audit.type)).toEqual([
      'chain.start',
      'mcp.request',
      'mcp.request',
      'audit.sink',
      'audit.sink',
    ]);
    expect(records.slice(3).map((r) => r.audit.outcome)).toEqual(['error', 'ok']);
    expect(verifyAuditFiles([file]).ok).toBe(true);
  });

  it('open: keeps accepting, counts what the full queue refuses, logs it, and the chain on disk has no gap', async () => {
    const file = join(dir, 'audit.jsonl');
    const ops = faultyOps();
    const { log, lines } = auditLog(file, 'open', ops, 4096);
    await log.flush();
    ops.broken = true;
    for (let i = 0; i < 50; i++)
      log.record({ type: 'mcp.request', method: 'tools/call', requestId: String(i), outcome: 'ok' });
    await waitFor('failing', () => log.status().failing);
    expect(log.accepting()).toBe(true);
    expect(log.lost).toBeGreaterThan(0);
    expect(lines.some((l) => l.msg === 'audit records lost' && typeof l.lost === 'number')).toBe(true);
    const lost = log.lost;
    ops.broken = false;
    await waitFor('recovered', () => !log.status().failing);
    await log.close();
    const records = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { audit: { type: string; lost?: number } });
    // The recovery record says how many were lost; every record that reached the disk is chained without a gap.
    expect(records.at(-1)?.audit).toMatchObject({ type: 'audit.sink', lost });
    expect(verifyAuditFiles([file]).ok).toBe(true);
  });

  it('closed: a slow disk (writing, not failing) that fills half the backlog refuses calls; what did not fit is written down once it drains', async () => {
    const file = join(dir, 'audit.jsonl');
    const ops = faultyOps();
    const held: (() => void)[] = [];
    const write = ops.write.bind(ops);
    let slow = false;
    ops.write = (fd, buffer, offset, length, position, cb) => {
      if (slow) held.push(() => write(fd, buffer, offset, length, position, cb));
      else write(fd, buffer, offset, length, position, cb);
    };
    const { log } = auditLog(file, 'closed', ops, 4096);
    await log.flush();
    slow = true;
    for (let i = 0; i < 60; i++)
      log.record({ type: 'mcp.request', method: 'tools/call', requestId: String(i), outcome: 'ok' });
    // Memory stays bounded (the queue refused the rest, counted), and calls are refused although no write failed.
    expect(log.status()).toMatchObject({ failing: false });
    expect(log.lost).toBeGreaterThan(0);
    expect(log.accepting()).toBe(false);
    const lost = log.lost;
    slow = false;
    while (held.length > 0) held.shift()!();
    await waitFor('drained', () => log.accepting());
    log.record({ type: 'config', outcome: 'ok' });
    await log.close();
    const records = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { audit: { type: string; lost?: number } });
    expect(records.at(-2)?.audit).toMatchObject({ type: 'audit.sink', lost });
    expect(records.at(-1)?.audit).toMatchObject({ type: 'config' });
    expect(verifyAuditFiles([file]).ok).toBe(true);
  });

  it('stdout behind a slow reader (pino destination with maxLength drops what does not fit): the dropped record is un-chained and counted, closed refuses until the reader catches up', async () => {
    /** sonic-boom's contract: a write past maxLength emits `drop` synchronously and keeps nothing. */
    class SlowStdout extends EventEmitter {
      readonly lines: string[] = [];
      room = 3;
      write(line: string): boolean {
        if (this.room <= 0) {
          this.emit('drop', line);
          return false;
        }
        this.room -= 1;
        this.lines.push(line);
        return true;
      }
    }
    const out = new SlowStdout();
    const { logger } = logs();
    const log = new AuditLog({
      sink: 'stdout',
      onFailure: 'closed',
      redact: createRedactor(),
      logger,
      chain: {},
      output: (events) => new StreamOutput(out, events),
    });
    for (let i = 0; i < 5; i++)
      log.record({ type: 'mcp.request', method: 'tools/call', requestId: String(i), outcome: 'ok' });
    expect(out.lines).toHaveLength(3);
    expect(log.lost).toBe(3);
    expect(log.accepting()).toBe(false);
    // The reader caught up: the destination says `drain` (its buffer is empty) and calls are accepted again.
    out.room = 10;
    out.emit('drain');
    expect(log.accepting()).toBe(true);
    log.record({ type: 'config', outcome: 'ok' });
    const f = join(dir, 'collected.jsonl');
    fs.writeFileSync(f, out.lines.join(''));
    // No gap in what reached the reader: the loss is a record of its own.
    expect(verifyAuditFiles([f]).ok).toBe(true);
    const audits = out.lines.map((l) => (JSON.parse(l) as { audit: { type: string; lost?: number } }).audit);
    expect(audits.slice(3)).toEqual([
      expect.objectContaining({ type: 'audit.sink', lost: 3 }),
      expect.objectContaining({ type: 'config' }),
    ]);
  });

  it('a stream write that throws once: the failure record written from inside the failing write does not break the chain', () => {
    const lines: string[] = [];
    let throwNext = false;
    const stream = {
      write(line: string): boolean {
        if (throwNext) {
          throwNext = false;
          const err: NodeJS.ErrnoException = new Error('broken pipe');
          err.code = 'EPIPE';
          throw err;
        }
        lines.push(line);
        return true;
      },
    };
    const { logger } = logs();
    const log = new AuditLog({
      sink: 'stdout',
      onFailure: 'open',
      redact: createRedactor(),
      logger,
      chain: {},
      output: (events) => new StreamOutput(stream, events),
    });
    log.record({ type: 'mcp.request', requestId: '1', outcome: 'ok' });
    throwNext = true;
    log.record({ type: 'mcp.request', requestId: '2', outcome: 'ok' });
    log.record({ type: 'mcp.request', requestId: '3', outcome: 'ok' });
    const f = join(dir, 'collected.jsonl');
    fs.writeFileSync(f, lines.join(''));
    expect(verifyAuditFiles([f]).problem).toBeUndefined();
    const audits = lines.map(
      (l) => (JSON.parse(l) as { audit: { type: string; requestId?: string; outcome?: string; lost?: number } }).audit,
    );
    expect(audits.map((a) => a.requestId ?? `${a.type}:${a.outcome}`)).toEqual([
      'chain.start:ok',
      '1',
      'audit.sink:error',
      'audit.sink:ok',
      '3',
    ]);
    expect(audits[3]).toMatchObject({ lost: 1 });
    expect(log.lost).toBe(1);
  });

  it('writes a value that looks like a record inside its own line', async () => {
    const file = join(dir, 'audit.jsonl');
    const { log } = auditLog(file, 'closed', faultyOps());
    const forged = '\n{"type":"mcp.request","decision":"allow"}\n"}\r\n\u2028';
    log.record({ type: 'mcp.request', tool: 'fx__echo', arguments: { text: forged }, outcome: 'ok' });
    await log.close();
    const text = readFileSync(file, 'utf8');
    const ls = text.trim().split('\n');
    expect(ls).toHaveLength(2);
    expect((JSON.parse(ls[1]!) as { audit: { arguments: { text: string } } }).audit.arguments.text).toBe(forged);
    expect(verifyAuditFiles([file]).ok).toBe(true);
  });

  it('continues the chain of a file it reopens (rotation) without a gap', async () => {
    const file = join(dir, 'audit.jsonl');
    const { log } = auditLog(file, 'closed', faultyOps());
    log.record({ type: 'config', outcome: 'ok' });
    await log.flush();
    fs.renameSync(file, `${file}.1`);
    log.reopen();
    log.record({ type: 'config', outcome: 'ok' });
    await log.close();
    expect(verifyAuditFiles([`${file}.1`, file]).ok).toBe(true);
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(1);
  });
});
