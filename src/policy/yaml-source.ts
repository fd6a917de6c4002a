import { LineCounter, parseDocument } from 'yaml';
import { YamlPositions } from '../config/yaml-positions.js';
import type { ConfigProblem } from '../errors/config-error.js';

/**
 * A parsed YAML file that still knows where every value came from, so that a problem found in the data can be
 * reported as `file:line: /json/pointer: message` (the style of `src/config/load.ts`).
 */
export class YamlSource {
  readonly data: unknown;
  readonly problems: ConfigProblem[] = [];
  private readonly at: YamlPositions;

  constructor(
    readonly file: string,
    text: string,
  ) {
    // prettyErrors off: the code frame would print source lines into messages.
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    this.at = new YamlPositions(doc, lines);
    for (const e of doc.errors) {
      const line = this.at.lineAt(e.pos[0]);
      const message =
        e.code === 'DUPLICATE_KEY' ? 'duplicate key in a mapping' : `invalid YAML: ${e.message.split('\n')[0]}`;
      this.problems.push({ file, line, path: '', message });
    }
    let data: unknown;
    if (this.problems.length === 0) {
      try {
        data = doc.toJS({ maxAliasCount: 100 });
      } catch (err) {
        this.problems.push({ file, path: '', message: `invalid YAML: ${(err as Error).message}` });
      }
    }
    this.data = data;
  }

  /** A problem at the value of `pointer` (or the nearest enclosing node that exists). */
  problem(pointer: string, message: string, at: 'value' | 'key' = 'value'): ConfigProblem {
    const line = at === 'key' ? this.at.keyLine(pointer) : this.at.line(pointer);
    return { file: this.file, ...(line !== undefined ? { line } : {}), path: pointer, message };
  }

  line(pointer: string): number | undefined {
    return this.at.line(pointer);
  }

  keyLine(pointer: string): number | undefined {
    return this.at.keyLine(pointer);
  }
}

export { escapePointer, unescapePointer } from '../lib/json-pointer.js';
