/** What every section normaliser of the loader is handed: where to report a problem and how to resolve a secret. */
import fs from 'node:fs';
import path from 'node:path';
import type { ConfigProblem } from '../errors/config-error.js';
import { resolveSecretRef, type SecretContext, type SecretRef } from './secrets.js';
import type { SecretValue } from './types.js';
import { weakSecretProblems } from './weak-secrets.js';
import type { YamlSource } from './yaml-source.js';

export interface LoadContext {
  readonly src: YamlSource;
  /** Every problem found so far, the schema's first; all are thrown together at the end (`gatehouse check`). */
  readonly problems: ConfigProblem[];
  readonly secrets: SecretContext;
  /** `server.host` is a loopback address. */
  readonly onLoopback: boolean;
}

/** Records a problem at the value of `pointer`, or at the key introducing it. */
export function report(ctx: LoadContext, pointer: string, message: string, at: 'value' | 'key' = 'value'): void {
  ctx.problems.push(ctx.src.problem(pointer, message, at));
}

/** Resolves one reference; a failure is reported at `…/fromEnv` or `…/fromFile`. */
export function resolveSecret(ref: SecretRef, pointer: string, ctx: LoadContext): SecretValue | undefined {
  const resolved = resolveSecretRef(ref, ctx.secrets);
  const at = `${pointer}/${'fromEnv' in ref ? 'fromEnv' : 'fromFile'}`;
  if (!resolved.ok) {
    report(ctx, at, resolved.message);
    return undefined;
  }
  // Secure defaults: a published demo value, a placeholder, or a file other users can read protects nothing.
  const file = 'fromFile' in ref ? path.resolve(ctx.secrets.baseDir, ref.fromFile) : undefined;
  const weak = weakSecretProblems(resolved.value, file, ctx.onLoopback);
  for (const message of weak) report(ctx, at, message);
  return weak.length === 0 ? resolved.value : undefined;
}

/** `report` and `resolveSecret` bound to `ctx`: the shape the `*-config.ts` sections take. */
export function sectionContext(ctx: LoadContext): {
  report(pointer: string, message: string): void;
  resolveSecret(ref: SecretRef, pointer: string): SecretValue | undefined;
} {
  return {
    report: (pointer, message) => report(ctx, pointer, message),
    resolveSecret: (ref, pointer) => resolveSecret(ref, pointer, ctx),
  };
}

export function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
