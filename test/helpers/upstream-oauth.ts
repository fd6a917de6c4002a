/**
 * An upstream that runs its own authorization server, for per-user OAuth tests: a second real `oidc-provider` (dynamic
 * registration, PKCE required, resource indicators issuing JWT access tokens for the upstream's resource, refresh
 * tokens, revocation) and an MCP server over HTTP that accepts only that server's tokens for its own resource on
 * `tools/call` (the catalogue — initialize, tools/list — is open, being the gateway's own connection) and records
 * the subject each call carried.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRemoteJWKSet, jwtVerify } from 'jose';

interface ProviderInstance {
  callback(): (req: unknown, res: unknown) => void;
}
type ProviderCtor = new (issuer: string, config: Record<string, unknown>) => ProviderInstance;

export interface OAuthUpstream extends AsyncDisposable {
  readonly issuer: string;
  /** The MCP endpoint, which is also its RFC 8707 resource. */
  readonly url: string;
  /** The subject of every accepted tools/call, in order. */
  readonly subjects: string[];
  /** Requests refused for a missing or bad token. */
  refused: number;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

export async function startOAuthUpstream(opts: { accessTokenTtl?: number } = {}): Promise<OAuthUpstream> {
  const specifier = 'oidc-provider';
  const { default: Provider, errors } = (await import(specifier)) as {
    default: ProviderCtor;
    errors: { InvalidTarget: new () => Error };
  };
  const asServer = createServer();
  const mcpServer = createServer();
  const issuer = `http://127.0.0.1:${await listen(asServer)}`;
  const url = `http://127.0.0.1:${await listen(mcpServer)}/mcp`;

  const provider = new Provider(issuer, {
    findAccount: (_ctx: unknown, id: string) => ({ accountId: id, claims: () => ({ sub: id }) }),
    scopes: ['openid', 'offline_access', 'tools'],
    features: {
      devInteractions: { enabled: true },
      registration: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => url,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => {
          if (resource !== url) throw new errors.InvalidTarget();
          return {
            scope: 'tools',
            audience: url,
            accessTokenFormat: 'jwt',
            accessTokenTTL: opts.accessTokenTtl ?? 300,
          };
        },
      },
    },
    pkce: { required: () => true },
    issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(t: string): boolean }) =>
      client.grantTypeAllowed('refresh_token'),
    cookies: { keys: ['upstream-as-cookie-key-for-tests-only'] },
    ttl: { Session: 600, Interaction: 600, Grant: 600, IdToken: 300, AuthorizationCode: 60, RefreshToken: 3600 },
  });
  asServer.on('request', provider.callback());

  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
  const up: OAuthUpstream = {
    issuer,
    url,
    subjects: [],
    refused: 0,
    close: async () => {
      for (const s of [asServer, mcpServer]) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
    [Symbol.asyncDispose]: () => up.close(),
  };
  const metadataUrl = `http://127.0.0.1:${new URL(url).port}/.well-known/oauth-protected-resource/mcp`;

  mcpServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      if (req.url === '/.well-known/oauth-protected-resource/mcp') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ resource: url, authorization_servers: [issuer], bearer_methods_supported: ['header'] }),
        );
        return;
      }
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body =
        chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString()) as { method?: string }) : undefined;
      const open = ['initialize', 'notifications/initialized', 'tools/list'].includes(body?.method ?? '');
      let subject: string | undefined;
      if (!open) {
        const auth = req.headers.authorization ?? '';
        try {
          const { payload } = await jwtVerify(auth.replace(/^Bearer /, ''), jwks, { issuer, audience: url });
          subject = payload.sub;
        } catch {
          up.refused++;
          res.writeHead(401, { 'www-authenticate': `Bearer resource_metadata="${metadataUrl}"` });
          res.end();
          return;
        }
      }
      const server = new McpServer({ name: 'oauth-upstream', version: '1.0.0' });
      server.registerTool('whoami', { description: 'Who the upstream sees' }, () => {
        up.subjects.push(subject ?? '(none)');
        return { content: [{ type: 'text', text: subject ?? '(none)' }] };
      });
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      await server.connect(transport);
      res.on('close', () => void server.close());
      await transport.handleRequest(req, res, body);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  return up;
}

/** A free port on 127.0.0.1 (so a gateway's `auth.resource` defaults to its real URL). */
export async function freePort(): Promise<number> {
  const s = createServer();
  const port = await listen(s);
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
