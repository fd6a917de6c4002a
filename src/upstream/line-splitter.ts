/**
 * Newline framing for stdio (MCP transports §stdio) with a hard cap on a line's size, so a server that
 * writes 1 GB without a newline cannot take the gateway's memory with it (threat model #18).
 *
 * Lines are handed on as bytes: the sink decodes them (strictly, once: upstream/inbound.ts). An oversized
 * line is skipped up to its newline; its head and tail are kept (256 bytes each) so the caller can still
 * find the JSON-RPC id and fail the one call it answered instead of waiting for a timeout.
 */
export interface LineSink {
  /** One line without its LF (and without a CR before it). A view: valid only during the call. */
  line(bytes: Buffer): void;
  oversized(bytes: number, head: string, tail: string): void;
}

const KEEP = 256;

export class LineSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** While skipping an oversized line: how many bytes so far, and its head/tail. */
  private skipping: { bytes: number; head: string; tail: Buffer } | undefined;

  constructor(
    private readonly maxLineBytes: number,
    private readonly sink: LineSink,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) {
        this.append(chunk.subarray(start));
        return;
      }
      if (this.chunks.length === 0 && this.skipping === undefined && nl - start <= this.maxLineBytes) {
        // The whole line is in this chunk (the usual case): handed on where it lies, without a copy.
        this.emit(chunk.subarray(start, nl));
      } else {
        this.append(chunk.subarray(start, nl));
        this.flushLine();
      }
      start = nl + 1;
    }
  }

  private append(part: Buffer): void {
    if (part.length === 0) return;
    if (this.skipping) {
      this.skipping.bytes += part.length;
      this.skipping.tail = Buffer.concat([this.skipping.tail, part]).subarray(-KEEP);
      return;
    }
    if (this.buffered + part.length > this.maxLineBytes) {
      const all = Buffer.concat([...this.chunks, part]);
      this.skipping = {
        bytes: all.length,
        head: all.subarray(0, KEEP).toString('utf8'),
        tail: Buffer.from(all.subarray(-KEEP)),
      };
      this.chunks = [];
      this.buffered = 0;
      return;
    }
    // Copy: the stream may reuse its buffer after we return.
    this.chunks.push(Buffer.from(part));
    this.buffered += part.length;
  }

  private flushLine(): void {
    if (this.skipping) {
      const { bytes, head, tail } = this.skipping;
      this.skipping = undefined;
      this.sink.oversized(bytes, head, tail.toString('utf8'));
      return;
    }
    const line = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    this.buffered = 0;
    this.emit(line);
  }

  private emit(line: Buffer): void {
    const end = line.length > 0 && line[line.length - 1] === 0x0d ? line.length - 1 : line.length;
    if (end > 0) this.sink.line(end === line.length ? line : line.subarray(0, end));
  }
}

/** A top-level `"method"` among the leading members (SDK order: method first) or as the last member. */
const REQUEST_HEAD = /^\s*\{\s*(?:"(?:jsonrpc|id)"\s*:\s*(?:"[^"]*"|\d+)\s*,\s*){0,2}"method"\s*:/;
const REQUEST_TAIL = /,\s*"method"\s*:\s*"[^"\\]*"\s*\}\s*$/;

/**
 * Find the JSON-RPC id of a dropped message from its kept head or tail. Only an id at the top level counts:
 * the SDK writes `…,"jsonrpc":"2.0","id":N}` (id last); others write `{"jsonrpc":"2.0","id":N,…` (id first).
 * Ids inside the payload (orders have "id" fields) are never matched because both patterns are anchored.
 */
export function findResponseId(head: string, tail: string): number | undefined {
  // A request from the upstream (e.g. a huge sampling/createMessage) carries a top-level id too, but from the
  // upstream's id space: taking it for a response would fail an unrelated call of ours that shares the number.
  if (REQUEST_HEAD.test(head) || REQUEST_TAIL.test(tail)) return undefined;
  const last =
    /"jsonrpc"\s*:\s*"2\.0"\s*,\s*"id"\s*:\s*(\d{1,15})\s*\}\s*$/.exec(tail) ??
    /,\s*"id"\s*:\s*(\d{1,15})\s*\}\s*$/.exec(tail);
  if (last?.[1] !== undefined) return Number(last[1]);
  const first = /^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(\d{1,15})\s*,/.exec(head);
  if (first?.[1] !== undefined) return Number(first[1]);
  return undefined;
}
