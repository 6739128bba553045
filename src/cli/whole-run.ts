/** The check that keeps shards and merges off a results directory that a whole `mpx run` is using. */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { MpxError } from '../errors.js';
import { isProcessAlive, LOCK_FILE, readLockOwner } from '../runner/lock.js';

/**
 * Throws MpxError RESULTS_LOCKED (exit 2) when a live whole `mpx run` holds `dir`'s lock: it runs every run and merges
 * at its end, so a shard beside it would run runs twice and a merge would race its rewrites. `what` says why, e.g.
 * "which runs this shard's runs too".
 */
export function assertNoWholeRun(dir: string, what: string, hint: string): void {
  const path = join(dir, LOCK_FILE);
  const owner = readLockOwner(path);
  if (owner === null || (owner.host === hostname() && !isProcessAlive(owner.pid))) return;
  const where = owner.host === hostname() ? `pid ${owner.pid}` : `pid ${owner.pid} on ${owner.host}`;
  throw new MpxError('RESULTS_LOCKED', `${dir} is in use by a whole mpx run (${where}, started ${owner.startedAt}), ${what}`, { file: path, hint });
}
