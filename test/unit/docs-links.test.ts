/**
 * The documentation's relative links resolve: every link in README.md and docs/ (generated references included)
 * names a file that exists and, for a Markdown file, a heading (GitHub's anchor) or `<a id>` in it. The README
 * was split into docs/ by topic; a section that moves again must take its links along.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { slug } from '../../scripts/docs/markdown.js';

const root = path.resolve(import.meta.dirname, '..', '..');

function markdownFiles(): string[] {
  const walk = (dir: string): string[] =>
    fs
      .readdirSync(path.join(root, dir), { withFileTypes: true })
      .flatMap((e) =>
        e.isDirectory() ? walk(`${dir}/${e.name}`) : e.name.endsWith('.md') ? [`${dir}/${e.name}`] : [],
      );
  return ['README.md', ...walk('docs')];
}

/** The text outside fenced code blocks, with inline code spans blanked (a link inside one is not a link). */
function prose(text: string): string[] {
  const out: string[] = [];
  let fence = false;
  for (const line of text.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) {
      fence = !fence;
      out.push('');
      continue;
    }
    out.push(fence ? '' : line.replace(/(`+)[^`]*?\1/g, (m) => ' '.repeat(m.length)));
  }
  return out;
}

/** The anchors GitHub gives a Markdown file: one per heading (duplicates numbered), plus explicit `<a id>`. */
function anchors(file: string): Set<string> {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fence = false;
  for (const line of text.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence;
    if (fence) continue;
    const h = /^#{1,6} +(.*?)\s*#*\s*$/.exec(line);
    if (h !== null) {
      const plain = h[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*]/g, '');
      const base = slug(plain);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      out.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const a of line.matchAll(/<a id="([^"]+)"/g)) out.add(a[1]!);
  }
  return out;
}

describe('documentation links', () => {
  const files = markdownFiles();

  it('finds the README, the topic pages and the generated references', () => {
    for (const f of ['docs/configuration.md', 'docs/security.md', 'docs/reference/config.md'])
      expect(files).toContain(f);
  });

  it('every relative link names a file that exists, and an anchor that exists in it', () => {
    const broken: string[] = [];
    const cache = new Map<string, Set<string>>();
    for (const file of files) {
      const lines = prose(fs.readFileSync(path.join(root, file), 'utf8'));
      lines.forEach((line, i) => {
        for (const m of line.matchAll(/\]\(([^)\s]+)\)/g)) {
          const target = m[1]!;
          if (/^[a-z]+:/i.test(target)) continue;
          const [ref, anchor] = target.split('#', 2) as [string, string | undefined];
          const resolved = ref === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), ref));
          const where = `${file}:${i + 1}: ${target}`;
          if (!fs.existsSync(path.join(root, resolved))) {
            broken.push(`${where} (no such file)`);
            continue;
          }
          if (anchor === undefined || !resolved.endsWith('.md')) continue;
          if (!cache.has(resolved)) cache.set(resolved, anchors(resolved));
          if (!cache.get(resolved)!.has(anchor)) broken.push(`${where} (no such heading in ${resolved})`);
        }
      });
    }
    expect(broken).toEqual([]);
  });
});
