/**
 * docs/reference/errors.md from the `ErrorCodes` table: the values (HTTP status, JSON-RPC code, public message) from
 * the imported object, the comments from the source text of the same file. A comment after a blank line heads a
 * group of codes; a comment right above an entry belongs to that entry. The parse is checked against the object:
 * the same codes in the same order, or the generator fails rather than misplace a comment.
 */
import { code, table } from './markdown.js';

export interface ErrorEntry {
  readonly http: number;
  readonly rpc: number;
  readonly message: string;
}

interface Group {
  /** The comment that opens the group (empty for codes after a blank line without one). */
  comment: string;
  entries: { name: string; comment: string }[];
}

export interface ErrorsReferenceOptions {
  /** Repository-relative path of the source file, for the page's links. */
  sourcePath: string;
  /** Markdown between the title and the table's own comment. */
  intro: string;
}

export function errorsReference(
  codes: Readonly<Record<string, ErrorEntry>>,
  source: string,
  options: ErrorsReferenceOptions,
): string {
  const { header, groups } = parseErrorCodes(source);
  const parsed = groups.flatMap((g) => g.entries.map((e) => e.name));
  const actual = Object.keys(codes);
  if (parsed.join(',') !== actual.join(','))
    throw new Error(
      `errors reference: the entries read from ${options.sourcePath} (${parsed.join(', ')}) are not the keys of ErrorCodes (${actual.join(', ')})`,
    );

  const out: string[] = ['# Error codes', options.intro, header];
  for (const group of groups) {
    const title = group.comment === '' ? 'Other' : heading(group.comment);
    out.push(`## ${title}`);
    if (group.comment !== '' && group.comment !== title) out.push(group.comment);
    out.push(
      table(
        ['code', 'HTTP', 'JSON-RPC', 'message', 'notes'],
        group.entries.map(({ name, comment }) => {
          const e = codes[name]!;
          return [code(name), String(e.http), String(e.rpc), code(e.message), comment];
        }),
      ),
    );
  }
  return `${out.join('\n\n')}\n`;
}

/** The doc comment above `export const ErrorCodes`, and the object's entries with their comments. */
export function parseErrorCodes(source: string): { header: string; groups: Group[] } {
  const lines = source.split('\n');
  const start = lines.findIndex((l) => /^export const ErrorCodes = \{\s*$/.test(l));
  if (start < 0) throw new Error('errors reference: `export const ErrorCodes = {` not found');
  const header = docCommentAbove(lines, start);

  const groups: Group[] = [];
  let pending: string[] = [];
  let afterBlank = true;
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\}/.test(line)) break;
    if (line.trim() === '') {
      if (pending.length > 0) throw new Error(`errors reference: a comment followed by a blank line (line ${i})`);
      afterBlank = true;
      continue;
    }
    const comment = /^ {2} ?(\/\/|\/\*\*|\*\/|\*)(.*)$/.exec(line);
    if (comment !== null) {
      const text = comment[2]!.replace(/\*\/\s*$/, '').trim();
      if (text !== '') pending.push(text);
      continue;
    }
    const entry = /^ {2}([A-Z][A-Z0-9_]*): \{/.exec(line);
    if (entry === null) throw new Error(`errors reference: cannot read line ${i + 1}: ${line}`);
    const text = pending.join(' ');
    pending = [];
    if (afterBlank || groups.length === 0) {
      groups.push({ comment: text, entries: [] });
      groups[groups.length - 1]!.entries.push({ name: entry[1]!, comment: '' });
    } else {
      groups[groups.length - 1]!.entries.push({ name: entry[1]!, comment: text });
    }
    afterBlank = false;
    // Skip to the end of a multi-line entry.
    let depth = 0;
    for (; i < lines.length; i++) {
      for (const ch of lines[i]!.replace(/'(?:[^'\\]|\\.)*'/g, "''")) {
        if (ch === '{') depth++;
        if (ch === '}') depth--;
      }
      if (depth === 0) break;
    }
  }
  return { header, groups };
}

/** The text of the `/** … *\/` comment that ends right above line `index`. */
function docCommentAbove(lines: string[], index: number): string {
  const end = index - 1;
  if (!/^\s*\*\/\s*$/.test(lines[end] ?? '')) return '';
  let begin = end;
  while (begin > 0 && !/^\s*\/\*\*/.test(lines[begin]!)) begin--;
  const paragraphs: string[][] = [[]];
  for (const raw of lines.slice(begin + 1, end)) {
    const text = raw.replace(/^\s*\* ?/, '').trim();
    if (text === '') paragraphs.push([]);
    else paragraphs[paragraphs.length - 1]!.push(text);
  }
  return paragraphs
    .filter((p) => p.length > 0)
    .map((p) => p.join(' '))
    .join('\n\n');
}

/** A group's heading: its comment up to the first ` (`, `:` or `.` ("Upstream resilience (…): …" → "Upstream resilience"). */
function heading(comment: string): string {
  return comment.split(/ \(|: |\. /, 1)[0]!.replace(/\.$/, '');
}
