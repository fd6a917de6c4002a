/**
 * A small line diff for approval reviews: longest common subsequence over lines, rendered like a unified
 * diff with a few lines of context. Tool definitions are small (tens to hundreds of lines); past
 * `MAX_CELLS` the diff degrades to "all old lines removed, all new lines added", which is still correct.
 *
 * Pure; no dependencies.
 */

export interface DiffLine {
  readonly op: ' ' | '-' | '+';
  readonly line: string;
}

const MAX_CELLS = 4_000_000;

export function diffLines(before: readonly string[], after: readonly string[]): DiffLine[] {
  // Common prefix and suffix first: most edits are local.
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start++;
  let endA = before.length;
  let endB = after.length;
  while (endA > start && endB > start && before[endA - 1] === after[endB - 1]) {
    endA--;
    endB--;
  }
  const head: DiffLine[] = before.slice(0, start).map((line) => ({ op: ' ', line }));
  const tail: DiffLine[] = before.slice(endA).map((line) => ({ op: ' ', line }));
  const a = before.slice(start, endA);
  const b = after.slice(start, endB);
  return [...head, ...middle(a, b), ...tail];
}

function middle(a: readonly string[], b: readonly string[]): DiffLine[] {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0 || n * m > MAX_CELLS) {
    return [...a.map((line): DiffLine => ({ op: '-', line })), ...b.map((line): DiffLine => ({ op: '+', line }))];
  }
  // lcs[i][j] = length of the LCS of a[i..] and b[j..], in one flat array.
  const width = m + 1;
  const lcs = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * width + j] =
        a[i] === b[j]
          ? lcs[(i + 1) * width + j + 1]! + 1
          : Math.max(lcs[(i + 1) * width + j]!, lcs[i * width + j + 1]!);
    }
  }
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ op: ' ', line: a[i]! });
      i++;
      j++;
    } else if (lcs[(i + 1) * width + j]! >= lcs[i * width + j + 1]!) {
      out.push({ op: '-', line: a[i]! });
      i++;
    } else {
      out.push({ op: '+', line: b[j]! });
      j++;
    }
  }
  while (i < n) out.push({ op: '-', line: a[i++]! });
  while (j < m) out.push({ op: '+', line: b[j++]! });
  return out;
}

/**
 * Lines of a diff with `context` unchanged lines around each change; longer unchanged runs become one `…`
 * line. Each line is `<op> <text>`.
 */
export function renderDiff(lines: readonly DiffLine[], context = 3): string[] {
  const keep = new Array<boolean>(lines.length).fill(false);
  lines.forEach((l, idx) => {
    if (l.op === ' ') return;
    for (let k = Math.max(0, idx - context); k <= Math.min(lines.length - 1, idx + context); k++) keep[k] = true;
  });
  const out: string[] = [];
  let skipped = false;
  lines.forEach((l, idx) => {
    if (!keep[idx]) {
      if (!skipped) out.push('  …');
      skipped = true;
      return;
    }
    skipped = false;
    out.push(`${l.op} ${l.line}`);
  });
  return out;
}
