#!/usr/bin/env node
/**
 * The benchmark's baseline: a bare `node:http` server that parses each JSON-RPC request and answers the reply
 * the echo tool would give. It is the limit of this machine's HTTP path. Listens on 127.0.0.1 only, prints
 * `{"port":N}` on stdout when ready, and exits when its stdin ends (the bench went away) or on SIGTERM.
 */
import http from 'node:http';

const server = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => {
    body += chunk;
  });
  req.on('end', () => {
    let msg: { id?: unknown; method?: unknown; params?: { arguments?: { text?: unknown } } };
    try {
      msg = JSON.parse(body) as typeof msg;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json', 'content-length': '0' });
      res.end();
      return;
    }
    const text = typeof msg.params?.arguments?.text === 'string' ? msg.params.arguments.text : '';
    const reply = JSON.stringify({ jsonrpc: '2.0', id: msg.id ?? null, result: { content: [{ type: 'text', text }] } });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(reply) });
    res.end(reply);
  });
});
server.keepAliveTimeout = 60_000;

server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('unexpected address');
  process.stdout.write(`${JSON.stringify({ port: addr.port })}\n`);
});

const exit = (): never => process.exit(0);
process.stdin.on('end', exit);
process.stdin.on('close', exit);
process.stdin.resume();
process.on('SIGTERM', exit);
process.on('SIGINT', exit);
