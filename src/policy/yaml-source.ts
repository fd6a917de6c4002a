import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import type { ConfigProblem } from '../errors/config-error.js';

/**
 * A parsed YAML file that still knows where every value came from, so that a problem found in the data can be
 * reported as `file:line: /json/pointer: message` (the style of `src/config/load.ts`).
 */
export class YamlSource {
  readonly data: unknown;
  readonly problems: ConfigProblem[] = [];
  private readonly doc: Document;
  private readonly lines = new LineCounter();

  constructor(
    readonly file: string,
    text: string,
  ) {
    // prettyErrors off: the code frame would print source lines into messages.
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    for (const e of this.doc.errors) {
      const line = this.lines.linePos(e.pos[0]).line;
      const message = e.code === 'DUPLICATE_KEY' ? 'duplicate key in a mapping' : `invalid YAML: ${e.message.split('\n')[0]}`;
      this.problems.push({ file, line, path: '', message });
    }
    let data: unknown;
    if (this.problems.length === 0) {
      try {
        data = this.doc.toJS({ maxAliasCount: 100 });
      } catch (err) {
        this.problems.push({ file, path: '', message: `invalid YAML: ${(err as Error).message}` });
      }
    }
    this.data = data;
  }

  /** A problem at the value of `pointer` (or the nearest enclosing node that exists). */
  problem(pointer: string, message: string, at: 'value' | 'key' = 'value'): ConfigProblem {
    const line = at === 'key' ? this.keyLine(pointer) : this.line(pointer);
    return { file: this.file, ...(line !== undefined ? { line } : {}), path: pointer, message };
  }

  line(pointer: string): number | undefined {
    const { value, key } = this.find(pointer);
    return this.lineOf(value) ?? this.lineOf(key);
  }

  keyLine(pointer: string): number | undefined {
    const { value, key } = this.find(pointer);
    return this.lineOf(key) ?? this.lineOf(value);
  }

  private lineOf(node: YamlNode | null | undefined): number | undefined {
    const start = node?.range?.[0];
    return start === undefined ? undefined : this.lines.linePos(start).line;
  }

  private find(pointer: string): { value: YamlNode | undefined; key: YamlNode | undefined } {
    let node: unknown = this.doc.contents;
    let key: YamlNode | undefined;
    let last: YamlNode | undefined = (node as YamlNode | null) ?? undefined;
    const segments = pointer === '' ? [] : pointer.slice(1).split('/').map(unescapePointer);
    for (const seg of segments) {
      if (isAlias(node)) node = node.resolve(this.doc);
      if (isMap(node)) {
        const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === seg);
        if (pair === undefined) return { value: last, key: undefined };
        key = pair.key as YamlNode;
        node = pair.value;
      } else if (isSeq(node)) {
        node = node.items[Number(seg)];
        key = undefined;
        if (node === undefined) return { value: last, key: undefined };
      } else {
        return { value: last, key };
      }
      if (node !== null && node !== undefined) last = node as YamlNode;
    }
    return { value: (node as YamlNode | null) ?? undefined, key };
  }
}

export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}
