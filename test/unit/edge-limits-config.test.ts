/** `server.maxConnections`, `server.httpRateLimit` and `server.overload` through the real loader. */
import { describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS } from '../../src/config/index.js';
import { useConfigFolder } from '../helpers/config-folder.js';

const STDIO = 'upstreams:\n  - name: fx\n    transport: stdio\n    command: node\n';

const { load, problems } = useConfigFolder('edge-config');

describe('server edge limits', () => {
  it('fills the defaults', () => {
    const { server } = load(STDIO);
    expect(server.maxConnections).toBe(20_000);
    expect(server.httpRateLimit).toEqual(CONFIG_DEFAULTS.server.httpRateLimit);
    expect(server.overload).toEqual({ enabled: true, maxEventLoopDelayMs: 1000, retryAfterSeconds: 10 });
    expect(Object.isFrozen(server.httpRateLimit.oauth)).toBe(true);
  });

  it('merges a partial block key by key over the defaults', () => {
    const { server } = load(
      `server:\n  httpRateLimit:\n    registration: { perIp: 3 }\n    authFailures: { windowSeconds: 300 }\n  overload: { maxRssBytes: 2147483648 }\n${STDIO}`,
    );
    expect(server.httpRateLimit).toEqual({
      enabled: true,
      oauth: { windowSeconds: 60, perIp: 300, perClient: 600 },
      registration: { windowSeconds: 3600, perIp: 3 },
      sessions: { windowSeconds: 60, perIp: 120, perClient: 60 },
      authFailures: { windowSeconds: 300, perIp: 60 },
    });
    expect(server.overload).toEqual({
      enabled: true,
      maxEventLoopDelayMs: 1000,
      retryAfterSeconds: 10,
      maxRssBytes: 2147483648,
    });
  });

  it('refuses unknown keys and out-of-range values with their line', () => {
    const found = problems(
      `server:\n  maxConnections: 0\n  httpRateLimit:\n    sessions: { perIP: 5 }\n  overload:\n    retryAfterSeconds: 0\n${STDIO}`,
    );
    const at = (pointer: string) => found.find((p) => p.path === pointer);
    expect(at('/server/maxConnections')).toMatchObject({ line: 2 });
    expect(at('/server/httpRateLimit/sessions/perIP')).toMatchObject({ line: 4 });
    expect(at('/server/httpRateLimit/sessions/perIP')?.message).toMatch(/unknown key "perIP"/);
    expect(at('/server/overload/retryAfterSeconds')).toMatchObject({ line: 6 });
  });
});
