/**
 * The session caps' decision (src/mcp/session-admission.ts; threat model #9): who may hold one more session on
 * this replica and whose idle session makes room. Pure: sessions are plain objects with a `lastSeen` and `busy`.
 */
import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/identity/principal.js';
import { SessionHolders, type HeldSession, type SessionCaps } from '../../src/mcp/session-admission.js';

interface Fake extends HeldSession {
  readonly name: string;
  busy: boolean;
}

function principal(subject: string, clientId?: string, issuer = 'https://idp.example'): Principal {
  return {
    subject,
    issuer,
    ...(clientId !== undefined ? { clientId } : {}),
    scopes: new Set(),
    groups: [],
    anonymous: false,
  };
}

let clock = 0;
function table(caps: Partial<SessionCaps>): {
  holders: SessionHolders<Fake>;
  hold: (p: Principal, n?: number) => Fake[];
} {
  const holders = new SessionHolders<Fake>({ total: 1000, perSubject: 1000, perClient: 1000, ...caps });
  const hold = (p: Principal, n = 1): Fake[] =>
    Array.from({ length: n }, () => {
      const s: Fake = { name: `${p.subject}#${clock}`, principal: p, lastSeen: clock++, busy: false };
      holders.add(s);
      return s;
    });
  return { holders, hold };
}

function evicted(a: ReturnType<SessionHolders<Fake>['admit']>): string[] {
  if (!a.ok) throw new Error(`refused: ${a.cap} ${a.detail}`);
  return a.evict.map((s) => s.name);
}

describe('sessions.maxPerSubject', () => {
  it("ends the subject's own least recently used idle session, across its clients, never another subject's", () => {
    const { holders, hold } = table({ perSubject: 3 });
    const [oldest, busyOne] = hold(principal('mallory', 'cli'), 2);
    const [ide] = hold(principal('mallory', 'ide'));
    hold(principal('bob', 'cli'), 5);
    busyOne!.busy = true;
    expect(evicted(holders.admit(principal('mallory', 'other-app')))).toEqual([oldest!.name]);
    oldest!.busy = true;
    expect(evicted(holders.admit(principal('mallory', 'cli')))).toEqual([ide!.name]);
  });

  it('refuses the subject when every one of its sessions is busy', () => {
    const { holders, hold } = table({ perSubject: 2 });
    for (const s of hold(principal('mallory'), 2)) s.busy = true;
    hold(principal('bob'), 10);
    expect(holders.admit(principal('mallory'))).toMatchObject({ ok: false, cap: 'sessions.maxPerSubject' });
  });

  it('counts the subject per issuer: the same subject name from another issuer is someone else', () => {
    const { holders, hold } = table({ perSubject: 1 });
    hold(principal('alice', undefined, 'https://a.example'));
    expect(evicted(holders.admit(principal('alice', undefined, 'https://b.example')))).toEqual([]);
  });
});

describe('server.maxSessions (fair share)', () => {
  it('at a full table the heaviest subject gives up its least recently used idle session to one holding none', () => {
    const { holders, hold } = table({ total: 6 });
    const mallory = hold(principal('mallory'), 4);
    hold(principal('carol'), 2);
    expect(evicted(holders.admit(principal('bob')))).toEqual([mallory[0]!.name]);
    mallory[0]!.busy = true;
    expect(evicted(holders.admit(principal('bob')))).toEqual([mallory[1]!.name]);
  });

  it('never takes from a subject holding fewer than two more than the caller: no two callers evict each other in turn', () => {
    const { holders, hold } = table({ total: 4 });
    hold(principal('mallory'), 2);
    hold(principal('bob'), 1);
    hold(principal('carol'), 1);
    expect(holders.admit(principal('bob'))).toMatchObject({ ok: false, cap: 'server.maxSessions' });
    expect(holders.admit(principal('mallory'))).toMatchObject({ ok: false, cap: 'server.maxSessions' });
    expect(evicted(holders.admit(principal('dave')))).toHaveLength(1);
  });

  it('refuses when the heavy subject has nothing idle; takes from the next heaviest that has', () => {
    const { holders, hold } = table({ total: 7 });
    for (const s of hold(principal('mallory'), 4)) s.busy = true;
    const carol = hold(principal('carol'), 3);
    expect(evicted(holders.admit(principal('bob')))).toEqual([carol[0]!.name]);
    for (const s of carol) s.busy = true;
    expect(holders.admit(principal('bob'))).toMatchObject({ ok: false, cap: 'server.maxSessions' });
  });

  it('an eviction for the subject cap also makes room in the table', () => {
    const { holders, hold } = table({ total: 3, perSubject: 3 });
    const mallory = hold(principal('mallory'), 3);
    expect(evicted(holders.admit(principal('mallory')))).toEqual([mallory[0]!.name]);
  });

  it('mayMakeRoom: false while every session is busy or no subject holds two', () => {
    const { holders, hold } = table({ total: 3 });
    const [a] = hold(principal('a'));
    hold(principal('b'));
    expect(holders.mayMakeRoom()).toBe(false);
    const [c1, c2] = hold(principal('c'), 2);
    c1!.busy = true;
    c2!.busy = true;
    expect(holders.mayMakeRoom()).toBe(false);
    c2!.busy = false;
    expect(holders.mayMakeRoom()).toBe(true);
    holders.delete(c2!);
    holders.delete(a!);
    expect(holders.size).toBe(2);
    expect(holders.mayMakeRoom()).toBe(false);
  });
});

describe('sessions.maxPerClient', () => {
  it("is shared fairly by the client's subjects; other clients' sessions are not touched", () => {
    const { holders, hold } = table({ perClient: 4 });
    const heavy = hold(principal('mallory', 'app'), 3);
    hold(principal('carol', 'app'));
    hold(principal('zed', 'other-app'), 20);
    expect(evicted(holders.admit(principal('bob', 'app')))).toEqual([heavy[0]!.name]);
    expect(holders.admit(principal('mallory', 'app'))).toMatchObject({ ok: false, cap: 'sessions.maxPerClient' });
    expect(evicted(holders.admit(principal('bob', 'third-app')))).toEqual([]);
    // A token without a client id is counted by subject and in the table only.
    expect(evicted(holders.admit(principal('bob')))).toEqual([]);
  });

  it('refuses a cap that is not a positive integer at construction', () => {
    expect(() => new SessionHolders({ total: 10, perSubject: 0, perClient: 5 })).toThrow(/perSubject/);
  });
});
