/**
 * The container image's recipe (Dockerfile, .dockerignore), checked statically — no Docker engine is needed:
 * multi-stage, base images pinned, production dependencies only, a numeric non-root user, a HEALTHCHECK, no
 * secret in an ARG/ENV or a copied file, and a build context that cannot carry keys, .env files or local
 * builds. Every check names, in a comment, the mutation of the Dockerfile that makes it fail.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Instruction {
  readonly line: number;
  /** Upper-cased keyword: FROM, RUN, COPY, ... */
  readonly op: string;
  readonly args: string;
}

interface Stage {
  readonly image: string;
  readonly name?: string;
  readonly instructions: Instruction[];
}

/** Splits a Dockerfile into instructions (comments dropped, `\` continuations joined) and stages. */
function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  let pending: { line: number; text: string } | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (pending === undefined && /^\s*(#.*)?$/.test(line)) return;
    if (pending !== undefined && /^\s*#/.test(line)) return; // comment lines inside a continuation
    const continued = /\\\s*$/.test(line);
    const part = continued ? line.replace(/\\\s*$/, '') : line;
    pending =
      pending === undefined
        ? { line: i + 1, text: part.trimEnd() }
        : { line: pending.line, text: `${pending.text} ${part.trim()}`.trimEnd() };
    if (!continued) {
      const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(pending.text);
      if (m) instructions.push({ line: pending.line, op: m[1]!.toUpperCase(), args: m[2]!.trim() });
      pending = undefined;
    }
  });
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile:${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({ image: m[1]!, ...(m[2] ? { name: m[2] } : {}), instructions: [] });
    } else if (stages.length > 0) stages.at(-1)!.instructions.push(ins);
    else if (ins.op !== 'ARG') throw new Error(`Dockerfile:${ins.line}: ${ins.op} before FROM`);
  }
  return stages;
}

/** Sources of a COPY/ADD (JSON or shell form), with its --from stage if any. */
function copySources(ins: Instruction): { from?: string; sources: string[] } {
  const words = ins.args.startsWith('[') ? (JSON.parse(ins.args) as string[]) : ins.args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const rest = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { ...(from !== undefined ? { from } : {}), sources: rest.slice(0, -1) };
}

const dockerfile = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfile);
const final = stages.at(-1)!;
const all = stages.flatMap((s) => s.instructions);
const ops = (stage: Stage, op: string): Instruction[] => stage.instructions.filter((i) => i.op === op);

describe('Dockerfile', () => {
  it('is multi-stage: a build stage compiles with npm ci + npm run build, the runtime stage copies only its output', () => {
    // Mutation caught: a single stage; the build stage without `npm ci` (npm install ignores the lock) or
    // without the build; the runtime copying node_modules (dev dependencies) from the build stage.
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages.find((s) => s.instructions.some((i) => i.op === 'RUN' && /\bnpm run build\b/.test(i.args)));
    expect(build, 'a stage running npm run build').toBeDefined();
    expect(build).not.toBe(final);
    expect(ops(build!, 'RUN').some((i) => /\bnpm ci\b/.test(i.args))).toBe(true);
    const fromBuild = ops(final, 'COPY')
      .map(copySources)
      .filter((c) => c.from !== undefined);
    expect(fromBuild.length).toBeGreaterThan(0);
    for (const c of fromBuild) {
      expect(c.from).toBe(build!.name);
      for (const src of c.sources) expect(src, 'only compiled output comes from the build stage').toMatch(/\/dist\//);
      for (const src of c.sources) expect(src).not.toMatch(/node_modules/);
    }
  });

  it('pins every base image to an exact version (and a sha256 digest when one is given), never latest', () => {
    // Mutation caught: `FROM node:24-alpine` (bare major), `FROM node` or `node:latest`, `node:lts`, a short digest.
    for (const s of stages) {
      if (stages.some((o) => o.name === s.image)) continue; // FROM <earlier stage>
      const m = /^([^:@]+):([^@]+)(?:@(sha256:[0-9a-f]{64}))?$/.exec(s.image);
      expect(m, `${s.image}: name:tag[@sha256:…]`).not.toBeNull();
      const tag = m![2]!;
      expect(tag, s.image).toMatch(/^v?\d+\.\d+\.\d+/);
      expect(tag, s.image).not.toMatch(/latest|lts|current/i);
      if (s.image.includes('@')) expect(s.image).toMatch(/@sha256:[0-9a-f]{64}$/);
    }
  });

  it('runs a current Node LTS (24) in the runtime stage', () => {
    // Mutation caught: a runtime on Node 18/20 (end of life) or an odd, non-LTS major.
    const base = stages.find((s) => s.name === final.image) ?? final;
    expect(base.image).toMatch(/^node:24\.\d+\.\d+/);
  });

  it('installs production dependencies only, from the lock file, in the final stage', () => {
    // Mutation caught: `npm ci` without --omit=dev in the runtime (TypeScript, vitest, test servers shipped),
    // `npm install` (ignores the lock), or the package files not copied before the install.
    const runs = ops(final, 'RUN').map((i) => i.args);
    expect(runs.some((r) => /\bnpm ci\b[^&;]*--omit=dev\b/.test(r))).toBe(true);
    for (const r of runs) expect(r).not.toMatch(/\bnpm (install|i)\b/);
    const copies = ops(final, 'COPY')
      .map(copySources)
      .filter((c) => c.from === undefined)
      .flatMap((c) => c.sources);
    expect(copies).toEqual(expect.arrayContaining(['package.json', 'package-lock.json']));
  });

  it('every package the gateway imports at run time is a production dependency (the image has no others)', () => {
    // Mutation caught: a package moved to devDependencies (or imported without being declared) while src/
    // imports it — `npm ci --omit=dev` leaves it out and the container dies at start.
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const walk = (dir: string): string[] =>
      fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((e) =>
          e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
        );
    const missing = new Set<string>();
    for (const file of walk(path.join(root, 'src'))) {
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)'([^'./][^']*)'/gm)) {
        const spec = m[1]!;
        if (spec.startsWith('node:')) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        if (!(name in pkg.dependencies)) missing.add(`${name} (${path.relative(root, file)})`);
      }
    }
    expect([...missing]).toEqual([]);
  });

  it('switches to a numeric non-root user after the last RUN and keeps it', () => {
    // Mutation caught: no USER (root), `USER node` (a name: runAsNonRoot cannot verify it), `USER 0`, a RUN
    // after USER that assumes root, or USER set in the build stage only.
    const users = ops(final, 'USER');
    expect(users.length).toBeGreaterThan(0);
    const last = users.at(-1)!;
    const m = /^(\d+)(?::(\d+))?$/.exec(last.args);
    expect(m, `USER ${last.args} is numeric uid[:gid]`).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    if (m![2] !== undefined) expect(Number(m![2])).toBeGreaterThan(0);
    const lastRun = ops(final, 'RUN').at(-1);
    if (lastRun) expect(last.line).toBeGreaterThan(lastRun.line);
  });

  it('has a HEALTHCHECK on /healthz that needs no shell or curl', () => {
    // Mutation caught: no HEALTHCHECK, `HEALTHCHECK NONE`, a shell-form check (`curl …`, not in the image), a
    // check on another path.
    const hc = ops(final, 'HEALTHCHECK');
    expect(hc.length).toBe(1);
    const cmd = /\bCMD\s+(\[.*\])\s*$/.exec(hc[0]!.args);
    expect(cmd, 'exec (JSON) form').not.toBeNull();
    const argv = JSON.parse(cmd![1]!) as string[];
    expect(argv[0]).toBe('node');
    expect(argv.join(' ')).toContain('/healthz');
  });

  it('starts the compiled CLI: ENTRYPOINT node dist/src/main.js, CMD start --config /etc/gatehouse/gatehouse.yaml', () => {
    // Mutation caught: a path that is not the build output (package.json bin), `npm start` (runs the example),
    // a shell-form ENTRYPOINT (signals would go to /bin/sh, not node: no graceful shutdown).
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(JSON.parse(ops(final, 'ENTRYPOINT').at(-1)!.args)).toEqual(['node', pkg.bin.gatehouse]);
    expect(JSON.parse(ops(final, 'CMD').at(-1)!.args)).toEqual(['start', '--config', '/etc/gatehouse/gatehouse.yaml']);
    // The CLI knows these words (src/main.ts).
    const main = fs.readFileSync(path.join(root, 'src/main.ts'), 'utf8');
    expect(main).toContain('gatehouse start --config FILE');
    // dist/src/main.js imports ../../schemas/*.json: the schemas are copied beside dist/src.
    const copied = ops(final, 'COPY')
      .map(copySources)
      .flatMap((c) => c.sources);
    expect(copied.some((s) => s.endsWith('/dist/src'))).toBe(true);
    expect(copied.some((s) => s.endsWith('/dist/schemas'))).toBe(true);
  });

  it('exposes the gateway port', () => {
    // Mutation caught: no EXPOSE, or one that differs from the port the HEALTHCHECK probes.
    const ports = ops(final, 'EXPOSE')
      .flatMap((i) => i.args.split(/\s+/))
      .map((p) => p.replace(/\/tcp$/, ''));
    expect(ports).toContain('8080');
    expect(ops(final, 'HEALTHCHECK')[0]!.args).toContain('127.0.0.1:8080/healthz');
  });

  it('bakes in no secret: no ARG/ENV with a secret-looking name, no COPY/ADD of keys, .env files or the whole context', () => {
    // Mutation caught: `ARG NPM_TOKEN`, `ENV API_KEY=…`, `COPY .gatehouse/ …`, `COPY *.key …`, `COPY . .`
    // in the runtime stage, `ADD https://…` (unverified download).
    const secretName = /(KEY|TOKEN|SECRET|PASSW(OR)?D|CREDENTIAL|AUTH|PRIVATE)/i;
    for (const ins of all.filter((i) => i.op === 'ARG' || i.op === 'ENV')) {
      const names = ins.args.split(/\s+/).map((w) => w.split('=')[0]!);
      for (const n of names.filter((w) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(w)))
        expect(n, `Dockerfile:${ins.line}`).not.toMatch(secretName);
    }
    for (const ins of all.filter((i) => i.op === 'COPY' || i.op === 'ADD')) {
      const { from, sources } = copySources(ins);
      if (from !== undefined) continue;
      for (const src of sources) {
        expect(src, `Dockerfile:${ins.line}`).not.toMatch(
          /(\.key|\.pem|\.p12|\.pfx|(^|\/)\.env(\..*)?|\.gatehouse|tools\.lock)$/,
        );
        expect(src, `Dockerfile:${ins.line}`).not.toMatch(/^https?:/);
      }
    }
    for (const ins of ops(final, 'COPY')) expect(copySources(ins).sources, `Dockerfile:${ins.line}`).not.toContain('.');
    expect(all.filter((i) => i.op === 'ADD')).toEqual([]);
  });

  it('the parser reads stages, instructions and continuations as a build does (control)', () => {
    // Guards the checks above against a parser that reads nothing (they would pass vacuously).
    const bad = parseDockerfile(
      'FROM node:24-alpine\nARG NPM_TOKEN\nCOPY . .\nRUN npm install \\\n  --production\nUSER node\n',
    );
    expect(bad.length).toBe(1);
    expect(bad[0]!.image).toBe('node:24-alpine');
    expect(bad[0]!.instructions.map((i) => i.op)).toEqual(['ARG', 'COPY', 'RUN', 'USER']);
    expect(bad[0]!.instructions[2]!.args).toBe('npm install --production');
  });
});

// ─── .dockerignore ──────────────────────────────────────────────────────────────────────────────────────

/**
 * Docker's .dockerignore semantics (moby patternmatcher): patterns are paths relative to the context root
 * (a leading `/` ignored), `*` and `?` stay within one path segment, `**` spans any number of them, a pattern
 * that matches a folder excludes everything under it, `!` re-includes, and the last matching pattern wins.
 */
function dockerignore(text: string): (file: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = path.posix.normalize((negate ? l.slice(1) : l).trim().replace(/^\/+/, '')).replace(/\/+$/, '');
      let re = '';
      for (let i = 0; i < pattern.length; i++) {
        const ch = pattern[i]!;
        if (ch === '*' && pattern[i + 1] === '*') {
          i++;
          if (pattern[i + 1] === '/') {
            i++;
            re += '(?:.*/)?';
          } else re += '.*';
        } else if (ch === '*') re += '[^/]*';
        else if (ch === '?') re += '[^/]';
        else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { negate, re: new RegExp(`^${re}$`) };
    });
  return (file: string): boolean => {
    const parts = file.split('/');
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const r of rules) if (prefixes.some((p) => r.re.test(p))) excluded = !r.negate;
    return excluded;
  };
}

describe('.dockerignore', () => {
  const excluded = dockerignore(fs.readFileSync(path.join(root, '.dockerignore'), 'utf8'));

  it.each([
    'node_modules/fastify/package.json',
    '.git/HEAD',
    'dist/src/main.js',
    'coverage/index.html',
    '.gatehouse/dev-signing-key.json',
    'examples/.gatehouse/dev-signing-key.json',
    'examples/orders/demo.key',
    'src/auth/leftover.key',
    'examples/tls/out/server.pem',
    '.env',
    '.env.production',
    'src/.env.local',
    'bench/results/latest.json',
    'test/unit/config.test.ts',
    'policies/tools.lock',
    '.ci/run',
  ])('keeps %s out of the build context', (file) => {
    // Mutation caught: removing the `*` allow-list line and the matching deny line, or a `!` that lets it back in.
    expect(excluded(file)).toBe(true);
  });

  it.each([
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'tsconfig.build.json',
    'src/main.ts',
    'src/config/load.ts',
    'schemas/gatehouse.schema.json',
  ])('sends %s (the build needs it)', (file) => {
    // Mutation caught: an allow-list that forgets an input of the build (`docker build` would fail).
    expect(excluded(file)).toBe(false);
  });

  it('sends every file the Dockerfile copies from the context', () => {
    // Mutation caught: a new `COPY examples ./examples` in the Dockerfile without letting examples/ in.
    for (const ins of all.filter((i) => i.op === 'COPY')) {
      const { from, sources } = copySources(ins);
      if (from !== undefined) continue;
      for (const src of sources) {
        const probe = fs.statSync(path.join(root, src)).isDirectory()
          ? `${src}/${fs.readdirSync(path.join(root, src))[0]}`
          : src;
        expect(excluded(probe), `Dockerfile:${ins.line} ${src}`).toBe(false);
      }
    }
  });

  it('the matcher follows Docker semantics (control)', () => {
    const m = dockerignore('*\n!src/\n**/*.key\n/docs\n');
    expect(m('README.md')).toBe(true);
    expect(m('src/a.ts')).toBe(false);
    expect(m('src/deep/b.key')).toBe(true);
    expect(m('docs/x')).toBe(true);
    expect(dockerignore('node_modules\n')('node_modules/a/b.js')).toBe(true);
    expect(dockerignore('node_modules\n')('src/node_modules/a.js')).toBe(false);
    expect(dockerignore('**/node_modules\n')('src/node_modules/a.js')).toBe(true);
  });
});
