/**
 * Small Markdown helpers for the generated references (GitHub-flavoured Markdown). Tables are written compact, not
 * aligned: an aligned table pads every row to its longest cell (700 columns here) and changes every row when one
 * cell grows. docs/reference/ is therefore in .prettierignore.
 */

/** An inline code span holding `text` exactly, whatever backticks it contains (CommonMark §6.1). */
export function code(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** Text for one table cell: a `|` would end the cell (GFM tables: escaped, also inside code spans), a newline the row. */
export function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

/** A GFM table; prettier aligns it afterwards. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.map(cell).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The anchor GitHub gives a heading: lower case, punctuation other than `-` and `_` dropped, spaces as `-`. */
export function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
    .replace(/ /g, '-');
}

/** `items` as `a`, `b` or `c` (already formatted). */
export function orList(items: readonly string[], word = 'or'): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} ${word} ${items[items.length - 1]}`;
}
