import type { Glob } from './glob.js';

/**
 * Finds the patterns that may match a name without trying every pattern: exact names sit in a map, globs in a
 * trie over their literal prefix (or, when the suffix is the longer literal, a trie over the reversed suffix).
 * A lookup walks the name once through each trie and then runs only the globs it met on the way, so its cost
 * follows the name's length and the number of real candidates, not the size of the policy.
 */
export class PatternIndex<T> {
  private readonly exact = new Map<string, T[]>();
  private readonly prefixes = new TrieNode<T>();
  private readonly suffixes = new TrieNode<T>();

  add(glob: Glob, value: T): void {
    if (glob.isExact) {
      const list = this.exact.get(glob.source);
      if (list) list.push(value);
      else this.exact.set(glob.source, [value]);
      return;
    }
    const entry = { glob, value };
    if (glob.suffix.length > glob.prefix.length) {
      let node = this.suffixes;
      for (let i = glob.suffix.length - 1; i >= 0; i--) node = node.child(glob.suffix.charCodeAt(i));
      node.entries.push(entry);
    } else {
      let node = this.prefixes;
      for (let i = 0; i < glob.prefix.length; i++) node = node.child(glob.prefix.charCodeAt(i));
      node.entries.push(entry);
    }
  }

  /** Calls `found(value, isExact)` for every pattern that matches `name`; a value added twice may be reported twice. */
  lookup(name: string, found: (value: T, isExact: boolean) => void): void {
    const exact = this.exact.get(name);
    if (exact !== undefined) for (const v of exact) found(v, true);
    let node: TrieNode<T> | undefined = this.prefixes;
    for (let i = 0; node !== undefined; i++) {
      for (const e of node.entries) if (e.glob.matches(name)) found(e.value, false);
      if (i >= name.length) break;
      node = node.children?.get(name.charCodeAt(i));
    }
    node = this.suffixes;
    for (let i = name.length - 1; node !== undefined; i--) {
      for (const e of node.entries) if (e.glob.matches(name)) found(e.value, false);
      if (i < 0) break;
      node = node.children?.get(name.charCodeAt(i));
    }
  }
}

class TrieNode<T> {
  children: Map<number, TrieNode<T>> | undefined;
  readonly entries: { glob: Glob; value: T }[] = [];

  child(code: number): TrieNode<T> {
    this.children ??= new Map();
    let next = this.children.get(code);
    if (next === undefined) {
      next = new TrieNode<T>();
      this.children.set(code, next);
    }
    return next;
  }
}
