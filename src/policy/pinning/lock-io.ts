/**
 * The only file I/O of pinning: read `tools.lock` (parse errors name file and line), and write it atomically
 * (a temporary file in the same folder, then rename), so a crash or a concurrent reader never sees half a lock.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileExposure } from '../../config/file-exposure.js';
import { ConfigError } from '../../errors/config-error.js';
import { emptyToolsLock, parseToolsLock, serializeToolsLock, type ToolsLock } from './lock-file.js';

export interface ReadLockOptions {
  /**
   * What a missing file means. `'error'` (the default) when pinning is configured: a lock that vanished must
   * not silently turn into "nothing approved" under `warn`, or be mistaken for a fresh start. `'empty'` for
   * `gatehouse tools approve`, which creates the file.
   */
  readonly ifMissing?: 'error' | 'empty';
}

/** Reads and parses a lock file. Throws `ConfigError` (file, line, path, problem). */
export function readToolsLock(file: string, opts: ReadLockOptions = {}): ToolsLock {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ENOENT' && opts.ifMissing === 'empty') return emptyToolsLock();
    const why =
      code === 'ENOENT'
        ? 'no such file (create it with `gatehouse tools approve`)'
        : code === 'EISDIR'
          ? 'it is a folder'
          : code === 'EACCES'
            ? 'permission denied'
            : (code ?? 'unknown error');
    throw new ConfigError([{ file, path: '', message: `cannot read the tools lock (${why})` }]);
  }
  // Whoever can change the lock approves tools (secure defaults): refused like a writable policy file.
  const exposed = fileExposure(file, 'tools lock');
  if (exposed.length > 0) throw new ConfigError(exposed.map((message) => ({ file, path: '', message })));
  return parseToolsLock(text, file);
}

/** Writes `lock` to `file` atomically, in the stable format of `serializeToolsLock`. */
export function writeToolsLock(file: string, lock: ToolsLock): void {
  const text = serializeToolsLock(lock);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    fs.writeFileSync(tmp, text, { encoding: 'utf8', mode: 0o644, flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
