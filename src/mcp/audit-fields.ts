/** Fields of the audit records the front door writes (docs/architecture.md §9): who, how long, which request. */
import type { AuditEvent } from '../audit/audit-sink.js';
import type { Principal } from '../identity/principal.js';
import type { RequestId } from '../lib/json-rpc.js';

/** Who called, for audit records: the client and the certificate thumbprint where there is one (never the token). */
export function whoFields(p: Principal): Pick<AuditEvent, 'clientId' | 'certThumbprint'> {
  return {
    ...(p.clientId !== undefined ? { clientId: p.clientId } : {}),
    ...(p.certThumbprint !== undefined ? { certThumbprint: p.certThumbprint } : {}),
  };
}

/** Milliseconds since a `performance.now()` reading, to 0.01 ms (finer is noise; whole ms would hide a fast deny). */
export function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}

/** The client's JSON-RPC id, as text and bounded (ids are the client's to choose). */
export function auditRequestId(id: RequestId): string {
  return String(id).slice(0, 128);
}
