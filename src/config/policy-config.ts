/** The `policy` and `pinning` sections: where the policy files and the tool lock live, and the pinning mode. */
import path from 'node:path';
import { CONFIG_DEFAULTS } from './defaults.js';
import { isDirectory, report, type LoadContext } from './load-context.js';
import type { PinningConfig, PolicyConfig } from './types.js';

export interface RawPolicy {
  dir: string;
}
export interface RawPinning {
  mode?: PinningConfig['mode'];
  lockFile?: string;
}

/** `policy.dir` is resolved against the config folder and must be a folder; `gatehouse check` and start compile it. */
export function normalisePolicy(raw: RawPolicy, ctx: LoadContext): PolicyConfig {
  const dir = path.resolve(ctx.secrets.baseDir, raw.dir);
  if (!isDirectory(dir)) report(ctx, '/policy/dir', `folder ${dir} does not exist`);
  return { dir };
}

/**
 * `pinning`: the mode (default off) and the lock, resolved against the config folder (default
 * `<policy.dir>/tools.lock`). A mode other than off, here or on an upstream, needs a lock to compare with.
 * The lock itself is read when the gateway starts (a missing or broken lock stops it there).
 */
export function normalisePinning(
  raw: { pinning?: RawPinning; upstreams?: readonly { pinning?: PinningConfig['mode'] }[] },
  policy: PolicyConfig | undefined,
  ctx: LoadContext,
): PinningConfig {
  const r = raw.pinning ?? {};
  const mode = r.mode ?? CONFIG_DEFAULTS.pinning.mode;
  const lockFile =
    r.lockFile !== undefined
      ? path.resolve(ctx.secrets.baseDir, r.lockFile)
      : policy !== undefined
        ? path.join(policy.dir, 'tools.lock')
        : undefined;
  if (lockFile === undefined) {
    const upstreams = Array.isArray(raw.upstreams) ? raw.upstreams : [];
    const i = upstreams.findIndex((u) => u.pinning !== undefined && u.pinning !== 'off');
    if (mode !== 'off')
      report(
        ctx,
        '/pinning/mode',
        `pinning.mode "${mode}" needs pinning.lockFile (there is no policy.dir to default to)`,
      );
    else if (i >= 0)
      report(
        ctx,
        `/upstreams/${i}/pinning`,
        `pinning "${upstreams[i]!.pinning}" needs pinning.lockFile (there is no policy.dir to default to)`,
      );
  }
  return { mode, ...(lockFile !== undefined ? { lockFile } : {}) };
}
