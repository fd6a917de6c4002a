/**
 * Fuzz of the redaction choke point through the real upstream stack (threat model #17): for any secret, any
 * text around it, any encoding and any split of the SSE answer into TCP writes — inside `data:` lines, JSON
 * escapes and UTF-8 sequences — no form of the secret reaches what the upstream layer hands on (the result and
 * a logging notification) or its log, and the text around it is intact. The answer comes from a real HTTP
 * server on port 0 through the real HttpChannel, SSE parser and RpcPeer; SSE reassembly and JSON decoding
 * happen before the choke point, which is what lets one pass over parsed strings catch a split secret.
 * fast-check, fixed seed, bounded runs.
 */
import { Buffer } from 'node:buffer';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { UpstreamConfig } from '../../src/config/types.js';
import { createSecretRedactor, MIN_SECRET_LENGTH } from '../../src/lib/secret-redactor.js';
import { ManagedUpstream } from '../../src/upstream/managed-upstream.js';
import { base64Holds, encodedSecrets, encodeSecret, TEXT_ENCODINGS } from '../helpers/secret-forms.js';

const SEED = 0x5ec7e8;
const RUNS = 30;

/** What the server answers the next tools/call with: the SSE bytes and the sizes of the writes. */
let next: { body: Buffer; chunks: number[] } = { body: Buffer.alloc(0), chunks: [1] };
let server: Server;
let config: UpstreamConfig;
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-redaction-fuzz-'));

beforeAll(async () => {
  server = createServer((req, res) => {
    void (async () => {
      if (req.method !== 'POST') return void res.writeHead(405).end();
      const chunks: Buffer[] = [];
      for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
      const message = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: number; method?: string };
      if (message.id === undefined) return void res.writeHead(202).end();
      if (message.method === 'initialize') {
        const result = { protocolVersion: '2025-11-25', capabilities: {}, serverInfo: { name: 'fuzz', version: '1' } };
        const body = JSON.stringify({ jsonrpc: '2.0', id: message.id, result });
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.socket?.setNoDelay(true);
      // The gateway minted this id: the fuzz case's answer is written under it.
      const body = Buffer.from(next.body.toString('utf8').replaceAll('"id":0', `"id":${message.id}`));
      for (let at = 0, i = 0; at < body.length; i++) {
        const size = next.chunks[i % next.chunks.length]!;
        res.write(body.subarray(at, at + size));
        at += size;
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      res.end();
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const file = join(dir, 'gatehouse.yaml');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  writeFileSync(file, `upstreams:\n  - ${JSON.stringify({ name: 'fz', transport: 'http', url, timeoutMs: 10_000 })}\n`);
  config = loadConfig(file).upstreams[0]!;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

/** Characters that each encoding treats differently, two- and four-byte UTF-8 among them (split mid-sequence). */
const SECRET_CHARS = [...'aZ09', '"', '\\', '/', '+', '=', ' ', '%', '&', 'é', '€', '😀', '\n'];
const secretArb = fc.string({ unit: fc.constantFrom(...SECRET_CHARS), minLength: MIN_SECRET_LENGTH, maxLength: 24 });
// No character in common with SECRET_CHARS: the text around a secret can never hold one itself.
const aroundArb = fc.string({ unit: fc.constantFrom(...'xyßü·'), maxLength: 12 });
type Escaping = 'none' | 'non-ascii' | 'secret';

/** JSON text as an upstream may write it: as is, non-ASCII as \uXXXX, or every character of `secret` escaped. */
function serialise(message: unknown, secret: string, escaping: Escaping): string {
  const json = JSON.stringify(message);
  const unit = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  if (escaping === 'non-ascii') return json.replace(/[\u0080-\uffff]/g, unit);
  const inJson = JSON.stringify(secret).slice(1, -1);
  if (escaping === 'secret') return json.split(inJson).join(secret.replace(/[\s\S]/g, unit));
  return json;
}

describe('redaction at the choke point, fuzzed through the HTTP channel', () => {
  it('no form of the secret survives any encoding, escaping or split of the SSE answer', async () => {
    await fc.assert(
      fc.asyncProperty(
        secretArb,
        aroundArb,
        fc.constantFrom(...TEXT_ENCODINGS, 'base64' as const),
        fc.constantFrom<Escaping>('none', 'non-ascii', 'secret'),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 16 }),
        async (secret, around, encoding, escaping, chunks) => {
          const leaked =
            encoding === 'base64'
              ? Buffer.concat([Buffer.from(around), Buffer.from(secret), Buffer.from('!')]).toString('base64')
              : encodeSecret(secret, encoding);
          const text = `<<${around}|${leaked}|${around}>>`;
          const log = { level: 'info', data: text };
          const notification = { jsonrpc: '2.0', method: 'notifications/message', params: log };
          const result = { jsonrpc: '2.0', id: 0, result: { content: [{ type: 'text', text }], [secret]: 'as a key' } };
          const events = [notification, result].map(
            (m) => `event: message\ndata: ${serialise(m, secret, escaping)}\n\n`,
          );
          next = { body: Buffer.from(events.join('')), chunks };

          const lines: string[] = [];
          const notifications: unknown[] = [];
          const upstream = new ManagedUpstream({
            config,
            logger: pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) }),
            clientCapabilities: () => ({}),
            clientInfo: { name: 'fuzz', version: '1' },
            secrets: createSecretRedactor([secret]),
            hooks: {
              relay: () => Promise.resolve({}),
              notification: (_name, n) => void notifications.push(n),
              ready: () => undefined,
              stateChanged: () => undefined,
            },
          });
          try {
            await upstream.start();
            const limits = { timeoutMs: 10_000, maxTotalTimeoutMs: 10_000 };
            const got = await upstream.request('tools/call', { name: 'x' }, limits);
            const output = JSON.stringify({ got, notifications, lines });
            for (const form of encodedSecrets(secret)) {
              expect(output.includes(form), `holds ${JSON.stringify(form)}`).toBe(false);
            }
            expect(base64Holds(output, secret)).toBe(false);
            const first = (got.content as { text: string }[])[0]!.text;
            expect(first.startsWith(`<<${around}|`) && first.endsWith(`|${around}>>`), first).toBe(true);
            expect(Object.keys(got)).toEqual(['content', '[REDACTED]']);
          } finally {
            await upstream.close();
          }
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
  }, 120_000);
});
