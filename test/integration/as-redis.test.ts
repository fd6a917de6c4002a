/**
 * The built-in AS on the Redis store (many replicas): two AS instances share one Redis, so a code issued
 * through one is single use across both, and refresh-token reuse seen by one revokes the family for both.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { RedisAsStore } from '../../src/stores/as/redis-as-store.js';
import {
  authorizeUrl,
  Browser,
  pkcePair,
  postForm,
  registerClient,
  startAs,
  type AsHarness,
} from '../helpers/as-harness.js';
import { describeRedis, probeRedis, redisClient } from '../helpers/redis.js';

const REDIRECT = 'http://127.0.0.1:47333/cb';
const redisUp = await probeRedis();

describeRedis(redisUp)('built-in AS on Redis', () => {
  const prefix = `gatehouse-test:${randomUUID()}:`;
  let a: AsHarness;
  let b: AsHarness;
  beforeAll(async () => {
    a = await startAs({ store: new RedisAsStore(redisClient(), { keyPrefix: prefix }) });
    // Replica b: same Redis and signing keys (its own port, so its own issuer: only the shared state matters here).
    b = await startAs({
      idp: false,
      store: new RedisAsStore(redisClient(), { keyPrefix: prefix }),
      as: { signingKeys: a.config.auth.builtin!.signingKeys },
    });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    const admin = redisClient();
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  it('a code redeemed on one replica is refused on the other, and the reuse revokes the first tokens', async () => {
    const clientId = await registerClient(a.issuer, REDIRECT);
    // b knows the client too: registrations live in the shared store.
    expect(await b.store.findClient(clientId)).toBeDefined();
    const { challenge, verifier } = pkcePair();
    const out = await new Browser({ login: 'alice', consent: 'approve' }).run(
      authorizeUrl(a.issuer, {
        response_type: 'code',
        client_id: clientId,
        redirect_uri: REDIRECT,
        code_challenge: challenge,
        code_challenge_method: 'S256',
        scope: 'mcp:tools',
      }),
      REDIRECT,
    );
    const code = (out as { location: URL }).location.searchParams.get('code')!;
    const form = {
      grant_type: 'authorization_code',
      client_id: clientId,
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    };
    const first = await postForm(`${a.issuer}/token`, form);
    expect(first.status).toBe(200);
    const second = await postForm(`${b.issuer}/token`, form);
    expect(second.body.error).toBe('invalid_grant');
    expect(await a.server.isRevoked(decodeJwt(String(first.body.access_token)).jti!)).toBe(true);
  });

  it('refresh reuse seen by one replica revokes the family for both', async () => {
    const clientId = await registerClient(a.issuer, REDIRECT);
    const { challenge, verifier } = pkcePair();
    const out = await new Browser({ login: 'alice', consent: 'approve' }).run(
      authorizeUrl(a.issuer, {
        response_type: 'code',
        client_id: clientId,
        redirect_uri: REDIRECT,
        code_challenge: challenge,
        code_challenge_method: 'S256',
        scope: 'mcp:tools',
      }),
      REDIRECT,
    );
    const code = (out as { location: URL }).location.searchParams.get('code')!;
    const tokens = await postForm(`${a.issuer}/token`, {
      grant_type: 'authorization_code',
      client_id: clientId,
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    });
    const rt1 = String(tokens.body.refresh_token);
    const rotated = await postForm(`${b.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: rt1,
    });
    expect(rotated.status).toBe(200);
    expect(
      (await postForm(`${a.issuer}/token`, { grant_type: 'refresh_token', client_id: clientId, refresh_token: rt1 }))
        .body.error,
    ).toBe('invalid_grant');
    expect(
      (
        await postForm(`${b.issuer}/token`, {
          grant_type: 'refresh_token',
          client_id: clientId,
          refresh_token: String(rotated.body.refresh_token),
        })
      ).body.error,
    ).toBe('invalid_grant');
  });
});
