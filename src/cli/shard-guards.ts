/** What keeps shards off what they cannot do: a results directory a whole `mpx run` is using, capacity searches. */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { MpxError } from '../errors.js';
import type { Shard } from '../matrix/shard.js';
import { isProcessAlive, LOCK_FILE, readLockOwner } from '../runner/lock.js';
import { locateProblems } from '../spec/locator.js';
import type { PlannedSpec } from './load-specs.js';

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

/**
 * Capacity searches are not sharded yet: each search probes one batch after another, and their results files are
 * rewritten whole by one process. Exit 2 before anything runs.
 */
export function assertShardable(planned: readonly PlannedSpec[], shard: Shard | null | 'slurm'): void {
  const capacity = planned.find((p) => p.capacity !== null);
  if (shard === null || capacity === undefined) return;
  throw locateProblems(
    [
      {
        path: ['capacity'],
        message: `${shard === 'slurm' ? 'mpx slurm' : '--shard'} cannot run capacity searches (${capacity.spec.name} has a capacity: section); they run in a whole mpx run`,
        hint: 'shard the matrix specs, and run capacity specs without --shard (mpx run <spec>)',
      },
    ],
    capacity.locator,
  );
}
