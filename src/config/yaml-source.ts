/** A parsed YAML file that maps JSON pointers back to its lines: the source of gatehouse.yaml and of the policy files. */
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type Document,
  type Node as YamlNode,
} from 'yaml';
import type { ConfigProblem } from '../errors/config-error.js';
import { escapePointer, unescapePointer } from '../lib/json-pointer.js';
import { clip } from '../lib/value-words.js';

export interface YamlSourceOptions {
  /**
   * How YAML syntax errors are reported. `located` (gatehouse.yaml): at the pointer of the node they sit in, a
   * duplicate key named with the line of its first definition. `plain` (policy and fixture files): at `/`, a
   * duplicate key as "duplicate key in a mapping", only the first line of the parser's message.
   */
  readonly syntaxErrors: 'located' | 'plain';
}

/**
 * The data of one YAML document and where every value came from, so that a problem found in the data is reported
 * as `file:line: /json/pointer: message`. `problems` holds the syntax errors; `data` is undefined when there are any.
 */
export class YamlSource {
  readonly data: unknown;
  readonly problems: ConfigProblem[] = [];
  private readonly doc: Document;
  private readonly lines = new LineCounter();

  constructor(
    readonly file: string,
    text: string,
    options: YamlSourceOptions,
  ) {
    // prettyErrors off: its code frame would print the offending source line, which may hold a secret.
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    for (const e of this.doc.errors) {
      this.problems.push(
        options.syntaxErrors === 'located'
          ? this.syntaxProblem(e.code, e.message, e.pos[0])
          : {
              file,
              line: this.lineAt(e.pos[0]),
              path: '',
              message:
                e.code === 'DUPLICATE_KEY' ? 'duplicate key in a mapping' : `invalid YAML: ${e.message.split('\n')[0]}`,
            },
      );
    }
    let data: unknown;
    if (this.problems.length === 0) {
      try {
        data = this.doc.toJS({ maxAliasCount: 100 });
      } catch (err) {
        // e.g. an unresolved alias or an alias bomb; yaml's message names the alias, not any value.
        this.problems.push({ file, path: '', message: `invalid YAML: ${(err as Error).message}` });
      }
    }
    this.data = data;
  }

  /** A problem at the value of `pointer` (or the nearest enclosing node that exists), or at the key introducing it. */
  problem(pointer: string, message: string, at: 'value' | 'key' = 'value'): ConfigProblem {
    const line = at === 'key' ? this.keyLine(pointer) : this.line(pointer);
    return { file: this.file, ...(line !== undefined ? { line } : {}), path: pointer, message };
  }

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

  /** A scalar below `pointer`, read from the document (used to quote e.g. an upstream's `transport` in messages). */
  valueAt(pointer: string, key: string): unknown {
    const { value, complete } = this.find(`${pointer}/${escapePointer(key)}`);
    return complete && isScalar(value) ? value.value : undefined;
  }

  private lineAt(offset: number): number {
    return this.lines.linePos(offset).line;
  }

  private lineOf(node: YamlNode | null | undefined): number | undefined {
    const start = node?.range?.[0];
    return start === undefined ? undefined : this.lineAt(start);
  }

  /**
   * The value node at `pointer` and the key that introduces it; `complete` is false when the pointer leads out of
   * the document, and `value` is then the deepest node on the way.
   */
  private find(pointer: string): { value: YamlNode | undefined; key: YamlNode | undefined; complete: boolean } {
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

  /** A YAML error as a problem, with the path of the node it sits in. */
  private syntaxProblem(code: string, message: string, offset: number): ConfigProblem {
    const line = this.lineAt(offset);
    const located = this.pathAt(offset);
    if (code === 'DUPLICATE_KEY' && located.key !== undefined) {
      const firstLine = this.lineOf(located.firstKey);
      const first = firstLine === undefined ? '' : ` (first defined at line ${firstLine})`;
      return { file: this.file, line, path: located.pointer, message: `duplicate key "${clip(located.key)}"${first}` };
    }
    return { file: this.file, line, path: located.pointer, message: `invalid YAML: ${message}` };
  }

  /** The pointer of the innermost node containing `offset`, plus the key there if the offset is on a key. */
  private pathAt(offset: number): { pointer: string; key?: string; firstKey?: YamlNode } {
    let node: unknown = this.doc.contents;
    let pointer = '';
    const within = (n: unknown): boolean => {
      const r = (n as YamlNode | null)?.range;
      return r !== undefined && r !== null && offset >= r[0] && offset < Math.max(r[2], r[0] + 1);
    };
    for (;;) {
      if (isMap(node)) {
        const items = node.items;
        const pair = items.find((item) => within(item.key) || within(item.value));
        if (pair === undefined) return { pointer };
        const keyText = isScalar(pair.key) ? String(pair.key.value) : '?';
        if (within(pair.key)) {
          const firstKey = items.find((item) => isScalar(item.key) && String(item.key.value) === keyText)?.key as
            YamlNode | undefined;
          return { pointer: `${pointer}/${escapePointer(keyText)}`, key: keyText, firstKey };
        }
        pointer = `${pointer}/${escapePointer(keyText)}`;
        node = pair.value;
      } else if (isSeq(node)) {
        const index = node.items.findIndex(within);
        if (index < 0) return { pointer };
        pointer = `${pointer}/${index}`;
        node = node.items[index];
      } else {
        return { pointer };
      }
    }
  }
}
