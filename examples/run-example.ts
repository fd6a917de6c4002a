/**
 * `npm start`: the bundled example in one command, no external service. Starts the legacy orders server on
 * 127.0.0.1:9101 (it only answers with its static key), waits until it listens, then starts Gatehouse on
 * examples/gatehouse.yaml (127.0.0.1:8080/mcp). Ctrl-C stops both; the gateway shuts down gracefully.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url)); // dist/examples
const root = join(here, '..', '..');
const config = process.env.GATEHOUSE_CONFIG ?? join(root, 'examples', 'gatehouse.yaml');

function startOrders(): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const orders = spawn(process.execPath, [join(here, 'orders', 'server.js'), '--http'], {
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let buffered = '';
    const timer = setTimeout(() => reject(new Error('the orders example did not start within 10 s')), 10_000);
    orders.stderr!.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      buffered += chunk.toString();
      if (buffered.includes('orders listening on')) {
        clearTimeout(timer);
        resolve(orders);
      }
    });
    orders.once('exit', (code) => {
      clearTimeout(timer);
      reject(
        new Error(
          `the orders example exited with code ${code ?? 'none'} (is port 9101 taken? set ORDERS_PORT and the url in ${config})`,
        ),
      );
    });
  });
}

const orders = await startOrders();
const gateway = spawn(process.execPath, [join(root, 'dist', 'src', 'main.js'), 'start', '--config', config], {
  stdio: 'inherit',
});

let stopping = false;
function stop(signal: NodeJS.Signals): void {
  if (stopping) return;
  stopping = true;
  gateway.kill(signal);
}
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
gateway.once('exit', (code) => {
  orders.kill('SIGTERM');
  process.exitCode = code ?? 0;
});
