/**
 * A server-sent events parser (WHATWG HTML §9.2 "event stream interpretation") with a cap on one event's size.
 * Feed it decoded text; it calls back once per dispatched event.
 */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private dataBytes = 0;
  private event = '';
  private id: string | undefined;
  private tooLarge = false;

  constructor(
    private readonly maxEventBytes: number,
    private readonly onEvent: (e: SseEvent) => void,
    private readonly onOversized: (bytes: number) => void,
  ) {}

  push(text: string): void {
    this.buffer += text;
    if (this.buffer.length > this.maxEventBytes * 2 && !this.buffer.includes('\n')) {
      // A single line larger than any allowed event: drop it now rather than buffer without bound.
      this.tooLarge = true;
      this.dataBytes += this.buffer.length;
      this.buffer = '';
      return;
    }
    let start = 0;
    for (;;) {
      const nl = this.buffer.indexOf('\n', start);
      if (nl === -1) break;
      let line = this.buffer.slice(start, nl);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      start = nl + 1;
      this.line(line);
    }
    this.buffer = this.buffer.slice(start);
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
        this.dataBytes += value.length;
        if (this.dataBytes > this.maxEventBytes) this.tooLarge = true;
        if (!this.tooLarge) this.data.push(value);
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
    const bytes = this.dataBytes;
    const event: SseEvent = { event: this.event || 'message', data: this.data.join('\n') };
    if (this.id !== undefined) event.id = this.id;
    this.data = [];
    this.dataBytes = 0;
    this.event = '';
    this.tooLarge = false;
    if (tooLarge) {
      this.onOversized(bytes);
      return;
    }
    if (event.data === '') return; // priming events carry no data (SEP-1699)
    this.onEvent(event);
  }
}
