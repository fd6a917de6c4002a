/**
 * Every secret the gateway holds, for the known-secret redactor (src/lib/secret-redactor.ts, threat model #17).
 * The config is searched whole for `SecretValue`s rather than field by field, so a secret added to the config
 * later is redacted without anyone remembering to list it here: upstream headers and secret environment
 * variables of stdio children, and the gateway's own keys (sessions, audit HMAC, TLS, signing keys, client
 * secrets, Redis URLs).
 */
import { Buffer } from 'node:buffer';
import { MIN_SECRET_LENGTH } from '../lib/secret-redactor.js';
import { isRedactedSecret, isSecretValue } from './secrets.js';
import type { GatehouseConfig } from './types.js';

/** The values to redact: each secret, and the parts of it an upstream may echo alone (see `secretParts`). */
export function knownSecrets(config: GatehouseConfig): string[] {
  const found = new Set<string>();
  const visit = (value: unknown): void => {
    if (isSecretValue(value)) {
      // A CA bundle or certificate held live for rotation is public: nothing to redact.
      if (!isRedactedSecret(value)) return;
      const secret = value.reveal();
      found.add(secret);
      for (const part of secretParts(secret)) if (part.length >= MIN_SECRET_LENGTH) found.add(part);
      return;
    }
    if (typeof value !== 'object' || value === null) return;
    for (const child of Object.values(value)) visit(child);
  };
  visit(config);
  return [...found];
}

/** An HTTP authorization value: the scheme, then the credential (RFC 9110 §11.4). */
const AUTHORIZATION = /^([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*) +(\S.*)$/s;
/** The members of a private JWK (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

/**
 * Parts of a secret that travel on their own, so an upstream echoes them without the rest: the credential of
 * an `Authorization`-style value (`Bearer <token>`: "invalid token <token>"), the `user:password` and the
 * password inside `Basic`, the password of a URL (`redis://:pw@host`), the private members of a JWK.
 * Parts shorter than MIN_SECRET_LENGTH are left out: the whole secret is still redacted.
 */
export function secretParts(secret: string): string[] {
  const parts: string[] = [];
  const auth = AUTHORIZATION.exec(secret);
  if (auth !== null) {
    const credential = auth[2]!;
    parts.push(credential);
    if (auth[1]!.toLowerCase() === 'basic') {
      const pair = Buffer.from(credential, 'base64').toString('utf8');
      const colon = pair.indexOf(':');
      if (colon > 0) parts.push(pair, pair.slice(colon + 1));
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(secret)) {
    try {
      const password = new URL(secret).password;
      if (password !== '') parts.push(password, decodeURIComponent(password));
    } catch {
      // Not a URL after all; the whole value is redacted.
    }
  }
  if (secret.startsWith('{')) {
    try {
      const jwk = JSON.parse(secret) as Record<string, unknown>;
      for (const member of PRIVATE_JWK_MEMBERS) {
        const part = jwk[member];
        if (typeof part === 'string') parts.push(part);
      }
    } catch {
      // Not JSON; the whole value is redacted.
    }
  }
  return parts;
}
