/**
 * A one-shot cancellation flag with listeners: what the request path needs of an AbortController, without the
 * cost of an EventTarget on every call (profiling showed ~7 µs per request for AbortController + listeners).
 */
export class Cancellation {
  private listeners: (() => void)[] | undefined;
  private isAborted = false;

  get aborted(): boolean {
    return this.isAborted;
  }

  abort(): void {
    if (this.isAborted) return;
    this.isAborted = true;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const l of listeners) l();
  }

  /** Run `listener` once on abort; the returned function removes it. */
  onAbort(listener: () => void): () => void {
    if (this.isAborted) {
      listener();
      return noop;
    }
    (this.listeners ??= []).push(listener);
    return () => {
      const at = this.listeners?.indexOf(listener) ?? -1;
      if (at >= 0) this.listeners!.splice(at, 1);
    };
  }
}

function noop(): void {}
