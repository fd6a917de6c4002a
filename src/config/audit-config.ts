import fs from 'node:fs';
import path from 'node:path';
import { parseRedactEntry } from '../lib/redact-entry.js';
import type { SecretRef } from './secrets.js';
import type { AuditConfig, SecretValue } from './types.js';

/**
 * The `audit` section's defaults (spread into `CONFIG_DEFAULTS`; the schema's `default` annotations repeat
 * them and test/unit/config.test.ts keeps both equal). Fail closed: a gateway that cannot record refuses calls.
 */
export const AUDIT_DEFAULTS = {
  audit: { sink: 'stdout' as const, onFailure: 'closed' as const, redact: [] as string[] },
  auditHashChain: { enabled: true },
} as const;

/** `audit` as written (the schema has checked the shapes). */
export interface RawAudit {
  sink?: AuditConfig['sink'];
  file?: string;
  onFailure?: AuditConfig['onFailure'];
  hashChain?: { enabled?: boolean; hmacKey?: SecretRef };
  redact?: string[];
}

export interface AuditContext {
  /** The config file's folder: `file` is resolved against it. */
  baseDir: string;
  resolveSecret(ref: SecretRef, pointer: string): SecretValue | undefined;
  report(pointer: string, message: string): void;
}

/**
 * Fills the defaults and checks what the schema cannot: a file sink names a file whose folder exists (the
 * file itself is created, mode 0600, at start), an HMAC key is long enough to matter, patterns compile.
 */
export function normaliseAudit(raw: RawAudit, ctx: AuditContext): AuditConfig {
  const d = AUDIT_DEFAULTS.audit;
  const sink = raw.sink ?? d.sink;
  let file: string | undefined;
  if (sink === 'file') {
    if (raw.file === undefined)
      ctx.report('/audit/sink', 'audit.sink "file" needs audit.file (the path of the audit log)');
    else {
      file = path.resolve(ctx.baseDir, raw.file);
      const folder = path.dirname(file);
      if (!isDirectory(folder)) ctx.report('/audit/file', `folder ${folder} does not exist`);
      else if (isDirectory(file)) ctx.report('/audit/file', `${file} is a folder; name the audit file inside it`);
    }
  } else if (raw.file !== undefined) {
    ctx.report('/audit/file', `audit.file is only used with audit.sink "file" (the sink is "${sink}")`);
  }
  const enabled = raw.hashChain?.enabled ?? AUDIT_DEFAULTS.auditHashChain.enabled;
  let hmacKey: SecretValue | undefined;
  if (raw.hashChain?.hmacKey !== undefined) {
    hmacKey = ctx.resolveSecret(raw.hashChain.hmacKey, '/audit/hashChain/hmacKey');
    // RFC 2104 §3: a key shorter than the hash output (32 bytes) weakens the MAC.
    if (hmacKey !== undefined && Buffer.byteLength(hmacKey.reveal(), 'utf8') < 32)
      ctx.report('/audit/hashChain/hmacKey', `the key from ${hmacKey.source} is shorter than 32 bytes`);
    if (!enabled) ctx.report('/audit/hashChain/hmacKey', 'hmacKey is set but hashChain.enabled is false');
  }
  const redact = raw.redact ?? d.redact;
  redact.forEach((entry, i) => {
    const parsed = parseRedactEntry(entry);
    if ('error' in parsed) ctx.report(`/audit/redact/${i}`, parsed.error);
  });
  return {
    sink,
    ...(file !== undefined ? { file } : {}),
    onFailure: raw.onFailure ?? d.onFailure,
    hashChain: { enabled, ...(hmacKey !== undefined ? { hmacKey } : {}) },
    redact,
  };
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
