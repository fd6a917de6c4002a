/** The `audit:` section: defaults, paths, the HMAC key reference, extra redaction entries, and the messages. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig, type GatehouseConfig } from '../../src/config/index.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-audit-config-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const UPSTREAM = 'upstreams:\n  - name: fx\n    transport: stdio\n    command: node\n';

function load(audit: string, env: NodeJS.ProcessEnv = {}): GatehouseConfig {
  const file = path.join(dir, 'gatehouse.yaml');
  fs.writeFileSync(file, `${audit}${UPSTREAM}`);
  return loadConfig(file, { env });
}

function problems(audit: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    load(audit, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error('loaded');
}

describe('audit config', () => {
  it('defaults to stdout, fail closed, a SHA-256 chain and no extra redaction', () => {
    expect(load('').audit).toEqual({ sink: 'stdout', onFailure: 'closed', hashChain: { enabled: true }, redact: [] });
  });

  it('resolves the file against the config folder and reads the HMAC key reference', () => {
    const config = load(
      'audit:\n  sink: file\n  file: audit.jsonl\n  onFailure: open\n  hashChain:\n    hmacKey: { fromEnv: AUDIT_KEY }\n  redact: [ssn, "/\\\\d{16}/"]\n',
      { AUDIT_KEY: 'k'.repeat(40) },
    );
    expect(config.audit.file).toBe(path.join(dir, 'audit.jsonl'));
    expect(config.audit.onFailure).toBe('open');
    expect(config.audit.hashChain.hmacKey?.reveal()).toBe('k'.repeat(40));
    expect(JSON.stringify(config.audit)).not.toContain('kkkk');
    expect(JSON.stringify(describeConfig(config))).toContain('[secret env:AUDIT_KEY]');
    expect(JSON.stringify(describeConfig(config))).not.toContain('kkkk');
    expect(config.audit.redact).toEqual(['ssn', '/\\d{16}/']);
  });

  it.each([
    ['audit:\n  sink: file\n', 'gatehouse.yaml:2: /audit/sink: audit.sink "file" needs audit.file'],
    ['audit:\n  sink: file\n  file: nowhere/audit.jsonl\n', '/audit/file: folder'],
    ['audit:\n  file: audit.jsonl\n', '/audit/file: audit.file is only used with audit.sink "file"'],
    [
      'audit:\n  hashChain:\n    hmacKey: { fromEnv: SHORT }\n',
      '/audit/hashChain/hmacKey: the key from env:SHORT is shorter than 32 bytes',
    ],
    [
      'audit:\n  hashChain:\n    hmacKey: { fromEnv: MISSING }\n',
      '/audit/hashChain/hmacKey/fromEnv: environment variable MISSING is not set',
    ],
    ['audit:\n  redact: ["/(/"]\n', '/audit/redact/0: not a valid regular expression'],
    ['audit:\n  sink: syslog\n', '/audit/sink'],
  ])('refuses %j', (audit, message) => {
    expect(problems(audit, { SHORT: 'short-but-not-32' })).toContain(message);
  });
});
