import type { AuditEvent, AuditSink } from '../audit/audit-sink.js';
import type { GatewayMetrics } from './metrics.js';

/**
 * The tee between the gateway and its audit sink: every record also updates the metrics it implies
 * (docs/architecture.md §1 ⑦, observers only). Metrics are counted first and can never fail the record; the record goes
 * to the real sink unchanged (which never throws: its failure shows in `accepting()` and its loss count).
 */
export class TelemetryAuditSink implements AuditSink {
  constructor(
    readonly inner: AuditSink,
    private readonly metrics: GatewayMetrics,
  ) {}

  record(event: AuditEvent): void {
    try {
      this.metrics.observe(event);
    } catch {
      // A metric is never worth a request (docs/architecture.md §1 ⑦).
    }
    this.inner.record(event);
  }

  /** The real sink's verdict (fail closed while it cannot write, `audit.onFailure: closed`); absent means accepting. */
  accepting(): boolean {
    return this.inner.accepting?.() ?? true;
  }
}
