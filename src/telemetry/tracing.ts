import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import { parseTraceParent } from '@opentelemetry/core';
import type { CallSpan, CallTrace } from './call-trace.js';
import type { AuditEvent } from '../audit/audit-sink.js';
import { boundedMethod } from './metrics.js';

/** One client request's span and the port its upstream calls open their child spans through. */
export interface RequestSpan {
  /** Handed down with the call (ForwardContext → CallOptions): each upstream call opens a child span. */
  readonly calls: CallTrace;
  /** Ends the span with what its audit record says (never the arguments or the detail). */
  end(event: AuditEvent): void;
}

/**
 * Spans of the gateway (docs/architecture.md §9): one per MCP request — `tool.<exposed name>` for a `tools/call` of a
 * known tool, `mcp.<method>` otherwise — with a child per upstream call, all on an explicit context (no global context
 * manager, no global provider: two gateways in one process keep their spans apart).
 *
 * A client's W3C `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header) is continued when
 * `acceptTraceparent` is on: the trace id is kept, the request span becomes a child of the client's span. The
 * sampler, not the client's flag, decides whether it is recorded (see `gatewaySampler` in telemetry.ts).
 */
export class RequestTracing {
  constructor(
    private readonly tracer: Tracer,
    private readonly acceptTraceparent: boolean,
  ) {}

  /** `traceparent`: the client's header as received (validated here; a malformed one starts a new trace). */
  startRequest(method: string, traceparent: string | undefined): RequestSpan {
    let parent: Context = ROOT_CONTEXT;
    if (traceparent !== undefined && this.acceptTraceparent) {
      const remote = parseTraceParent(traceparent);
      if (remote !== null) parent = trace.setSpanContext(ROOT_CONTEXT, { ...remote, isRemote: true });
    }
    const bounded = boundedMethod(method);
    const span = this.tracer.startSpan(
      `mcp.${bounded}`,
      { kind: SpanKind.SERVER, attributes: { 'mcp.method': bounded } },
      parent,
    );
    return new TracedRequest(this.tracer, span);
  }
}

class TracedRequest implements RequestSpan, CallTrace {
  private readonly context: Context;

  constructor(
    private readonly tracer: Tracer,
    private readonly span: Span,
  ) {
    this.context = trace.setSpan(ROOT_CONTEXT, span);
  }

  get calls(): CallTrace {
    return this;
  }

  start(upstream: string, method: string): CallSpan {
    const child = this.tracer.startSpan(
      `upstream.${boundedMethod(method)}`,
      { kind: SpanKind.CLIENT, attributes: { 'mcp.upstream': upstream, 'mcp.method': boundedMethod(method) } },
      this.context,
    );
    return {
      traceparent: formatTraceparent(child.spanContext()),
      end(error?: unknown) {
        if (error !== undefined) {
          const code = errorCodeOf(error);
          child.setStatus({ code: SpanStatusCode.ERROR, message: code });
          child.setAttribute('mcp.error_code', code);
        }
        child.end();
      },
    };
  }

  end(event: AuditEvent): void {
    const span = this.span;
    if (span.isRecording()) {
      // The catalogue knew the tool when the record has its upstream; any other name is the client's free text.
      const known = event.upstream !== undefined;
      if (known && event.tool !== undefined) span.updateName(`tool.${event.tool}`);
      span.setAttributes(attributesOf(event, known));
      if (event.outcome === 'error')
        span.setStatus({ code: SpanStatusCode.ERROR, message: event.errorCode ?? 'error' });
    }
    span.end();
  }
}

/** What a span may say about a request: the audit record's labels, never arguments, detail, subject or resource URI. */
function attributesOf(event: AuditEvent, known: boolean): Attributes {
  const a: Attributes = {};
  if (known) {
    a['mcp.upstream'] = event.upstream;
    if (event.tool !== undefined) a['mcp.tool'] = event.tool;
    if (event.prompt !== undefined) a['mcp.prompt'] = event.prompt;
  }
  // Bounded: only the versions the gateway serves reach a request span.
  if (event.protocolVersion !== undefined) a['mcp.protocol.version'] = event.protocolVersion;
  if (event.outcome !== undefined) a['mcp.outcome'] = event.outcome;
  if (event.errorCode !== undefined) a['mcp.error_code'] = event.errorCode;
  if (event.decision !== undefined) a['mcp.decision'] = event.decision;
  if (event.rule !== undefined && event.rule !== '') a['mcp.rule'] = event.rule;
  if (event.policyRevision !== undefined) a['mcp.policy_revision'] = event.policyRevision;
  return a;
}

/** W3C Trace Context §3.2: version 00, trace id, parent id, flags (only `sampled` is defined). */
export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/** A gateway error's code; anything else is `GW_INTERNAL` (an exception's message may carry upstream text). */
function errorCodeOf(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('GW_') ? code : 'GW_INTERNAL';
}
