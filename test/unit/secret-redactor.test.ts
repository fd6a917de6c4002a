/**
 * The known-secret redactor (threat model #17): every form a secret comes back in is replaced, overlapping
 * secrets leave no piece between two marks, a sample cut through a secret loses the cut-off start too, and
 * text without a secret is returned as it is (the same reference, no copy). The properties run under fast-check
 * with a fixed seed; the encoders (test/helpers/secret-forms.ts) are written from the RFCs, not taken from the
 * code under test.
 */
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { truncate } from '../../src/lib/json-rpc.js';
import {
  createSecretRedactor,
  MIN_SECRET_LENGTH,
  NO_SECRETS,
  REDACTED_SECRET,
  secretForms,
} from '../../src/lib/secret-redactor.js';
import {
  base64Holds,
  encodedSecrets,
  encodeSecret,
  TEXT_ENCODINGS,
  type TextEncoding,
} from '../helpers/secret-forms.js';

const SEED = 0x5ec7e7;
const RUNS = 300;

const CANARY = 'canary/"key"+ä 9f3K2x';

/** Characters that every encoding treats differently: JSON escapes, URL-reserved, base64's own, non-ASCII. */
const SECRET_CHARS = [...'abcXYZ0189', ...'"\\/+= %&?~\né€', '😀', '\u0001'];
const secretArb = fc.string({ unit: fc.constantFrom(...SECRET_CHARS), minLength: MIN_SECRET_LENGTH, maxLength: 40 });
const textArb = fc.string({ unit: 'binary', maxLength: 60 });

type Encoding = TextEncoding | 'base64' | 'base64url';
const ENCODINGS: readonly Encoding[] = [...TEXT_ENCODINGS, 'base64', 'base64url'];

describe('secretForms', () => {
  it('holds the raw value, its JSON, URL and base64 forms', () => {
    const forms = secretForms(CANARY);
    expect(forms).toEqual(
      expect.arrayContaining([
        CANARY,
        'canary/\\"key\\"+ä 9f3K2x',
        'canary\\/\\"key\\"+\\u00e4 9f3K2x',
        'canary\\/\\"key\\"+\\u00E4 9f3K2x',
        'canary%2F%22key%22%2B%C3%A4%209f3K2x',
        'canary%2f%22key%22%2b%c3%a4%209f3K2x',
        'canary%2F%22key%22%2B%C3%A4+9f3K2x',
      ]),
    );
    expect(new Set(forms).size).toBe(forms.length);
  });

  it('gives three base64 substrings, one per byte alignment, that depend on the secret alone', () => {
    const forms = secretForms(CANARY);
    for (let prefix = 0; prefix < 6; prefix++) {
      for (const suffix of [0, 1, 2]) {
        const blob = Buffer.concat([Buffer.alloc(prefix, 0xa5), Buffer.from(CANARY), Buffer.alloc(suffix, 0x5a)]);
        expect(
          forms.some((f) => blob.toString('base64').includes(f)),
          `prefix ${prefix}`,
        ).toBe(true);
        expect(
          forms.some((f) => blob.toString('base64url').includes(f)),
          `prefix ${prefix}`,
        ).toBe(true);
      }
    }
  });
});

describe('createSecretRedactor', () => {
  const redactor = createSecretRedactor([CANARY]);

  it('replaces every form, keeping the text around it', () => {
    const blob = Buffer.concat([Buffer.from('xy'), Buffer.from(CANARY), Buffer.from('z')]).toString('base64');
    const text = `a ${CANARY} b ${encodeURIComponent(CANARY)} c ${JSON.stringify({ k: CANARY })} d ${blob} e`;
    const out = redactor.text(text);
    expect(out.startsWith('a [REDACTED] b [REDACTED] c {"k":"[REDACTED]"} d ')).toBe(true);
    expect(base64Holds(out, CANARY)).toBe(false);
  });

  it('fills a base64 form with letters of its length, so the blob stays valid base64', () => {
    for (const align of [0, 1, 2]) {
      const blob = Buffer.concat([Buffer.alloc(align, 1), Buffer.from(CANARY), Buffer.from('tail')]).toString('base64');
      const out = redactor.text(blob);
      expect(out).toHaveLength(blob.length);
      expect(out).toMatch(/^[A-Za-z0-9+/]*REDACTEDREDACTED[A-Za-z0-9+/]*=*$/);
      expect(base64Holds(out, CANARY)).toBe(false);
    }
  });

  it('merges overlapping secrets into one mark, so no piece of either is left between two', () => {
    const r = createSecretRedactor(['abcdefgh12', 'gh12345678']);
    expect(r.text('<abcdefgh12345678>')).toBe(`<${REDACTED_SECRET}>`);
    expect(r.text('<abcdefgh12><gh12345678>')).toBe(`<${REDACTED_SECRET}><${REDACTED_SECRET}>`);
  });

  it('walks keys and values, copying only the objects on the way to a change', () => {
    const clean = { a: [1, 'two', { three: null }] };
    const message = { id: 1, result: { content: [{ type: 'text', text: `key=${CANARY}` }], clean, [CANARY]: true } };
    const out = redactor.json(message);
    const content = [{ type: 'text', text: `key=${REDACTED_SECRET}` }];
    expect(out).toEqual({ id: 1, result: { content, clean, [REDACTED_SECRET]: true } });
    expect(out.result.clean).toBe(clean);
    expect(message.result.content[0]!.text).toBe(`key=${CANARY}`);
    expect(redactor.json(clean)).toBe(clean);
  });

  it('keeps a "__proto__" member a member of the copy', () => {
    const value = JSON.parse(`{"__proto__": {"x": 1}, "t": ${JSON.stringify(CANARY)}}`) as Record<string, unknown>;
    const out = redactor.json(value);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['__proto__', 't']);
  });

  it('removes the start of a secret that a sample was cut in', () => {
    const line = `junk before ${CANARY} after`;
    for (let cut = 16; cut < 12 + CANARY.length; cut++) {
      const out = redactor.sample(truncate(line, cut));
      expect(out, `cut at ${cut}`).toBe(`junk before ${REDACTED_SECRET}…`);
    }
    // An uncut text that ends in the first characters of a secret is not a cut secret.
    expect(redactor.sample('ends with canary')).toBe('ends with canary');
  });

  it('is inactive without secrets, and refuses a secret too short to redact', () => {
    expect(createSecretRedactor([])).toBe(NO_SECRETS);
    expect(NO_SECRETS.isActive).toBe(false);
    expect(() => createSecretRedactor(['1234567'])).toThrow(`at least ${MIN_SECRET_LENGTH} characters`);
  });
});

describe('properties (fast-check, fixed seed)', () => {
  it('no form of the secret survives, whatever surrounds it', () => {
    fc.assert(
      fc.property(secretArb, textArb, textArb, fc.constantFrom(...ENCODINGS), (secret, before, after, encoding) => {
        const r = createSecretRedactor([secret]);
        if (encoding === 'base64' || encoding === 'base64url') {
          const blob = Buffer.concat([Buffer.from(before), Buffer.from(secret), Buffer.from(after)]).toString(encoding);
          expect(base64Holds(r.text(`${before}${blob}${after}`), secret)).toBe(false);
          return;
        }
        const out = r.text(`${before}${encodeSecret(secret, encoding)}${after}`);
        for (const form of encodedSecrets(secret)) expect(out.includes(form)).toBe(false);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('no secret survives in any string or key of a JSON value', () => {
    fc.assert(
      fc.property(secretArb, fc.jsonValue({ maxDepth: 3 }), textArb, (secret, noise, around) => {
        const r = createSecretRedactor([secret]);
        const value = { [`${around}${secret}`]: [noise, `${around}${secret}${around}`, { nested: { deep: secret } }] };
        const out = JSON.stringify(r.json(value));
        expect(out.includes(encodeSecret(secret, 'json'))).toBe(false);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('a sample cut anywhere keeps no start of 4 or more characters of the secret at the cut', () => {
    fc.assert(
      fc.property(secretArb, textArb, fc.nat(), (secret, before, cutAt) => {
        const r = createSecretRedactor([secret]);
        const line = `${before}${secret}`;
        const out = r.sample(truncate(line, 1 + (cutAt % line.length)));
        for (let k = 4; k < secret.length; k++) expect(out.endsWith(`${secret.slice(0, k)}…`)).toBe(false);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('text and JSON without a secret come back unchanged, as the same reference', () => {
    fc.assert(
      fc.property(secretArb, textArb, fc.jsonValue({ maxDepth: 3 }), (secret, text, value) => {
        const forms = secretForms(secret);
        fc.pre(!forms.some((f) => text.includes(f) || JSON.stringify(value).includes(f)));
        const r = createSecretRedactor([secret]);
        expect(r.text(text)).toBe(text);
        expect(r.json(value)).toBe(value);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
