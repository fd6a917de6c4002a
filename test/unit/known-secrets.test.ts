/**
 * The secrets the redactor is built from (threat model #17): every `SecretValue` of a loaded config, wherever it
 * sits, plus the parts an upstream echoes alone; and the loader's refusal of a secret too short to redact, with
 * the file, the JSON pointer and the reason.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { knownSecrets, secretParts } from '../../src/config/known-secrets.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { MIN_SECRET_LENGTH } from '../../src/lib/secret-redactor.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-known-secrets-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  // 0600: the loader refuses a secret file other users can read (secure defaults).
  fs.writeFileSync(file, text, { mode: 0o600 });
  return file;
}

const UPSTREAMS = `upstreams:
  - name: local
    transport: stdio
    command: npx
    env: { TOKEN: { fromFile: token.txt }, PLAIN: plain-value }
  - name: remote
    transport: http
    url: https://remote.example.com/mcp
    headers: { X-API-Key: { fromEnv: REMOTE_KEY }, Authorization: { fromEnv: REMOTE_AUTH } }
`;

describe('knownSecrets', () => {
  it('collects every secret of the config and the parts that travel alone, never a plain value', () => {
    write('token.txt', 'file-token-0123456789\n');
    const sessionKey = randomBytes(32).toString('base64url');
    const config = loadConfig(write('gatehouse.yaml', `sessions:\n  keys:\n    - fromEnv: SESSION_KEY\n${UPSTREAMS}`), {
      env: { REMOTE_KEY: 'remote-key-abcdef', REMOTE_AUTH: 'Bearer bearer-token-xyz', SESSION_KEY: sessionKey },
    });
    const found = knownSecrets(config);
    const secrets = ['file-token-0123456789', 'remote-key-abcdef', 'Bearer bearer-token-xyz', 'bearer-token-xyz'];
    expect(found).toEqual(expect.arrayContaining([...secrets, sessionKey]));
    expect(found).not.toContain('plain-value');
  });

  it('finds the credential of a Basic value, the password of a URL and the private members of a JWK', () => {
    const basic = `Basic ${Buffer.from('service-user:basic-password-1').toString('base64')}`;
    expect(secretParts(basic)).toEqual(expect.arrayContaining(['service-user:basic-password-1', 'basic-password-1']));
    expect(secretParts('redis://:redis%2Fpassword@redis.internal:6379/0')).toContain('redis/password');
    const jwk = { kty: 'EC', crv: 'P-256', x: 'pub', d: 'private-scalar-d' };
    expect(secretParts(JSON.stringify(jwk))).toEqual(['private-scalar-d']);
    expect(secretParts('plain-secret-value')).toEqual([]);
  });
});

describe('loadConfig: secrets too short to redact', () => {
  it('refuses one from the environment, naming the file, the pointer and the rule', () => {
    write('token.txt', 'file-token-0123456789\n');
    const file = write('gatehouse.yaml', UPSTREAMS);
    let error: unknown;
    try {
      loadConfig(file, { env: { REMOTE_KEY: 'short', REMOTE_AUTH: 'Bearer bearer-token-xyz' } });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.objectContaining({
        file,
        path: '/upstreams/1/headers/X-API-Key/fromEnv',
        message:
          `environment variable REMOTE_KEY holds 5 characters: a secret needs at least ${MIN_SECRET_LENGTH} ` +
          'so that the gateway can redact it from what upstreams send back',
      }),
    ]);
    expect(String((error as Error).message)).not.toContain('short');
  });

  it('refuses one from a file the same way', () => {
    const token = write('token.txt', 'tiny\n');
    const file = write('gatehouse.yaml', UPSTREAMS);
    const env = { REMOTE_KEY: 'remote-key-abcdef', REMOTE_AUTH: 'Bearer bearer-token-xyz' };
    expect(() => loadConfig(file, { env })).toThrow(
      `/upstreams/0/env/TOKEN/fromFile: secret file ${token} holds 4 characters: a secret needs at least 8`,
    );
  });
});
