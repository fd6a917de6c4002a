/** Every MCP request method the gateway answers, by name (docs/architecture.md §1); any other is -32601. */
import { GatewayError } from '../../errors/gateway-error.js';
import type { MethodHandler } from '../pipeline.js';
import { complete } from './completion.js';
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
