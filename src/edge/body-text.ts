import { errorCodes, type FastifyInstance } from 'fastify';
import { parseJson } from '../lib/json-rpc.js';
import { readUtf8Body } from '../lib/utf8-body.js';

/** What the parser hands on for a body that was not UTF-8: the handler refuses it in its own order (after auth). */
const NOT_UTF8: unique symbol = Symbol('body is not valid UTF-8');

/**
 * The `application/json` parser of the edge: the body as text, strictly UTF-8 (lib/utf8-body.ts). Bytes that are
 * not UTF-8 are not repaired into U+FFFD and forwarded (threat model #8): the request gets a parse error (-32700,
 * HTTP 400) like any other body that is not JSON. Limit and Content-Length failures are fastify's own errors, so
 * the edge's error handler maps them as before.
 */
export function addJsonTextParser(app: FastifyInstance, limit: number): void {
  app.addContentTypeParser('application/json', { bodyLimit: limit }, (request, payload, done) => {
    readUtf8Body(payload, limit, Number(request.headers['content-length']), (r) => {
      if (r.ok) done(null, r.text);
      else if (r.problem === 'not-utf8') done(null, NOT_UTF8);
      else if (r.problem === 'too-large') done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE(), undefined);
      else if (r.problem === 'aborted') done(Object.assign(r.error, { statusCode: 400 }), undefined);
      else done(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH(), undefined);
    });
  });
}

/** The JSON value of a body the parser above read (an absent body is not JSON either). */
export function parseJsonBody(body: unknown): ReturnType<typeof parseJson> {
  if (body === NOT_UTF8) return { ok: false, reason: 'body is not valid UTF-8' };
  return parseJson(typeof body === 'string' ? body : '');
}
