import type { Readable } from 'node:stream';
import { decodeUtf8, strictStreamDecoder } from './utf8.js';

const STREAM = { stream: true } as const;

export type BodyText =
  | { ok: true; text: string }
  /** Read to its end, but not well-formed UTF-8: the caller answers it (a parse error, after authentication). */
  | { ok: false; problem: 'not-utf8' }
  | { ok: false; problem: 'too-large' | 'length-mismatch' }
  | { ok: false; problem: 'aborted'; error: Error };

/**
 * Read an HTTP request body to its end as UTF-8 text, strictly (see utf8.ts). One pass over the bytes and no copy
 * of them (fastify's `parseAs: 'buffer'` would concatenate them first; `parseAs: 'string'` repairs bad bytes with
 * U+FFFD): a body in one chunk, the usual, is decoded once at its end; one in several chunks streams through a
 * decoder as they arrive, and a character split between chunks stays whole.
 * Like fastify's own reader: more than `limit` bytes stops at once, and a body whose length is not the declared
 * Content-Length is refused.
 */
export function readUtf8Body(
  payload: Readable,
  limit: number,
  declaredLength: number,
  done: (result: BodyText) => void,
): void {
  if (declaredLength > limit) {
    done({ ok: false, problem: 'too-large' });
    return;
  }
  // The usual body is one chunk: decoded at the end in one call. A decoder that streams is made only for more.
  let first: Buffer | undefined;
  let decoder: ReturnType<typeof strictStreamDecoder> | undefined;
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
    if (first === undefined && decoder === undefined) {
      first = part;
      return;
    }
    try {
      if (decoder === undefined) {
        decoder = strictStreamDecoder();
        text = decoder.decode(first, STREAM);
        first = undefined;
      }
      text += decoder.decode(part, STREAM);
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
    if (valid && decoder !== undefined) {
      try {
        // A multi-byte sequence cut off by the end of the body is as malformed as any other.
        text += decoder.decode();
      } catch {
        valid = false;
      }
    } else if (valid && first !== undefined) {
      const whole = decodeUtf8(first);
      valid = whole !== undefined;
      text = whole ?? '';
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
