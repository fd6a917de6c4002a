/**
 * Who may open (or bring here) one more session, and whose session makes room for it (threat model #9, #6;
 * OWASP API4). The sessions a replica holds are one table shared by every principal; three caps bound it:
 *
 *   maxPerSubject  one subject (issuer + subject, all its clients)  → the subject's OWN least recently used idle
 *                                                                      session ends, or the caller is refused
 *   maxPerClient   one OAuth client (issuer + client id)            → fair share among the client's subjects
 *   maxSessions    the whole table                                  → fair share among all subjects
 *
 * Fair share: the idle session least recently used by the subject holding the most ends — only when that
 * subject holds at least two more than the caller, so that nobody ever loses a session to someone holding as
 * many (no two callers evict each other in turn). When nobody qualifies, the caller is refused, never another.
 * So a subject that fills the table can still be made to give up its idle sessions to one that holds none.
 * A busy session (a call in flight, an open GET stream) is never chosen.
 *
 * Pure: no clock, no I/O; the session table applies the answer (session-table.ts).
 */
import type { Principal } from '../identity/principal.js';

/** What admission needs of a session (ClientSession has it). */
export interface HeldSession {
  readonly principal: Principal;
  readonly lastSeen: number;
  readonly busy: boolean;
}

export interface SessionCaps {
  /** `server.maxSessions` */
  readonly total: number;
  /** `sessions.maxPerSubject` */
  readonly perSubject: number;
  /** `sessions.maxPerClient` */
  readonly perClient: number;
}

export type SessionCap = 'server.maxSessions' | 'sessions.maxPerSubject' | 'sessions.maxPerClient';

export type Admission<T> =
  | { readonly ok: true; readonly evict: readonly T[] }
  | { readonly ok: false; readonly cap: SessionCap; readonly detail: string };

/** Sessions of one scope (the table, or one client's), by subject. */
interface Group<T> {
  size: number;
  readonly bySubject: Map<string, Set<T>>;
}

interface Keys {
  readonly subject: string;
  readonly client: string | undefined;
}

/** The subject a cap counts: the same person or service through any client (issuer-qualified: ids are per issuer). */
export function subjectKey(p: Principal): string {
  return JSON.stringify([p.issuer ?? '', p.subject]);
}

/** The OAuth client a cap counts, if the token names one. */
export function clientKey(p: Principal): string | undefined {
  return p.clientId === undefined ? undefined : JSON.stringify([p.issuer ?? '', p.clientId]);
}

/** The held sessions indexed for the caps: by subject, and by client then subject. */
export class SessionHolders<T extends HeldSession> {
  private readonly all: Group<T> = { size: 0, bySubject: new Map() };
  private readonly byClient = new Map<string, Group<T>>();
  private readonly keys = new WeakMap<T, Keys>();

  constructor(private readonly caps: SessionCaps) {
    for (const [name, v] of Object.entries(caps))
      if (!Number.isSafeInteger(v) || v < 1) throw new TypeError(`session cap ${name} must be a positive integer`);
  }

  get size(): number {
    return this.all.size;
  }

  add(session: T): void {
    if (this.keys.has(session)) return;
    const keys: Keys = { subject: subjectKey(session.principal), client: clientKey(session.principal) };
    this.keys.set(session, keys);
    join(this.all, keys.subject, session);
    if (keys.client === undefined) return;
    let group = this.byClient.get(keys.client);
    if (group === undefined) {
      group = { size: 0, bySubject: new Map() };
      this.byClient.set(keys.client, group);
    }
    join(group, keys.subject, session);
  }

  delete(session: T): void {
    const keys = this.keys.get(session);
    if (keys === undefined) return;
    this.keys.delete(session);
    leave(this.all, keys.subject, session);
    if (keys.client === undefined) return;
    const group = this.byClient.get(keys.client);
    if (group === undefined) return;
    leave(group, keys.subject, session);
    if (group.size === 0) this.byClient.delete(keys.client);
  }

  /** Whether `principal` may hold one more session here, and which sessions end to make room (none, usually). */
  admit(principal: Principal): Admission<T> {
    const subject = subjectKey(principal);
    const client = clientKey(principal);
    const taken = new Set<T>();
    const own = this.all.bySubject.get(subject);
    if (own !== undefined && own.size >= this.caps.perSubject) {
      // The subject's own cap: only its own sessions can pay for it.
      const v = leastRecentIdle(own, taken);
      if (v === undefined)
        return refuse(
          'sessions.maxPerSubject',
          `subject holds ${own.size} sessions, all busy (sessions.maxPerSubject ${this.caps.perSubject})`,
        );
      taken.add(v);
    }
    const group = client === undefined ? undefined : this.byClient.get(client);
    if (group !== undefined && group.size - this.takenIn(taken, client) >= this.caps.perClient) {
      const v = fairShareVictim(group, subject, taken);
      if (v === undefined)
        return refuse(
          'sessions.maxPerClient',
          `client holds ${group.size} sessions and no subject holding more than this one has an idle one (sessions.maxPerClient ${this.caps.perClient})`,
        );
      taken.add(v);
    }
    if (this.all.size - taken.size >= this.caps.total) {
      const v = fairShareVictim(this.all, subject, taken);
      if (v === undefined) return refuse('server.maxSessions', `${this.all.size} sessions open`);
      taken.add(v);
    }
    return { ok: true, evict: [...taken] };
  }

  /**
   * Before authentication, at a full table: whether anyone at all could still be admitted — some subject holds
   * an idle session it could be made to give up (fair share needs two; its own cap, `perSubject` of them).
   */
  mayMakeRoom(): boolean {
    const least = Math.min(2, this.caps.perSubject);
    for (const sessions of this.all.bySubject.values()) {
      if (sessions.size >= least && leastRecentIdle(sessions, EMPTY) !== undefined) return true;
    }
    return false;
  }

  private takenIn(taken: ReadonlySet<T>, client: string | undefined): number {
    let n = 0;
    for (const t of taken) if (this.keys.get(t)?.client === client) n++;
    return n;
  }
}

const EMPTY: ReadonlySet<never> = new Set();

function join<T>(group: Group<T>, subject: string, session: T): void {
  let set = group.bySubject.get(subject);
  if (set === undefined) {
    set = new Set();
    group.bySubject.set(subject, set);
  }
  set.add(session);
  group.size++;
}

function leave<T>(group: Group<T>, subject: string, session: T): void {
  const set = group.bySubject.get(subject);
  if (set === undefined || !set.delete(session)) return;
  group.size--;
  if (set.size === 0) group.bySubject.delete(subject);
}

/** The idle session used least recently, not already chosen. */
function leastRecentIdle<T extends HeldSession>(sessions: ReadonlySet<T>, taken: ReadonlySet<T>): T | undefined {
  let oldest: T | undefined;
  for (const s of sessions) {
    if (s.busy || taken.has(s)) continue;
    if (oldest === undefined || s.lastSeen < oldest.lastSeen) oldest = s;
  }
  return oldest;
}

function countLeft<T>(sessions: ReadonlySet<T> | undefined, taken: ReadonlySet<T>): number {
  if (sessions === undefined) return 0;
  let n = sessions.size;
  for (const t of taken) if (sessions.has(t)) n--;
  return n;
}

/** The heaviest other subject's least recently used idle session, if it holds at least two more than the caller. */
function fairShareVictim<T extends HeldSession>(
  group: Group<T>,
  subject: string,
  taken: ReadonlySet<T>,
): T | undefined {
  let most = countLeft(group.bySubject.get(subject), taken) + 1;
  let victim: T | undefined;
  for (const [other, sessions] of group.bySubject) {
    if (other === subject) continue;
    const n = countLeft(sessions, taken);
    if (n <= most) continue;
    const v = leastRecentIdle(sessions, taken);
    if (v === undefined) continue;
    victim = v;
    most = n;
  }
  return victim;
}

function refuse<T>(cap: SessionCap, detail: string): Admission<T> {
  return { ok: false, cap, detail };
}
