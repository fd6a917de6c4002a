/**
 * Every MCP request method the gateway answers, by name and protocol generation (docs/architecture.md §1); any other
 * is -32601 (a 404 in 2026-07-28).
 */
import { GatewayError } from '../../errors/gateway-error.js';
import type { MethodHandler } from '../pipeline.js';
import { complete } from './completion.js';
import { discover } from './discover.js';
import { listen } from './listen.js';
import { setLogLevel } from './logging.js';
import { getPrompt, listPrompts } from './prompts.js';
import { listResources, listResourceTemplates, resourceRequest } from './resources.js';
import { callTool, listTools } from './tools.js';

export const METHODS: Readonly<Record<string, MethodHandler>> = Object.freeze({
  ping: () => ({}),
  initialize: () => {
    throw new GatewayError('GW_MCP_ALREADY_INITIALIZED');
  },
  'tools/list': listTools,
  'tools/call': callTool,
  'resources/list': listResources,
  'resources/templates/list': listResourceTemplates,
  'resources/read': resourceRequest,
  'resources/subscribe': resourceRequest,
  'resources/unsubscribe': resourceRequest,
  'prompts/list': listPrompts,
  'prompts/get': getPrompt,
  'completion/complete': complete,
  'logging/setLevel': setLogLevel,
});

/**
 * MCP 2026-07-28: the same methods without those the revision removed (`initialize`, `ping`, `logging/setLevel`,
 * `resources/subscribe`, `resources/unsubscribe`; changelog), and with `server/discover` and `subscriptions/listen`.
 */
export const MODERN_METHODS: Readonly<Record<string, MethodHandler>> = Object.freeze({
  'server/discover': discover,
  'subscriptions/listen': listen,
  'tools/list': listTools,
  'tools/call': callTool,
  'resources/list': listResources,
  'resources/templates/list': listResourceTemplates,
  'resources/read': resourceRequest,
  'prompts/list': listPrompts,
  'prompts/get': getPrompt,
  'completion/complete': complete,
});
