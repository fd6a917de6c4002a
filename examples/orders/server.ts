/**
 * The bundled "legacy" orders MCP server: a stand-in for an internal service that only
 * answers callers presenting a static API key. Gatehouse holds that key so end users never do.
 *
 *   --http (default)  Streamable HTTP, stateless, on 127.0.0.1:<port>/mcp; requires X-API-Key
 *   --stdio           stdio transport, no key check
 *
 * Port: --port N, else ORDERS_PORT, else 9101 (0 picks a free port).
 * Key:  ORDERS_API_KEY, else the file named by ORDERS_API_KEY_FILE, else examples/orders/demo.key.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const HOST = '127.0.0.1';
const DEFAULT_PORT = 9101;

// ---------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------

const ORDER_STATUSES = ['pending', 'shipped', 'delivered', 'cancelled'] as const;
type OrderStatus = (typeof ORDER_STATUSES)[number];
/** Terminal states: an order in one of these can no longer change. */
const FINAL_STATUSES: ReadonlySet<OrderStatus> = new Set(['delivered', 'cancelled']);

const StatusSchema = z.enum(ORDER_STATUSES);
const OrderIdSchema = z
  .string()
  .regex(/^ord-[0-9]{4,10}$/)
  .describe('Order id, e.g. ord-1001');
const CustomerIdSchema = z
  .string()
  .regex(/^cust-[0-9]{1,10}$/)
  .describe('Customer id, e.g. cust-1');

const OrderItemSchema = z
  .object({
    sku: z.string(),
    name: z.string(),
    quantity: z.number().int().positive(),
    unit_price: z.number().nonnegative(),
  })
  .strict();

const OrderSchema = z
  .object({
    id: z.string(),
    customer_id: z.string(),
    status: StatusSchema,
    total: z.number().nonnegative(),
    items: z.array(OrderItemSchema),
  })
  .strict();
type Order = z.infer<typeof OrderSchema>;
type OrderItem = z.infer<typeof OrderItemSchema>;

const ToolErrorSchema = z.object({ code: z.string(), message: z.string() }).strict();

/**
 * Output of the single-order tools: an order, or `{error}` when isError is set. The SDK client
 * validates structuredContent against outputSchema even on error results (server side it skips
 * them), so the schema must admit both shapes; a top-level union is not possible because the SDK
 * only accepts object schemas as outputSchema, hence optional order fields.
 */
const OrderOrErrorSchema = OrderSchema.partial().extend({ error: ToolErrorSchema.optional() }).strict();

function order(id: number, customer: number, status: OrderStatus, items: OrderItem[]): Order {
  const total = Math.round(items.reduce((sum, i) => sum + i.quantity * i.unit_price, 0) * 100) / 100;
  return { id: `ord-${id}`, customer_id: `cust-${customer}`, status, total, items };
}

const orders = new Map<string, Order>(
  [
    order(1001, 1, 'pending', [{ sku: 'KB-01', name: 'Mechanical keyboard', quantity: 1, unit_price: 89.9 }]),
    order(1002, 1, 'shipped', [{ sku: 'MS-02', name: 'Wireless mouse', quantity: 2, unit_price: 24.5 }]),
    order(1003, 2, 'delivered', [{ sku: 'MN-27', name: '27" monitor', quantity: 1, unit_price: 249 }]),
    order(1004, 2, 'cancelled', [{ sku: 'CB-03', name: 'USB-C cable', quantity: 3, unit_price: 9.99 }]),
    order(1005, 3, 'pending', [
      { sku: 'HD-10', name: 'Headset', quantity: 1, unit_price: 59 },
      { sku: 'CB-03', name: 'USB-C cable', quantity: 1, unit_price: 9.99 },
    ]),
    order(1006, 3, 'shipped', [{ sku: 'DK-05', name: 'Docking station', quantity: 1, unit_price: 179 }]),
    order(1007, 4, 'pending', [{ sku: 'LP-14', name: 'Laptop stand', quantity: 2, unit_price: 34.95 }]),
    order(1008, 1, 'delivered', [{ sku: 'WC-01', name: 'Webcam', quantity: 1, unit_price: 69 }]),
  ].map((o) => [o.id, o]),
);

/**
 * Tool calls this process has run, by tool: `GET /calls` (HTTP mode, API key required) answers them, so the
 * gateway's tests can tell a cached or deduplicated call from one that reached the server.
 */
const callCounts = new Map<string, number>();
function counted(tool: string): void {
  callCounts.set(tool, (callCounts.get(tool) ?? 0) + 1);
}

/** Idempotency keys of update_order_status → what the first call asked for and answered. */
const idempotencyCache = new Map<string, { fingerprint: string; result: CallToolResult }>();

// ---------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------

function ok(structured: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
}

function toolError(code: string, message: string): CallToolResult {
  const structured = { error: { code, message } };
  return {
    isError: true,
    content: [{ type: 'text', text: JSON.stringify(structured) }],
    structuredContent: structured,
  };
}

function buildOrdersServer(): McpServer {
  const server = new McpServer({ name: 'orders', version: '1.0.0' });

  server.registerTool(
    'get_order',
    {
      title: 'Get order',
      description: 'Fetch one order by id.',
      inputSchema: z.object({ order_id: OrderIdSchema }).strict(),
      outputSchema: OrderOrErrorSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    ({ order_id }) => {
      counted('get_order');
      const found = orders.get(order_id);
      return found ? ok(found) : toolError('not_found', `order ${order_id} not found`);
    },
  );

  server.registerTool(
    'search_orders',
    {
      title: 'Search orders',
      description: "List a customer's orders, optionally filtered by status.",
      inputSchema: z.object({ customer_id: CustomerIdSchema, status: StatusSchema.optional() }).strict(),
      outputSchema: z.object({ orders: z.array(OrderSchema) }).strict(),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    ({ customer_id, status }) => {
      const matches = [...orders.values()].filter(
        (o) => o.customer_id === customer_id && (status === undefined || o.status === status),
      );
      return ok({ orders: matches });
    },
  );

  server.registerTool(
    'update_order_status',
    {
      title: 'Update order status',
      description:
        'Change the status of an order. Delivered and cancelled orders are final. ' +
        'Replaying an idempotency_key returns the first result without applying the change again.',
      inputSchema: z
        .object({
          order_id: OrderIdSchema,
          new_status: StatusSchema,
          idempotency_key: z
            .string()
            .min(8)
            .max(64)
            .regex(/^[A-Za-z0-9_-]+$/)
            .optional(),
        })
        .strict(),
      outputSchema: OrderOrErrorSchema,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    ({ order_id, new_status, idempotency_key }) => {
      counted('update_order_status');
      const fingerprint = `${order_id}\u0000${new_status}`;
      if (idempotency_key !== undefined) {
        const cached = idempotencyCache.get(idempotency_key);
        if (cached) {
          return cached.fingerprint === fingerprint
            ? cached.result
            : toolError(
                'idempotency_key_reused',
                `idempotency key ${idempotency_key} was used for a different request`,
              );
        }
      }
      const result = applyStatusChange(order_id, new_status);
      if (idempotency_key !== undefined) idempotencyCache.set(idempotency_key, { fingerprint, result });
      return result;
    },
  );

  return server;
}

function applyStatusChange(orderId: string, newStatus: OrderStatus): CallToolResult {
  const current = orders.get(orderId);
  if (!current) return toolError('not_found', `order ${orderId} not found`);
  if (FINAL_STATUSES.has(current.status)) {
    return toolError('invalid_transition', `order ${orderId} is ${current.status} and can no longer change`);
  }
  const updated: Order = { ...current, status: newStatus };
  orders.set(orderId, updated);
  return ok(updated);
}

// ---------------------------------------------------------------------------
// API key
// ---------------------------------------------------------------------------

/** demo.key lives next to the source; the compiled copy runs from dist/, so walk up to the package root. */
function findDemoKeyFile(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  const beside = join(dir, 'demo.key');
  if (existsSync(beside)) return beside;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      const candidate = join(dir, 'examples', 'orders', 'demo.key');
      return existsSync(candidate) ? candidate : undefined;
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function loadApiKey(): string {
  const fromEnv = process.env.ORDERS_API_KEY?.trim();
  if (fromEnv) return fromEnv;
  const file = process.env.ORDERS_API_KEY_FILE || findDemoKeyFile();
  if (!file) throw new Error('no API key: set ORDERS_API_KEY or ORDERS_API_KEY_FILE');
  const key = readFileSync(file, 'utf8').trim();
  if (!key) throw new Error(`API key file ${file} is empty`);
  return key;
}

/** Hashing both sides gives equal-length buffers, so the comparison leaks neither content nor length. */
function keyMatches(presented: string | string[] | undefined, expectedDigest: Buffer): boolean {
  if (typeof presented !== 'string') return false;
  const digest = createHash('sha256').update(presented, 'utf8').digest();
  return timingSafeEqual(digest, expectedDigest);
}

// ---------------------------------------------------------------------------
// Transports
// ---------------------------------------------------------------------------

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers }).end(JSON.stringify(body));
}

function loopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.replace(/:\d+$/, '');
  return name === '127.0.0.1' || name === 'localhost' || name === '[::1]';
}

async function runHttp(port: number): Promise<void> {
  const expectedDigest = createHash('sha256').update(loadApiKey(), 'utf8').digest();

  const httpServer = createServer((req: IncomingMessage, res: ServerResponse) => {
    // DNS rebinding (MCP transports, Security Warning): a page whose name now resolves to 127.0.0.1 could send
    // the published demo key. Only loopback Hosts, and no browser (Origin) at all: the gateway sends neither.
    if (!loopbackHost(req.headers.host) || req.headers.origin !== undefined) {
      sendJson(res, 403, { error: 'forbidden_host' });
      return;
    }
    // Then the key check, for every path and method.
    if (!keyMatches(req.headers['x-api-key'], expectedDigest)) {
      sendJson(res, 401, { error: 'invalid_api_key' });
      return;
    }
    const path = new URL(req.url ?? '/', `http://${HOST}`).pathname;
    if (path === '/calls' && req.method === 'GET') {
      sendJson(res, 200, Object.fromEntries(callCounts));
      return;
    }
    if (path !== '/mcp') {
      sendJson(res, 404, { error: 'not_found' });
      return;
    }
    if (req.method !== 'POST') {
      // Stateless: no sessions to DELETE and no standalone stream to GET.
      sendJson(
        res,
        405,
        { jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed' }, id: null },
        { Allow: 'POST' },
      );
      return;
    }
    // SDK stateless pattern: a fresh server and transport per request, shared data outside.
    const server = buildOrdersServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    server
      .connect(transport)
      .then(() => transport.handleRequest(req, res))
      .catch((error: unknown) => {
        process.stderr.write(`orders: request failed: ${String(error)}\n`);
        if (!res.headersSent) {
          sendJson(res, 500, { jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null });
        }
      });
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(port, HOST, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const address = httpServer.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  process.stderr.write(`orders listening on http://${HOST}:${actualPort}/mcp\n`);

  const shutdown = (): void => {
    httpServer.close(() => process.exit(0));
    httpServer.closeAllConnections();
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

async function runStdio(): Promise<void> {
  const server = buildOrdersServer();
  await server.connect(new StdioServerTransport());
  process.stderr.write('orders ready (stdio)\n');

  const shutdown = (): void => {
    void server.close().finally(() => process.exit(0));
  };
  // The SDK transport does not react to EOF; a closed stdin means the client is gone.
  process.stdin.once('end', shutdown);
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

function parsePort(argv: readonly string[]): number {
  const flag = argv.indexOf('--port');
  const raw = flag >= 0 ? argv[flag + 1] : process.env.ORDERS_PORT;
  if (raw === undefined || raw === '') return DEFAULT_PORT;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port: ${raw}`);
  return port;
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv.includes('--stdio')) await runStdio();
  else await runHttp(parsePort(argv));
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`orders: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
