/**
 * Builds the audit sink `audit:` describes. A file sink opens its file now (a path it cannot open stops the
 * start, naming the path) and reads the file's last record, so this process's chain continues the file's.
 */
import fs from 'node:fs';
import type { Logger } from 'pino';
import type { AuditConfig } from '../config/types.js';
import type { SecretRedactor } from '../lib/secret-redactor.js';
import { AuditLog } from './audit-log.js';
import { readFileHead } from './chain-head.js';
import { FileOutput, StreamOutput, type FileOutputOptions } from './file-sink.js';
import { createRedactor, parseRedactEntry, type RedactEntry } from './redact.js';

/** Where a stdout sink writes: pino's destination interface (the operational logger's, so lines never interleave). */
export interface LineStream {
  write(line: string): unknown;
}

export interface AuditSinkDeps {
  /** Operational logger (sink failures and losses are reported there). */
  logger: Logger;
  /** sink stdout: the stream (default: a synchronous write to file descriptor 1). */
  stdout?: LineStream;
  /** sink file: test hooks (fault injection). */
  file?: FileOutputOptions;
  now?: () => number;
  /** Known secrets (threat model #17): redacted from every string of every record, on top of the built-in rules. */
  secrets?: SecretRedactor;
}

export function createAuditSink(config: AuditConfig, deps: AuditSinkDeps): AuditLog {
  const entries = config.redact.map(parseRedactEntry).filter((e): e is RedactEntry => !('error' in e));
  const redact = createRedactor(entries, deps.secrets);
  // The SecretValue itself, not its text: a rotated key file takes effect at the next record (audit-log.ts).
  const key = config.hashChain.hmacKey;
  const base = {
    onFailure: config.onFailure,
    redact,
    logger: deps.logger,
    ...(deps.now !== undefined ? { now: deps.now } : {}),
  };
  if (config.sink === 'file') {
    const file = config.file;
    if (file === undefined) throw new TypeError('audit.sink file needs audit.file');
    const head = config.hashChain.enabled ? readFileHead(file) : { kind: 'empty' as const };
    // A writer killed mid-line left a partial last line: end it, so the new records start on a line of their own
    // (`gatehouse audit verify` reports that line, and accepts it only when the next run's chain.start continues from the record before it).
    if (head.kind !== 'empty' && head.partialTail) fs.appendFileSync(file, '\n');
    return new AuditLog({
      ...base,
      sink: 'file',
      output: (events) => new FileOutput(file, events, deps.file ?? {}),
      ...(config.hashChain.enabled
        ? {
            chain: {
              ...(key !== undefined ? { key } : {}),
              ...(head.kind === 'head' ? { previous: head.head } : {}),
              ...(head.kind === 'unknown'
                ? { previousUnknown: `new chain: the file's previous head is unknown (${head.reason})` }
                : {}),
            },
          }
        : {}),
    });
  }
  const stream: LineStream = deps.stdout ?? { write: (line: string) => fs.writeSync(1, line) };
  return new AuditLog({
    ...base,
    sink: 'stdout',
    output: (events) => new StreamOutput(stream, events),
    ...(config.hashChain.enabled ? { chain: key !== undefined ? { key } : {} } : {}),
  });
}
