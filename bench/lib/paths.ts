/** Where the bench finds its own scripts, the gateway, the peers and its results folder (from dist/bench). */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'); // dist/bench
export const ROOT = path.resolve(HERE, '..', '..');
export const ECHO_SERVER = path.join(HERE, 'echo-server.js');
export const BARE_SERVER = path.join(HERE, 'bare-server.js');
export const GATEHOUSE_MAIN = path.join(ROOT, 'dist', 'src', 'main.js');
export const MANY_TOOLS_SERVER = path.join(HERE, 'many-tools-server.js');
export const MCP_PROXY_BIN = path.join(ROOT, 'node_modules', '.bin', 'mcp-proxy');
export const SUPERGATEWAY_BIN = path.join(ROOT, 'node_modules', '.bin', 'supergateway');
export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
