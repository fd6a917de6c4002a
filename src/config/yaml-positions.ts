import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node as YamlNode } from 'yaml';
import { unescapePointer } from '../lib/json-pointer.js';

/**
 * Where the value at a JSON pointer of a parsed YAML document sits in its text: what lets a problem found in the
 * data be reported as `file:line: /json/pointer: message`. Shared by the config loader and the policy files.
 */
export class YamlPositions {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** Line of the value at `pointer`, or of the nearest enclosing node that exists. */
  line(pointer: string): number | undefined {
    const { value, key } = this.find(pointer);
    return this.lineOf(value) ?? this.lineOf(key);
  }

  /** Line of the key that introduces `pointer` (for unknown or misplaced keys). */
  keyLine(pointer: string): number | undefined {
    const { value, key } = this.find(pointer);
    return this.lineOf(key) ?? this.lineOf(value);
  }

  /** Line of a character offset in the text. */
  lineAt(offset: number): number {
    return this.lines.linePos(offset).line;
  }

  lineOf(node: YamlNode | null | undefined): number | undefined {
    const start = node?.range?.[0];
    return start === undefined ? undefined : this.lineAt(start);
  }

  /**
   * The value node at `pointer` and the key that introduces it; `complete` is false when the pointer leads out of
   * the document, and `value` is then the deepest node on the way.
   */
  find(pointer: string): { value: YamlNode | undefined; key: YamlNode | undefined; complete: boolean } {
    let node: unknown = this.doc.contents;
    let key: YamlNode | undefined;
    let last: YamlNode | undefined = (node as YamlNode | null) ?? undefined;
    const segments = pointer === '' ? [] : pointer.slice(1).split('/').map(unescapePointer);
    for (const seg of segments) {
      if (isAlias(node)) node = node.resolve(this.doc);
      if (isMap(node)) {
        const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === seg);
        if (pair === undefined) return { value: last, key: undefined, complete: false };
        key = pair.key as YamlNode;
        node = pair.value;
      } else if (isSeq(node)) {
        node = node.items[Number(seg)];
        key = undefined;
        if (node === undefined) return { value: last, key: undefined, complete: false };
      } else {
        return { value: last, key, complete: false };
      }
      // `server:` with nothing after it has a null value node; the key is then the best position.
      if (node !== null && node !== undefined) last = node as YamlNode;
    }
    return { value: (node as YamlNode | null) ?? undefined, key, complete: true };
  }
}
