/**
 * RFC 9728 OAuth 2.0 Protected Resource Metadata (MCP authorization §Authorization Server Location). Served at
 * both locations clients try (MCP 2025-11-25 §Protected Resource Metadata Discovery): path-suffixed
 * (`/.well-known/oauth-protected-resource/mcp` for the resource `https://gw/mcp`) and the root
 * `/.well-known/oauth-protected-resource`. The 401 challenge's `resource_metadata` points at the first.
 *
 * Like every route these pass the edge's Origin/Host checks (threat model #7). Not registered when
 * `auth.mode: none`: there is nothing to discover.
 */
import type { FastifyInstance } from 'fastify';
import { PRM_WELL_KNOWN, resourcePath } from '../auth/challenge.js';
import type { GatehouseConfig } from '../config/types.js';

export interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers: string[];
  scopes_supported?: string[];
  bearer_methods_supported: ['header'];
  resource_name: string;
  /** RFC 9728 §2: the listener can check RFC 8705 certificate-bound tokens. */
  tls_client_certificate_bound_access_tokens?: true;
}

export function protectedResourceMetadata(config: GatehouseConfig): ProtectedResourceMetadata {
  const auth = config.auth;
  const servers = [...auth.authorizationServers];
  const clientCerts = config.server.tls?.clientCertificates;
  return {
    resource: auth.resource,
    authorization_servers: servers,
    ...(auth.scopesSupported.length > 0 ? { scopes_supported: [...auth.scopesSupported] } : {}),
    bearer_methods_supported: ['header'],
    resource_name: 'Gatehouse',
    ...(clientCerts === 'request' || clientCerts === 'require'
      ? { tls_client_certificate_bound_access_tokens: true }
      : {}),
  };
}

export function registerWellKnown(app: FastifyInstance, config: GatehouseConfig): void {
  if (config.auth.mode === 'none') return;
  const body = JSON.stringify(protectedResourceMetadata(config));
  const paths = new Set([PRM_WELL_KNOWN, `${PRM_WELL_KNOWN}${resourcePath(config.auth.resource)}`]);
  for (const path of paths) {
    app.get(path, async (_request, reply) =>
      reply.header('content-type', 'application/json').header('cache-control', 'max-age=300').send(body),
    );
  }
}
