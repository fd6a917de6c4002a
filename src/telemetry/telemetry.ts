import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  SamplingDecision,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SamplingResult,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { Logger } from 'pino';
import type { TelemetryConfig } from '../config/types.js';
import type { AuditSink } from '../audit/audit-sink.js';
import { GatewayMetrics, type MetricSources } from './metrics.js';
import { TelemetryAuditSink } from './telemetry-sink.js';
import { RequestTracing } from './tracing.js';

export interface TelemetryOptions {
  /** `config.telemetry`; absent means everything off (a config built in code). */
  config: TelemetryConfig | undefined;
  serviceVersion: string;
  logger: Logger;
  /** What the gauges read at collection time. */
  sources: MetricSources;
  /** Tests: an extra metric reader (e.g. one they collect from); it turns metrics on whatever the config says. */
  metricReader?: MetricReader;
  /** Tests: a span exporter (e.g. `InMemorySpanExporter`, exported synchronously); it turns traces on. */
  spanExporter?: SpanExporter;
  /**
   * Whether the Prometheus listener answers a request (its headers): the composition root passes the edge's
   * Host check, so a DNS-rebinding page cannot read the metrics either (threat model #7). Default: every request.
   */
  admit?: (headers: IncomingHttpHeaders) => boolean;
}

/** Bounds how long shutdown waits for a collector that does not answer (`App.close()` must finish). */
const SHUTDOWN_TIMEOUT_MS = 5_000;

/**
 * Metrics and traces of one gateway (docs/architecture.md §9), built by the composition root from `telemetry:`. The
 * providers are instances owned here and handed down — never registered globally, so two gateways in one
 * process (tests) keep their numbers and spans apart, and nothing is monkey-patched.
 *
 * Off means absent: without a reader there is no meter provider and the audit sink is returned unwrapped;
 * without an exporter there is no tracer and the front door skips every span call.
 */
export class Telemetry {
  /** The request tracer, or undefined when traces are off. */
  readonly tracing: RequestTracing | undefined;
  private readonly metrics: GatewayMetrics | undefined;
  private readonly meterProvider: MeterProvider | undefined;
  private readonly tracerProvider: BasicTracerProvider | undefined;
  private readonly prometheus: PrometheusExporter | undefined;
  private server: Server | undefined;
  private sink: AuditSink | undefined;
  private url: string | undefined;

  constructor(private readonly opts: TelemetryOptions) {
    const config = opts.config;
    const resource: Resource = resourceFromAttributes({
      'service.name': config?.serviceName ?? 'gatehouse',
      'service.version': opts.serviceVersion,
    });

    const readers: MetricReader[] = [];
    if (config?.metrics.prometheus.enabled === true) {
      // Our own listener (start()), so the port is known, failures surface at start, and close() owns it.
      this.prometheus = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
      readers.push(this.prometheus);
    }
    const otlpMetrics = config?.metrics.otlp;
    if (otlpMetrics !== undefined) {
      readers.push(
        new PeriodicExportingMetricReader({
          exporter: new OTLPMetricExporter({ url: otlpMetrics.endpoint }),
          exportIntervalMillis: otlpMetrics.intervalMs,
        }),
      );
    }
    if (opts.metricReader !== undefined) readers.push(opts.metricReader);
    if (readers.length > 0) {
      this.meterProvider = new MeterProvider({ resource, readers });
      // Audit loss is read from the sink `audit()` wraps (AuditLog counts it), unless the caller names a source.
      const sources: MetricSources = { auditLost: () => this.sinkLost(), ...opts.sources };
      this.metrics = new GatewayMetrics(this.meterProvider.getMeter('gatehouse', opts.serviceVersion), sources);
    }

    const processors: SpanProcessor[] = [];
    const traces = config?.traces;
    if (traces?.enabled === true && traces.otlp !== undefined)
      processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: traces.otlp.endpoint })));
    if (opts.spanExporter !== undefined) processors.push(new SimpleSpanProcessor(opts.spanExporter));
    if (processors.length > 0) {
      this.tracerProvider = new BasicTracerProvider({
        resource,
        sampler: gatewaySampler(traces?.sampleRatio ?? 1),
        spanProcessors: processors,
      });
      this.tracing = new RequestTracing(
        this.tracerProvider.getTracer('gatehouse', opts.serviceVersion),
        traces?.acceptTraceparent ?? true,
      );
    }
  }

  /** The audit sink the gateway records to: the real one, teed into the metrics when metrics are on. */
  audit(sink: AuditSink): AuditSink {
    this.sink = sink;
    return this.metrics === undefined ? sink : new TelemetryAuditSink(sink, this.metrics);
  }

  private sinkLost(): number {
    const lost = (this.sink as { lost?: unknown } | undefined)?.lost;
    return typeof lost === 'number' ? lost : 0;
  }

  /** `http://host:port/path` of the Prometheus endpoint once `start()` has listened; undefined when off. */
  get metricsUrl(): string | undefined {
    return this.url;
  }

  /** Opens the Prometheus listener (when enabled). Rejects when the port cannot be bound: the gateway does not start. */
  async start(): Promise<void> {
    const prometheus = this.prometheus;
    const p = this.opts.config?.metrics.prometheus;
    if (prometheus === undefined || p === undefined || this.server !== undefined) return;
    const admit = this.opts.admit;
    const server = createServer((req, res) => {
      if (admit !== undefined && !admit(req.headers)) {
        res.writeHead(403, { 'content-type': 'text/plain', 'content-length': '0' }).end();
        return;
      }
      const path = (req.url ?? '').split('?', 1)[0];
      if ((req.method === 'GET' || req.method === 'HEAD') && path === p.path) {
        prometheus.getMetricsRequestHandler(req, res);
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '0' }).end();
    });
    // A scraper sends one small GET; nothing here needs the long defaults.
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(p.port, p.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const { port } = server.address() as AddressInfo;
    this.url = `http://${p.host.includes(':') ? `[${p.host}]` : p.host}:${port}${p.path}`;
    this.opts.logger.info({ url: this.url }, 'metrics endpoint listening');
  }

  /** Closes the listener, exports what is pending (bounded by a deadline) and releases the providers. */
  async shutdown(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    }
    const done = Promise.allSettled([this.meterProvider?.shutdown(), this.tracerProvider?.shutdown()]);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SHUTDOWN_TIMEOUT_MS);
      timer.unref();
    });
    await Promise.race([done, deadline]);
    clearTimeout(timer);
  }
}

/**
 * Ratio sampling at the root and for a remote parent alike: a client's `sampled` flag does not make the gateway
 * record (or skip) a trace — only its trace id is continued. Child spans follow their local parent.
 *
 * A root's trace id is ours (random), so the trace-id ratio sampler is fair there. A client's trace id is the
 * client's choice, and that sampler is a fixed function of it: a client could pick an id always sampled and have
 * every request recorded and exported. Under a remote parent the draw is therefore the gateway's own.
 */
export function gatewaySampler(ratio: number, random: () => number = Math.random): Sampler {
  const byRatio = new TraceIdRatioBasedSampler(ratio);
  const byDraw = new RandomRatioSampler(ratio, random);
  return new ParentBasedSampler({ root: byRatio, remoteParentSampled: byDraw, remoteParentNotSampled: byDraw });
}

/** Records a share `ratio` of the spans it is asked about, by a draw of its own (never by anything the caller chose). */
class RandomRatioSampler implements Sampler {
  constructor(
    private readonly ratio: number,
    private readonly random: () => number,
  ) {}

  shouldSample(): SamplingResult {
    return {
      decision:
        this.ratio > 0 && this.random() < this.ratio
          ? SamplingDecision.RECORD_AND_SAMPLED
          : SamplingDecision.NOT_RECORD,
    };
  }

  toString(): string {
    return `RandomRatio{${this.ratio}}`;
  }
}
