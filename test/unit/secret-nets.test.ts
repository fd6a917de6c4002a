/**
 * The nets under the choke point (threat model #17): the audit redactor and the operational logger of
 * `gatehouse start` remove the known secrets from every record and line, whatever put them there — an error
 * detail, a client's argument (value or key), an exception's message — in raw and JSON-escaped form.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { redactingLogHooks } from '../../src/app.js';
import { createRedactor } from '../../src/audit/redact.js';
import { createSecretRedactor, NO_SECRETS } from '../../src/lib/secret-redactor.js';
import { encodedSecrets } from '../helpers/secret-forms.js';

const SECRET = 'net-canary/"x"+9Qz';
const secrets = createSecretRedactor([SECRET]);

function holdsSecret(text: string): boolean {
  return encodedSecrets(SECRET).some((form) => text.includes(form));
}

describe('audit records', () => {
  it('lose every known secret, in values and keys, on both the copy and the one-pass JSON path', () => {
    const redact = createRedactor([], secrets);
    const record = { type: 'mcp.request', detail: `upstream said ${SECRET}`, args: { [SECRET]: [`a ${SECRET} b`] } };
    const json = redact.json(record);
    expect(holdsSecret(json)).toBe(false);
    expect(json).toContain('"detail":"upstream said [REDACTED]"');
    expect(holdsSecret(JSON.stringify(redact(record)))).toBe(false);
    const args = { '[REDACTED]': ['a [REDACTED] b'] };
    expect(redact(record)).toEqual({ type: 'mcp.request', detail: 'upstream said [REDACTED]', args });
  });
});

describe('the operational logger', () => {
  it('writes no known secret, whatever field or error carries it', () => {
    const lines: string[] = [];
    const destination = { write: (line: string): void => void lines.push(line) };
    const logger = pino({ level: 'debug', ...redactingLogHooks(secrets) }, destination);
    logger.warn({ detail: `failed for ${SECRET}`, err: new Error(`boom ${SECRET}`) }, `message with ${SECRET}`);
    expect(lines).toHaveLength(1);
    expect(holdsSecret(lines[0]!)).toBe(false);
    expect(JSON.parse(lines[0]!)).toMatchObject({ detail: 'failed for [REDACTED]', msg: 'message with [REDACTED]' });
  });

  it('is left as it is when no secret is configured', () => {
    expect(redactingLogHooks(NO_SECRETS)).toEqual({});
  });
});
