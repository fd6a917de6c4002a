/**
 * A configuration or policy problem found at start-up or reload: it names the file, the line when known,
 * the path inside the document and what is wrong. Misuse fails fast (docs/style.md habit 2); it never reaches
 * a client.
 */
export interface ConfigProblem {
  file: string;
  line?: number;
  /** JSON pointer-ish path inside the document, e.g. `/upstreams/0/url`. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = Object.freeze(problems.slice());
  }
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}`;
  return `${where}: ${p.path === '' ? '/' : p.path}: ${p.message}`;
}
