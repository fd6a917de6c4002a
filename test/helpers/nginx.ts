/**
 * nginx (Debian's package) as a round-robin load balancer on loopback, for the multi-replica tests. Each instance
 * runs in the foreground with its own prefix folder, config, pid and temp paths, so nothing outside that folder is
 * touched and no system nginx is needed. Tests that need it FAIL under CI when the binary is missing (`.ci/run`
 * installs `nginx-light`) and are skipped locally with a hint.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { freePort, waitFor } from './upstream-tools.js';

const CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'];
export const NGINX_BIN = CANDIDATES.find((p) => existsSync(p));
export const NGINX_HINT = 'install nginx: apt-get install -y nginx-light';

export interface Nginx {
  readonly port: number;
  readonly url: string;
  readonly proc: ChildProcess;
  /** Everything nginx wrote to its error log (start-up problems, upstream failures). */
  errorLog(): string;
  close(): Promise<void>;
}

/**
 * Start nginx on 127.0.0.1:<free port> in front of `backends` (ports on 127.0.0.1), round-robin. Tuned for MCP's
 * Streamable HTTP: HTTP/1.1 to the backends with keep-alive, no response buffering (SSE), long read timeouts, and
 * the client's Host passed on (the gateway checks it). A connection refused by a dead backend is retried on the next
 * one (nothing was sent yet); a request already sent is never replayed (`non_idempotent` is not set), so a call is
 * never duplicated by the balancer.
 */
export async function startNginx(dir: string, backends: readonly number[]): Promise<Nginx> {
  if (NGINX_BIN === undefined) throw new Error(`nginx not found (${NGINX_HINT})`);
  const port = await freePort();
  mkdirSync(join(dir, 'logs'), { recursive: true });
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const errorLogFile = join(dir, 'logs', 'error.log');
  const conf = `
worker_processes 1;
daemon off;
master_process on;
pid ${join(dir, 'nginx.pid')};
error_log ${errorLogFile} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'tmp', 'body')};
  proxy_temp_path ${join(dir, 'tmp', 'proxy')};
  fastcgi_temp_path ${join(dir, 'tmp', 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'tmp', 'uwsgi')};
  scgi_temp_path ${join(dir, 'tmp', 'scgi')};
  upstream gatehouse {
${backends.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=2s;`).join('\n')}
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://gatehouse;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 300s;
      proxy_next_upstream error timeout;
      proxy_connect_timeout 2s;
    }
  }
}
`;
  const confFile = join(dir, 'nginx.conf');
  writeFileSync(confFile, conf);
  const proc = spawn(NGINX_BIN, ['-p', dir, '-c', confFile, '-e', errorLogFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: string[] = [];
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => stderr.push(c));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const errorLog = (): string => (existsSync(errorLogFile) ? readFileSync(errorLogFile, 'utf8') : '') + stderr.join('');
  await waitFor(
    `nginx listening on ${port}`,
    async () => {
      if (proc.exitCode !== null) throw new Error(`nginx exited ${proc.exitCode}: ${errorLog()}`);
      // Any HTTP answer (even a 502 while the backends start) means nginx is up.
      const res = await fetch(`${url}/healthz`).catch(() => undefined);
      return res !== undefined;
    },
    10_000,
  );
  return {
    port,
    url,
    proc,
    errorLog,
    async close() {
      if (proc.exitCode === null) {
        proc.kill('SIGQUIT'); // graceful: finish requests, then exit
        const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** `describe` for a suite that needs nginx: fails under CI without it, skips locally with the hint. */
export function describeNginx(name: string, body: () => void): void {
  if (NGINX_BIN !== undefined) {
    describe(name, body);
    return;
  }
  if (process.env.CI) {
    describe(name, () => {
      it('needs nginx', () => {
        throw new Error(`nginx is not installed and CI is set: ${NGINX_HINT}`);
      });
    });
    return;
  }
  console.warn(`[gatehouse tests] skipping "${name}": nginx is not installed (${NGINX_HINT})`);
  describe.skip(`${name} (${NGINX_HINT})`, body);
}
