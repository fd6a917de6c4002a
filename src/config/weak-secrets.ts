/**
 * Secrets that protect nothing (secure defaults): a value this repository publishes, a placeholder a manifest
 * tells you to replace, or a file other users can read. Messages name where the secret came from and what to
 * do, never the value.
 */
import { fileExposure } from './file-exposure.js';
import type { SecretValue } from './types.js';

/**
 * The bundled example's demo credential (examples/orders/demo.key, committed so that `npm start` runs from a fresh
 * clone). It is public, so it is allowed only where nothing is at stake: a gateway listening on loopback. Its file
 * is checked out 0644 by git; a public value has nothing for file permissions to protect.
 */
const BUNDLED_DEMO_VALUES: ReadonlySet<string> = new Set(['demo-orders-key-NOT-A-SECRET-change-me']);

/** Placeholders of this repository's manifests and docs (k8s/secret.example.yaml: REPLACE-ME) and their kin. */
const PLACEHOLDER = /change[-_ ]?me|replace[-_ ]?me|not[-_ ]?a[-_ ]?secret/i;

/**
 * The problems of one resolved secret; `file` is the absolute path of a `{ fromFile }` reference.
 * `onLoopback`: `server.host` is a loopback address (the bundled example's demo values are allowed there only).
 */
export function weakSecretProblems(secret: SecretValue, file: string | undefined, onLoopback: boolean): string[] {
  const value = secret.reveal();
  if (BUNDLED_DEMO_VALUES.has(value)) {
    if (onLoopback) return [];
    return [
      `the secret from ${secret.source} is the bundled example's demo value (published in this repository), ` +
        'allowed only while server.host is a loopback address; use a real secret, e.g. from `openssl rand -base64 32`',
    ];
  }
  const placeholder = PLACEHOLDER.exec(value);
  if (placeholder !== null) {
    const word = placeholder[0];
    return [
      `the secret from ${secret.source} is a placeholder (it contains "${word}"), not a secret; ` +
        'put the real value there',
    ];
  }
  return file !== undefined ? fileExposure(file, 'secret file') : [];
}
