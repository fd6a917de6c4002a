/**
 * The seam of outbound identity (docs/architecture.md §1 ⑥, §4): a call's own headers (its credential) are merged
 * into that one HTTP request over the configured ones — replacing `authorization` and nothing else configured, never
 * a header of the protocol — and the credentials step puts a provider's credential on the call and in the record.
 */
import { describe, expect, it } from 'vitest';
import { secretValue } from '../../src/config/secrets.js';
import type { AuditEvent } from '../../src/audit/audit-sink.js';
import { Cancellation } from '../../src/lib/cancellation.js';
import type { Call } from '../../src/mcp/call.js';
import { credentialsStep } from '../../src/mcp/steps/credentials.js';
import type { CredentialProvider, CredentialRequest } from '../../src/outbound/credential-provider.js';
import { withCallHeaders } from '../../src/upstream/http-headers.js';

describe('withCallHeaders', () => {
  const configured = new Set(['authorization', 'x-api-key']);
  const base = (): Record<string, string> => ({
    Authorization: 'Bearer service',
    'X-API-Key': 'static',
    accept: 'application/json, text/event-stream',
    'mcp-session-id': 'sid',
  });

  it('replaces the configured Authorization (whatever its spelling) and nothing else configured', () => {
    const out = withCallHeaders(base(), { authorization: 'Bearer user', 'x-api-key': 'other' }, configured);
    expect(out).toEqual({
      authorization: 'Bearer user',
      'X-API-Key': 'static',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': 'sid',
    });
  });

  it('never sets a protocol header or an mcp-* header, and adds other new headers', () => {
    const out = withCallHeaders(
      base(),
      { Accept: 'text/plain', 'Mcp-Session-Id': 'forged', traceparent: 'x', 'x-user': 'alice' },
      configured,
    );
    expect(out.accept).toBe('application/json, text/event-stream');
    expect(out['mcp-session-id']).toBe('sid');
    expect(out.traceparent).toBeUndefined();
    expect(out['x-user']).toBe('alice');
  });

  it('leaves the headers alone without call headers', () => {
    expect(withCallHeaders(base(), undefined, configured)).toEqual(base());
  });
});

describe('credentials step', () => {
  function callFor(upstream: string, providers: Map<string, CredentialProvider>): { call: Call; event: AuditEvent } {
    const event: AuditEvent = { type: 'mcp.request' };
    const call = {
      ctx: {
        principal: { subject: 'alice', scopes: new Set(), groups: [], anonymous: false },
        inboundToken: secretValue('inbound bearer token', 'the-inbound-token'),
        cancel: new Cancellation(),
        event,
      },
      deps: { credentials: providers },
      target: { upstream },
    } as unknown as Call;
    return { call, event };
  }

  it('puts the provider credential on the call and its kind and subject in the record, never the credential', async () => {
    const asked: CredentialRequest[] = [];
    const provider: CredentialProvider = {
      kind: 'exchanged',
      credentialFor: (req) => {
        asked.push(req);
        return Promise.resolve({ kind: 'exchanged', headers: { authorization: 'Bearer minted' }, subject: 'u-alice' });
      },
    };
    const { call, event } = callFor('crm', new Map([['crm', provider]]));
    const seen: unknown[] = [];
    await credentialsStep.run(call, (c) => {
      seen.push(c.outbound);
      return Promise.resolve({});
    });
    expect(seen).toEqual([{ kind: 'exchanged', headers: { authorization: 'Bearer minted' }, subject: 'u-alice' }]);
    expect(asked[0]?.upstream).toBe('crm');
    expect(asked[0]?.inboundToken?.reveal()).toBe('the-inbound-token');
    expect(event).toEqual({ type: 'mcp.request', outbound: 'exchanged', upstreamSubject: 'u-alice' });
    expect(JSON.stringify(event)).not.toContain('minted');
  });

  it('leaves an upstream without a provider to its static headers', async () => {
    const { call, event } = callFor('orders', new Map());
    await credentialsStep.run(call, (c) => {
      expect(c.outbound).toBeUndefined();
      return Promise.resolve({});
    });
    expect(event.outbound).toBe('static');
  });

  it('a provider that fails fails the call before forward', async () => {
    const provider: CredentialProvider = {
      kind: 'exchanged',
      credentialFor: () => Promise.reject(new Error('idp down')),
    };
    const { call } = callFor('crm', new Map([['crm', provider]]));
    let forwarded = false;
    await expect(
      credentialsStep.run(call, () => {
        forwarded = true;
        return Promise.resolve({});
      }),
    ).rejects.toThrow('idp down');
    expect(forwarded).toBe(false);
  });
});
