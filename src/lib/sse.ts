/**
 * A server-sent events parser (WHATWG HTML §9.2 "event stream interpretation") with a cap on one event's size.
 * Feed it decoded text; it calls back once per dispatched event.
 */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** How much of an oversized event's data is kept at each end (like the stdio line splitter). */
const KEEP = 256;

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private dataBytes = 0;
  private event = '';
  private id: string | undefined;
  private tooLarge = false;
  /** Of an oversized event: the first and last characters of its data, so the caller can still find its id. */
  private head = '';
  private tail = '';
  /** Inside a line dropped by `push`: the rest of it up to the newline is that line, not a new field. */
  private dropping: 'data' | 'other' | undefined;

  constructor(
    private readonly maxEventBytes: number,
    private readonly onEvent: (e: SseEvent) => void,
    private readonly onOversized: (bytes: number, head: string, tail: string) => void,
  ) {}

  push(text: string): void {
    this.buffer += text;
    if (this.buffer.length > this.maxEventBytes * 2 && !this.buffer.includes('\n')) {
      // A single line larger than any allowed event: drop it now rather than buffer without bound.
      let dropped = this.buffer;
      this.buffer = '';
      if (this.dropping === undefined) {
        const field = /^data: ?/.exec(dropped);
        this.dropping = field ? 'data' : 'other';
        if (field) {
          dropped = dropped.slice(field[0].length);
          this.spill(dropped);
        } else this.tooLarge = true;
      } else if (this.dropping === 'data') this.tail = (this.tail + dropped).slice(-KEEP);
      this.dataBytes += Buffer.byteLength(dropped);
      return;
    }
    let start = 0;
    for (;;) {
      const nl = this.buffer.indexOf('\n', start);
      if (nl === -1) break;
      let line = this.buffer.slice(start, nl);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      start = nl + 1;
      if (this.dropping !== undefined) {
        if (this.dropping === 'data') this.tail = (this.tail + line).slice(-KEEP);
        this.dataBytes += Buffer.byteLength(line);
        this.dropping = undefined;
        continue;
      }
      this.line(line);
    }
    this.buffer = this.buffer.slice(start);
  }

  /** One more data line of an event over the cap: keep only its ends. */
  private spill(value: string): void {
    if (this.tooLarge) {
      this.tail = `${this.tail}\n${value}`.slice(-KEEP);
      return;
    }
    this.tooLarge = true;
    const sofar = [...this.data, value].join('\n');
    this.head = sofar.slice(0, KEEP);
    this.tail = sofar.slice(-KEEP);
    this.data = [];
  }

  private line(line: string): void {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        // UTF-8 bytes, not UTF-16 units: the cap is `maxMessageBytes` on every transport (a CJK reply is 3 bytes a char).
        this.dataBytes += Buffer.byteLength(value);
        if (this.tooLarge || this.dataBytes > this.maxEventBytes) this.spill(value);
        else this.data.push(value);
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        break;
      default:
        break; // `retry` and unknown fields: nothing for us to do
    }
  }

  private dispatch(): void {
    const tooLarge = this.tooLarge;
    const { dataBytes: bytes, head, tail } = this;
    const event: SseEvent = { event: this.event || 'message', data: this.data.join('\n') };
    if (this.id !== undefined) event.id = this.id;
    this.data = [];
    this.dataBytes = 0;
    this.event = '';
    this.tooLarge = false;
    this.head = '';
    this.tail = '';
    if (tooLarge) {
      this.onOversized(bytes, head, tail);
      return;
    }
    if (event.data === '') return; // priming events carry no data (SEP-1699)
    this.onEvent(event);
  }
}
