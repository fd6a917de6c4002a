import type { Readable } from 'node:stream';
import { strictStreamDecoder } from './utf8.js';

export type BodyText =
  | { ok: true; text: string }
  /** Read to its end, but not well-formed UTF-8: the caller answers it (a parse error, after authentication). */
  | { ok: false; problem: 'not-utf8' }
  | { ok: false; problem: 'too-large' | 'length-mismatch' }
  | { ok: false; problem: 'aborted'; error: Error };

/**
 * Read an HTTP request body to its end as UTF-8 text, strictly (see utf8.ts). Each chunk is decoded as it
 * arrives — one pass over the bytes and no copy of them (fastify's `parseAs: 'buffer'` would concatenate them
 * first; `parseAs: 'string'` repairs bad bytes with U+FFFD) — and a character split between chunks stays whole.
 * Like fastify's own reader: more than `limit` bytes stops at once, and a body whose length is not the declared
 * Content-Length is refused.
 */
export function readUtf8Body(payload: Readable, limit: number, declaredLength: number, done: (result: BodyText) => void): void {
  if (declaredLength > limit) {
    done({ ok: false, problem: 'too-large' });
    return;
  }
  const decoder = strictStreamDecoder();
  let text = '';
  let bytes = 0;
  let valid = true;
  const stop = (): void => {
    payload.removeListener('data', onData);
    payload.removeListener('end', onEnd);
    payload.removeListener('error', onError);
  };
  const onData = (chunk: Buffer | string): void => {
    const part = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    bytes += part.length;
    if (bytes > limit) {
      stop();
      done({ ok: false, problem: 'too-large' });
      return;
    }
    if (!valid) return;
    try {
      text += decoder.decode(part, { stream: true });
    } catch {
      // Read on to the end (the request still gets its answer); nothing more is decoded.
      valid = false;
      text = '';
    }
  };
  const onEnd = (): void => {
    stop();
    if (!Number.isNaN(declaredLength) && bytes !== declaredLength) {
      done({ ok: false, problem: 'length-mismatch' });
      return;
    }
    if (valid) {
      try {
        // A multi-byte sequence cut off by the end of the body is as malformed as any other.
        text += decoder.decode();
      } catch {
        valid = false;
      }
    }
    done(valid ? { ok: true, text } : { ok: false, problem: 'not-utf8' });
  };
  const onError = (err: Error): void => {
    stop();
    done({ ok: false, problem: 'aborted', error: err });
  };
  payload.on('data', onData);
  payload.on('end', onEnd);
  payload.on('error', onError);
  payload.resume();
}
