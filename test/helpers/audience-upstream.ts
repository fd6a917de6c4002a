/**
 * An HTTP MCP upstream that must know who calls (token-exchange.test.ts, id-jag.test.ts): it accepts `tools/call` only
 * with a bearer JWT from one authorization server for its own audience, and records what it saw (the Authorization
 * header, the body, the subject, a refusal), so a test can say who arrived and that no inbound token did.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRemoteJWKSet, jwtVerify } from 'jose';

export interface Seen {
  method: string;
  authorization: string | undefined;
  body: string;
  subject?: string;
  /** The `act` claim of the token it accepted (RFC 8693 §4.1), when the token named an actor. */
  actor?: string;
  refused?: boolean;
}

export interface AudienceUpstream {
  readonly url: string;
  readonly seen: Seen[];
  close(): Promise<void>;
}

/**
 * An MCP server (SDK, stateless) that serves `tools/list` to anyone but `tools/call` only with a bearer JWT from the
 * given issuer (verified against its JWKS) whose `aud` is its own URL; its tool `whoami` answers the token's subject.
 */
export async function startAudienceUpstream(from: { issuer: string; jwksUrl: string }): Promise<AudienceUpstream> {
  const jwks = createRemoteJWKSet(new URL(from.jwksUrl));
  const seen: Seen[] = [];
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.method !== 'POST') {
        res.writeHead(405).end();
        return;
      }
      const message = JSON.parse(body) as { method?: string; id?: unknown };
      const entry: Seen = { method: message.method ?? '', authorization: req.headers.authorization, body };
      seen.push(entry);
      let subject = 'nobody';
      if (message.method === 'tools/call') {
        const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
        try {
          if (token === undefined) throw new Error('no token');
          const { payload } = await jwtVerify(token, jwks, { issuer: from.issuer, audience: url });
          subject = String(payload.sub);
          entry.subject = subject;
          const act = payload.act as { sub?: unknown } | undefined;
          if (typeof act?.sub === 'string') entry.actor = act.sub;
        } catch {
          entry.refused = true;
          res
            .writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' })
            .end(JSON.stringify({ jsonrpc: '2.0', id: message.id ?? null, error: { code: -32001, message: 'no' } }));
          return;
        }
      }
      const mcp = new McpServer({ name: 'audience-upstream', version: '1.0.0' });
      mcp.registerTool('whoami', { description: 'The subject of the caller as this server sees it' }, () => ({
        content: [{ type: 'text', text: subject }],
      }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      await mcp.connect(transport);
      await transport.handleRequest(req, res, JSON.parse(body));
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  return {
    url,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
