/**
 * One whole `mpx run` per results directory: two would run the same runs and rewrite the same CSVs (shards of one,
 * `--shard`, each record only their own runs and take no lock). The lock is a file created exclusively (O_EXCL)
 * holding the owner's pid and host; a lock whose process is gone (crashed, killed) is stale and taken over. The same
 * mechanism guards the brief merge of a spec's record files (`results/spec-records.ts`).
 */
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { MpxError } from '../errors.js';

export const LOCK_FILE = '.mpx.lock';

export interface LockOwner {
  pid: number;
  host: string;
  startedAt: string;
}

export interface ResultsLock {
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): void;
}

/** Who holds the lock file at `path`, if anyone does and it is readable. */
export function readLockOwner(path: string): LockOwner | null {
  return readOwner(path);
}

/** Whether a process with this pid exists on this machine (signal 0 checks without sending anything). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

function readOwner(path: string): LockOwner | null {
  try {
    const owner = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockOwner>;
    return typeof owner.pid === 'number' && typeof owner.host === 'string'
      ? { pid: owner.pid, host: owner.host, startedAt: String(owner.startedAt ?? '') }
      : null;
  } catch {
    return null; // unreadable or half-written: treated as stale
  }
}

function tryCreate(path: string, owner: LockOwner): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new MpxError('RESULTS_IO', `cannot create the lock file: ${(error as Error).message}`, {
      file: path,
      hint: 'make sure the results directory is writable',
    });
  }
  try {
    writeSync(fd, JSON.stringify(owner));
  } catch (error) {
    // E.g. ENOSPC on a full disk: an empty lock file must not stay behind, and this is the user's problem, not a bug.
    closeSync(fd);
    rmSync(path, { force: true });
    const code = (error as NodeJS.ErrnoException).code;
    const isFull = code === 'ENOSPC' || code === 'EDQUOT';
    throw new MpxError('RESULTS_IO', `cannot write the lock file: ${(error as Error).message}`, {
      file: path,
      hint: isFull ? 'the disk holding the results directory is full (or over quota); free some space and run again' : 'make sure the results directory is writable',
      cause: error,
    });
  }
  closeSync(fd);
  return true;
}

export interface LockOptions {
  /** The lock file's name in the directory. @default LOCK_FILE */
  file?: string;
  /**
   * A lock older than this is stale whoever holds it, on any host: for locks held only briefly (a merge), so a host
   * that died holding one does not block every other host forever. @default never
   */
  staleAfterMs?: number;
}

/**
 * Takes the lock of `dir` (which must exist) for this process, or throws MpxError `RESULTS_LOCKED` naming the pid
 * that holds it. A lock left by a dead process on this host is taken over.
 */
export function acquireResultsLock(dir: string, isAlive: (pid: number) => boolean = isProcessAlive, options: LockOptions = {}): ResultsLock {
  const path = join(dir, options.file ?? LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    if (tryCreate(path, me)) return ownedLock(path, me);
    const owner = readOwner(path);
    const isOld = owner !== null && options.staleAfterMs !== undefined && Date.now() - Date.parse(owner.startedAt) > options.staleAfterMs;
    if (owner && !isOld && (owner.host !== me.host || isAlive(owner.pid))) {
      const where = owner.host === me.host ? `pid ${owner.pid}` : `pid ${owner.pid} on ${owner.host}`;
      throw new MpxError('RESULTS_LOCKED', `${dir} is in use by ${where} (another mpx run, started ${owner.startedAt})`, {
        file: path,
        hint: `wait for it to finish or stop it, or use another --results-dir; if no mpx run is alive, delete ${path}`,
      });
    }
    // Stale: move it aside atomically so that of two processes taking it over, only one succeeds in creating it.
    try {
      renameSync(path, `${path}.stale-${process.pid}`);
      rmSync(`${path}.stale-${process.pid}`, { force: true });
    } catch {
      // someone else moved it first; try again
    }
  }
  throw new MpxError('RESULTS_LOCKED', `could not take the lock of ${dir}`, { file: path, hint: `delete ${path} if no mpx run is alive` });
}

function ownedLock(path: string, me: LockOwner): ResultsLock {
  let isReleased = false;
  const release = () => {
    if (isReleased) return;
    isReleased = true;
    process.off('exit', release);
    const owner = readOwner(path);
    if (owner?.pid === me.pid && owner.host === me.host) rmSync(path, { force: true });
  };
  process.on('exit', release); // also on process.exit() after a second Ctrl-C
  return { release };
}
