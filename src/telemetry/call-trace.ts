/**
 * Tracing as the upstream layer sees it (docs/architecture.md §9: a child span per upstream call): a port, so
 * src/upstream/ knows no tracer and src/audit/ (which implements it, in tracing.ts) knows no upstream code.
 */
export interface CallTrace {
  /** The span of one call to `upstream`; its `traceparent` goes out with the request. */
  start(upstream: string, method: string): CallSpan;
}

export interface CallSpan {
  /** W3C Trace Context §3.2 `traceparent` naming this span. */
  readonly traceparent: string;
  /** Ends the span; `error` is what the call was rejected with. */
  end(error?: unknown): void;
}
