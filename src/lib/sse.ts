/**
 * A server-sent events parser over bytes (WHATWG HTML §9.2.6 "Interpreting an event stream") with a cap on one
 * event's size. Feed it the stream's chunks as they arrive; it calls back once per dispatched event, and once per
 * event it dropped.
 *
 * - Lines end with CRLF, LF or a bare CR — also when the CR ends one chunk and its LF starts the next.
 * - Sizes are bytes, counted as the bytes stream in: an event's data (its data lines joined with LF, as
 *   dispatched) may be at most `maxEventBytes` UTF-8 bytes, the `maxMessageBytes` of every transport. Nothing
 *   beyond that is buffered: the rest of an oversized event is counted and skipped.
 * - Text is strictly UTF-8 (lib/utf8.ts): an event whose data, type or id is not is dropped, not repaired with
 *   U+FFFD as the spec's decoder would (a gateway must not act on a text the upstream did not send).
 * - A dropped event is reported with the head and tail of its data, so the caller can still find the JSON-RPC id
 *   of the call it answered and fail that call at once instead of letting it wait for its deadline.
 */
import { decodeUtf8, lossyText, strictStreamDecoder } from './utf8.js';

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

export interface SseDropped {
  reason: 'oversized' | 'not-utf8';
  /** Bytes of the event's data that arrived (for 'oversized': more than the cap). */
  bytes: number;
  /** The first and last characters of its data (bad bytes shown as U+FFFD): enough to find a JSON-RPC id. */
  head: string;
  tail: string;
}

/** How much of a dropped event's data is kept at each end (like the stdio line splitter). */
const KEEP = 256;
const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;
/** Longer than any field name we act on: a line whose name is longer is skipped unread. */
const MAX_NAME = 8;
const BOM = [0xef, 0xbb, 0xbf] as const;
const STREAM = { stream: true } as const;
const EMPTY = Buffer.alloc(0);
const NEWLINE = Buffer.from('\n');

/**
 * Where the parser is in the current line: reading the field name; just past the colon (one space may follow);
 * reading a value it keeps; skipping to the end of the line (comments, unknown fields, a dropped event's data).
 */
type LineState = 'name' | 'colon' | 'value' | 'skip';
type Field = 'data' | 'event' | 'id';

export class SseParser {
  // The current line.
  private state: LineState = 'name';
  private name = '';
  private field: Field | undefined;
  private value = '';
  /** The value's bytes, plus the LF that joins a data line to the one before it. */
  private lineBytes = 0;
  /** Made only for a value that arrives in pieces; a whole one goes through the shared decoder (utf8.ts). */
  private decoder: ReturnType<typeof strictStreamDecoder> | undefined;
  /** The decoder holds part of this line (the value arrived in pieces): it must be flushed at the line's end. */
  private decoding = false;
  /** The previous chunk ended with CR: an LF that starts this one is part of that line ending. */
  private afterCr = false;
  /** Bytes of a leading BOM matched so far; -1 once past the start of the stream. */
  private bomSeen = 0;

  // The current event. `dataBytes` counts its data as dispatched: the lines and the LFs that join them.
  private data: string[] = [];
  private dataLines = 0;
  private dataBytes = 0;
  private eventType = '';
  /** The last event ID buffer is not reset between events (§9.2.6). */
  private lastId: string | undefined;
  private drop: SseDropped['reason'] | undefined;
  /** Of a dropped event: the first and last bytes of its data, exactly as they came (however they were split). */
  private head: Buffer = EMPTY;
  private tail: Buffer = EMPTY;
  /** The bytes at the end of the value that the decoder holds (a character not complete yet). */
  private held: Buffer = EMPTY;

  constructor(
    private readonly maxEventBytes: number,
    private readonly onEvent: (e: SseEvent) => void,
    private readonly onDropped: (d: SseDropped) => void,
  ) {}

  /**
   * The event being read when it is already lost (over the cap, or not UTF-8), as it would be reported at its
   * end: a caller that knows which call the stream belongs to can fail it now rather than read the rest.
   */
  get dropping(): SseDropped | undefined {
    if (this.drop === undefined) return undefined;
    return { reason: this.drop, bytes: this.dataBytes, head: lossyText(this.head), tail: lossyText(this.tail) };
  }

  push(chunk: Uint8Array): void {
    let i = this.bomSeen < 0 ? 0 : this.skipBom(chunk);
    if (i < 0) return;
    if (this.afterCr && i < chunk.length) {
      this.afterCr = false;
      if (chunk[i] === LF) i++;
    }
    // Where the next LF and CR are: searched natively, and again only once passed, so a long line is scanned once.
    let nextLf = -2;
    let nextCr = -2;
    while (i < chunk.length) {
      if (this.state === 'name' || this.state === 'colon') {
        const b = chunk[i]!;
        if (b === LF || b === CR) i = this.endLine(chunk, i);
        else if (this.state === 'name') {
          i++;
          this.nameByte(b);
        } else {
          if (b === SPACE) i++; // §9.2.6: one space after the colon is not part of the value
          this.state = this.field !== undefined && this.drop === undefined ? 'value' : 'skip';
        }
        continue;
      }
      if (nextLf !== -1 && nextLf < i) nextLf = chunk.indexOf(LF, i);
      if (nextCr !== -1 && nextCr < i) nextCr = chunk.indexOf(CR, i);
      const eol = nextLf === -1 ? nextCr : nextCr === -1 ? nextLf : Math.min(nextLf, nextCr);
      const stop = eol === -1 ? chunk.length : eol;
      if (stop > i) {
        if (this.state === 'value') this.take(chunk.subarray(i, stop), eol !== -1);
        else this.skip(chunk.subarray(i, stop));
      }
      i = eol === -1 ? stop : this.endLine(chunk, eol);
    }
  }

  /** §9.2.6: one leading U+FEFF is ignored; it may arrive split. Where the text starts; -1: in a later chunk. */
  private skipBom(chunk: Uint8Array): number {
    let i = 0;
    while (i < chunk.length && this.bomSeen < BOM.length && chunk[i] === BOM[this.bomSeen]) {
      i++;
      this.bomSeen++;
    }
    if (this.bomSeen === BOM.length) {
      this.bomSeen = -1;
      return i;
    }
    if (i === chunk.length) return -1;
    // Not a BOM after all: the bytes taken for one are the start of the first line.
    const taken = this.bomSeen;
    this.bomSeen = -1;
    if (taken > 0) this.push(Uint8Array.from(BOM.slice(0, taken)));
    return i;
  }

  /** One byte of the field name, or the colon that ends it. */
  private nameByte(b: number): void {
    if (b === COLON) {
      this.startField(fieldOf(this.name));
      this.state = 'colon';
    } else if (this.name.length >= MAX_NAME || b >= 0x80) this.state = 'skip';
    else this.name += String.fromCharCode(b);
  }

  /** The line sets `field` (known at its colon, or at its end when it has none). */
  private startField(field: Field | undefined): void {
    this.field = field;
    if (field !== 'data') return;
    const join = this.dataLines > 0 ? 1 : 0;
    this.dataLines++;
    if (this.drop !== undefined) {
      this.dataBytes += join;
      if (join > 0) this.keepEnds(NEWLINE);
      return;
    }
    this.lineBytes = join;
    if (this.dataBytes + join > this.maxEventBytes) this.startDrop('oversized');
  }

  /** Bytes of a kept value: counted against the cap and decoded as they come. */
  private take(part: Uint8Array, last: boolean): void {
    // An event type or id longer than any message makes the event as untrustworthy as oversized data.
    const room = (this.field === 'data' ? this.maxEventBytes - this.dataBytes : this.maxEventBytes) - this.lineBytes;
    if (part.length > room) {
      // The first problem in byte order names the drop, however the bytes were split: bad bytes before the cap.
      const reason = room > 0 && !this.decodes(part.subarray(0, room), false, false) ? 'not-utf8' : 'oversized';
      this.decoding = true; // it has seen bytes the value has not: startDrop replaces it
      this.startDrop(reason, part);
      return;
    }
    this.lineBytes += part.length;
    if (!this.decodes(part, last)) {
      this.lineBytes -= part.length;
      this.startDrop('not-utf8', part);
    }
  }

  /**
   * Decode `part` onto the value. The usual case, a whole value in one chunk, is one plain decode; pieces stream
   * through the decoder (`last` ends the sequence). False when the bytes are not UTF-8. `keep` false: only check.
   */
  private decodes(part: Uint8Array, last: boolean, keep = true): boolean {
    if (last && !this.decoding) {
      const whole = decodeUtf8(part);
      if (whole === undefined) return false;
      this.value += whole;
      return true;
    }
    try {
      this.decoder ??= strictStreamDecoder();
      const text = this.decoder.decode(part, last ? undefined : STREAM);
      if (!keep) return true;
      this.value += text;
      this.decoding = !last;
      this.held = last ? EMPTY : incompleteEnd(this.held, part);
      return true;
    } catch {
      this.decoding = true; // in whatever state it is: startDrop replaces it
      return false;
    }
  }

  /** Bytes of a line not kept: a dropped event's data still counts, and its end is kept for the id. */
  private skip(part: Uint8Array): void {
    if (this.field !== 'data' || this.drop === undefined) return;
    this.dataBytes += part.length;
    this.keepEnds(part);
  }

  /** More of a dropped event's data: the head fills up to KEEP bytes, the tail keeps the last KEEP (copies). */
  private keepEnds(bytes: Uint8Array): void {
    if (this.head.length < KEEP) this.head = Buffer.concat([this.head, bytes.subarray(0, KEEP - this.head.length)]);
    this.tail = Buffer.concat([this.tail, bytes.subarray(-KEEP)]).subarray(-KEEP);
  }

  /**
   * The event is lost: keep the ends of its data so far (with the current line's value, and `part`, the bytes
   * that lost it), and skip the rest of this line.
   */
  private startDrop(reason: SseDropped['reason'], part?: Uint8Array): void {
    this.drop = reason;
    // The data so far, as bytes: its text re-encodes exactly (it decoded strictly), plus what the decoder held.
    const current = this.field === 'data' ? this.value : '';
    const sofar = this.data.length > 0 ? `${this.data.join('\n')}\n${current}` : current;
    this.head = Buffer.from(sofar.slice(0, KEEP)).subarray(0, KEEP);
    this.tail = Buffer.from(sofar.slice(-KEEP)).subarray(-KEEP);
    if (this.field === 'data' && this.held.length > 0) this.keepEnds(this.held);
    this.held = EMPTY;
    if (this.decoding) {
      // Bytes of this line still held by the decoder (or its state after an error) must not reach the next line.
      this.decoder = undefined;
      this.decoding = false;
    }
    this.data = [];
    if (this.field === 'data') this.dataBytes += this.lineBytes;
    this.state = 'skip';
    if (part !== undefined) this.skip(part);
  }

  /** The line ended at `chunk[i]` (a CR or an LF): act on it. Returns where the next line starts. */
  private endLine(chunk: Uint8Array, i: number): number {
    let next = i + 1;
    if (chunk[i] === CR) {
      if (next === chunk.length) this.afterCr = true;
      else if (chunk[next] === LF) next++;
    }
    const blank = this.state === 'name' && this.name === '';
    // A name without a colon is a field with an empty value (§9.2.6: "data" alone adds an empty line).
    if (this.state === 'name' && !blank) this.startField(fieldOf(this.name));
    if (this.state !== 'skip' && this.field !== undefined) this.commit();
    this.state = 'name';
    this.name = '';
    this.field = undefined;
    this.value = '';
    this.lineBytes = 0;
    this.held = EMPTY;
    if (blank) this.dispatch();
    return next;
  }

  /** A complete line of a field we keep. */
  private commit(): void {
    let value = this.value;
    if (this.decoding) {
      this.decoding = false;
      try {
        value += this.decoder!.decode(); // a multi-byte character cut off by the line's end is malformed
      } catch {
        this.decoding = true;
        this.startDrop('not-utf8');
        return;
      }
    }
    if (this.drop !== undefined) return;
    if (this.field === 'data') {
      this.data.push(value);
      this.dataBytes += this.lineBytes;
    } else if (this.field === 'event') this.eventType = value;
    else if (!value.includes('\0')) this.lastId = value;
  }

  private dispatch(): void {
    const { drop, dataBytes: bytes, head, tail, dataLines } = this;
    const event: SseEvent = { event: this.eventType || 'message', data: this.data.join('\n') };
    if (this.lastId !== undefined) event.id = this.lastId;
    this.data = [];
    this.dataLines = 0;
    this.dataBytes = 0;
    this.eventType = '';
    this.drop = undefined;
    this.head = EMPTY;
    this.tail = EMPTY;
    if (drop !== undefined) {
      this.onDropped({ reason: drop, bytes, head: lossyText(head), tail: lossyText(tail) });
      return;
    }
    // No data line: nothing to dispatch (§9.2.6). Empty data: a priming event (SEP-1699), nothing for us either.
    if (dataLines === 0 || event.data === '') return;
    this.onEvent(event);
  }
}

function fieldOf(name: string): Field | undefined {
  return name === 'data' || name === 'event' || name === 'id' ? name : undefined;
}

/**
 * After `held` and then `part` went through the decoder without an error: the bytes at the end that start a
 * character not complete yet (at most three), which the decoder holds back.
 */
function incompleteEnd(held: Buffer, part: Uint8Array): Buffer {
  const last = part.length >= 3 ? part.subarray(-3) : Buffer.concat([held, part]).subarray(-3);
  for (let k = 1; k <= last.length; k++) {
    const b = last[last.length - k]!;
    if (b < 0x80) return EMPTY;
    if (b >= 0xc0) return (b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2) > k ? Buffer.from(last.subarray(-k)) : EMPTY;
  }
  return EMPTY;
}
