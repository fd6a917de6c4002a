/**
 * `GatewayMetrics` on a real meter provider, read through the Prometheus serializer as a scrape would see it.
 * Call `shutdownTestMeters` after each test (`afterEach(shutdownTestMeters)`): it shuts every provider down.
 */
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { GatewayMetrics, type MetricSources } from '../../src/telemetry/metrics.js';
import { parseExposition, type Scrape } from './telemetry-scrape.js';

const providers: { shutdown(): Promise<void> }[] = [];

/** Another provider (a tracer provider, say) to shut down with the meters after the test. */
export function shutdownAfterTest(provider: { shutdown(): Promise<void> }): void {
  providers.push(provider);
}

export async function shutdownTestMeters(): Promise<void> {
  await Promise.all(providers.splice(0).map((p) => p.shutdown()));
}

export function testMeter(sources: Partial<MetricSources> = {}): {
  metrics: GatewayMetrics;
  read: () => Promise<Scrape>;
} {
  const reader = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, withoutTargetInfo: true });
  const provider = new MeterProvider({ readers: [reader] });
  providers.push(provider);
  const metrics = new GatewayMetrics(provider.getMeter('test'), { sessions: () => 0, upstreams: () => [], ...sources });
  return {
    metrics,
    read: async () => parseExposition(new PrometheusSerializer().serialize((await reader.collect()).resourceMetrics)),
  };
}
