/**
 * Who besides the gateway's operator can read a secret file, or change a file the gateway trusts: the
 * configuration, secrets, certificates and JWKS, the policy folder and its files, the tools lock (secure defaults:
 * whoever can write the policy grants themselves every tool, whoever can write a JWKS mints tokens; whoever can
 * read a key holds it). The decision is pure over the file's mode, owner and group (`writableBy`,
 * `readableBy`); `fileExposure` gathers those facts and words the problems, each with the command that fixes it.
 *
 * Not counted as exposure:
 * - write bits on a read-only mount: Kubernetes mounts ConfigMap and Secret volumes read-only, and their folder is
 *   mode 0777 (access(2) answers EROFS);
 * - the group of a user-private group (the group whose id is the owner's user id, as `useradd` creates it on
 *   Debian, Ubuntu and Fedora, where the default umask 002 makes checkouts group-writable);
 * - group-read of a root-owned secret: a Kubernetes Secret volume with `fsGroup` (root, the pod's group, 0440),
 *   Debian's `ssl-cert` group. PostgreSQL accepts its key file on the same terms.
 * Symbolic links are followed (a ConfigMap's files are links into `..data`); the folder of a link's target is
 * checked too, since whoever can write there can replace the target.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface FileFacts {
  /** `st_mode` (the permission bits are what count). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** On a read-only mount: nobody can write it, whatever the mode says. */
  readonly readOnly: boolean;
}

export type Exposure = 'others' | 'group';

/** Whether a group is the owner's user-private group: its members are the owner alone (by convention). */
function isPrivateGroup(f: FileFacts): boolean {
  return f.uid !== 0 && f.gid === f.uid;
}

/** Who besides the owner may change the file or folder, or undefined when nobody may. */
export function writableBy(f: FileFacts): Exposure | undefined {
  if (f.readOnly) return undefined;
  if ((f.mode & 0o002) !== 0) return 'others';
  if ((f.mode & 0o020) !== 0 && !isPrivateGroup(f)) return 'group';
  return undefined;
}

/** Who besides the owner may read the (secret) file, or undefined when nobody may. */
export function readableBy(f: FileFacts): Exposure | undefined {
  if ((f.mode & 0o004) !== 0) return 'others';
  if ((f.mode & 0o040) !== 0 && f.uid !== 0 && !isPrivateGroup(f)) return 'group';
  return undefined;
}

export type ExposureKind =
  'secret file' | 'policy file' | 'policy folder' | 'tools lock' | 'configuration file' | 'file';

/**
 * The problems of one file or folder, worded for the config problem list (path, problem, fix); empty when it is
 * safe, or when it cannot be examined (a missing file is reported by whoever reads it). Windows: no mode bits.
 */
export function fileExposure(file: string, kind: ExposureKind): string[] {
  if (process.platform === 'win32') return [];
  const facts = factsOf(file);
  if (facts === undefined) return [];
  const problems: string[] = [];
  const reader = kind === 'secret file' ? readableBy(facts) : undefined;
  const mode = `mode ${octal(facts.mode)}`;
  if (reader !== undefined) {
    problems.push(`${kind} ${file} can be read by ${whom(reader, facts)} (${mode}); run \`chmod 600 ${file}\``);
  }
  const writer = writableBy(facts);
  if (writer !== undefined) {
    const fix = noWrite(writer, file);
    problems.push(`${kind} ${file} can be changed by ${whom(writer, facts)} (${mode}); run \`${fix}\``);
  }
  // A link: whoever may write the target's folder may swap the target (a sticky folder, like /tmp, forbids that).
  let target: string | undefined;
  try {
    target = fs.lstatSync(file).isSymbolicLink() ? fs.realpathSync(file) : undefined;
  } catch {
    target = undefined;
  }
  if (target !== undefined) {
    const folder = path.dirname(target);
    const folderFacts = factsOf(folder);
    const sticky = folderFacts !== undefined && (folderFacts.mode & 0o1000) !== 0;
    const swapper = folderFacts !== undefined && !sticky ? writableBy(folderFacts) : undefined;
    if (swapper !== undefined) {
      const who = whom(swapper, folderFacts!);
      problems.push(
        `${kind} ${file} links to ${target}, in the folder ${folder} that ${who} can change ` +
          `(mode ${octal(folderFacts!.mode)}); ` +
          `run \`${noWrite(swapper, folder)}\` or link to a file in a folder only its owner can change`,
      );
    }
  }
  return problems;
}

/** stat (following links), and whether the mount is read-only — asked only when some write bit is set. */
function factsOf(file: string): FileFacts | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return undefined;
  }
  let readOnly = false;
  if ((st.mode & 0o022) !== 0) {
    try {
      fs.accessSync(file, fs.constants.W_OK);
    } catch (err) {
      readOnly = (err as NodeJS.ErrnoException).code === 'EROFS';
    }
  }
  return { mode: st.mode, uid: st.uid, gid: st.gid, readOnly };
}

function whom(e: Exposure, f: FileFacts): string {
  return e === 'others' ? 'every user' : `its group (gid ${f.gid})`;
}

function noWrite(e: Exposure, file: string): string {
  return `chmod ${e === 'others' ? 'go-w' : 'g-w'} ${file}`;
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}
