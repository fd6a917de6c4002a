/**
 * docs/reference/metrics.md from the gateway's table of metric definitions (`METRICS`): every metric's OpenTelemetry
 * name, the series the Prometheus exporter writes for it, its kind, unit, labels and description.
 */
import { code, table } from './markdown.js';

export interface MetricDoc {
  readonly name: string;
  readonly kind: 'counter' | 'gauge' | 'histogram';
  readonly unit?: string;
  readonly labels: readonly string[];
  readonly description: string;
  readonly buckets?: readonly number[];
}

export interface MetricsReferenceOptions {
  /** Markdown between the title and the table. */
  intro: string;
}

/**
 * The series names Prometheus shows for a metric, as @opentelemetry/exporter-prometheus writes them: characters
 * other than letters, digits and `_` become `_` (runs collapsed), a counter (monotonic sum) gets `_total`, a
 * histogram `_bucket`, `_sum` and `_count`. No unit suffix is added.
 */
export function prometheusSeries(metric: Pick<MetricDoc, 'name' | 'kind'>): string[] {
  const base = metric.name.replace(/[^a-z0-9_]/gi, '_').replace(/_{2,}/g, '_');
  if (metric.kind === 'counter') return [base.endsWith('_total') ? base : `${base}_total`];
  if (metric.kind === 'histogram') return [`${base}_bucket`, `${base}_sum`, `${base}_count`];
  return [base];
}

export function metricsReference(metrics: readonly MetricDoc[], options: MetricsReferenceOptions): string {
  const names = metrics.map((m) => m.name);
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (twice.length > 0) throw new Error(`metrics reference: metric defined twice: ${twice.join(', ')}`);
  const rows = metrics.map((m) => [
    code(m.name),
    prometheusSeries(m).map(code).join(' '),
    m.kind,
    m.unit === undefined ? '—' : code(m.unit),
    m.labels.length === 0 ? '—' : m.labels.map(code).join(', '),
    m.description,
  ]);
  const out = [
    '# Metrics',
    options.intro,
    table(['OpenTelemetry name', 'Prometheus series', 'type', 'unit', 'labels', 'description'], rows),
  ];
  const histograms = metrics.filter((m) => m.buckets !== undefined);
  if (histograms.length > 0) {
    out.push(
      '## Histogram buckets',
      histograms
        .map((m) => `- ${code(m.name)} (${m.unit ?? 'no unit'}): ${m.buckets!.map(String).join(', ')}`)
        .join('\n'),
    );
  }
  return `${out.join('\n\n')}\n`;
}
