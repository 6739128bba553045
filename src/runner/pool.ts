/**
 * Runs many RunConfigs, `jobs` at a time, each in its own worker process (p-queue for the concurrency, a slot free
 * list for per-worker resources). Like vitest's pool: scheduling here, one process per task in `spawn.ts`.
 */
import { existsSync } from 'node:fs';
import PQueue from 'p-queue';
import { MpxError } from '../errors.js';
import type { RunConfig } from '../matrix/types.js';
import { FAILED_STATUSES, type RunRecord } from './protocol.js';
import { runInWorker, type SpawnOptions } from './spawn.js';

export interface PoolOptions extends Omit<SpawnOptions, 'signal' | 'env'> {
  /** Workers running at once, a whole number ≥ 1 (see `defaultJobs`). */
  jobs: number;
  /** Added to every worker's environment. */
  env?: Record<string, string>;
  /** Extra environment for the worker in a slot (0..jobs-1), e.g. `{ CUDA_VISIBLE_DEVICES: String(slot) }`. */
  slotEnv?: (slot: number) => Record<string, string>;
  /** Aborting stops scheduling and kills running workers; their records are `interrupted` (reason `interrupted by user`). */
  signal?: AbortSignal;
  /** Stop scheduling after the first failed, timed-out or crashed run (running workers finish). @default false */
  failFast?: boolean;
  /** Restarts of a crashed run; overrides each run's `train.retries`. */
  retries?: number;
  /** Called when a worker is about to start, with its slot. */
  onStart?: (run: RunConfig, slot: number) => void;
  /**
   * Called once per finished run, as it finishes, before the next record is reported: calls never overlap, and
   * `runAll` waits for the returned promise (write results here, so finished work is never lost). If it throws, no
   * further runs start, running workers are killed, and `runAll` rejects with that error.
   */
  onRecord?: (record: RunRecord, run: RunConfig) => void | Promise<void>;
}

const INTERRUPTED_BY_USER = 'interrupted by user';
const INTERRUPTED_BY_ERROR = 'interrupted: an earlier result could not be recorded';

/**
 * Runs every run and returns the records in input order. Runs that never started (after an abort or `failFast`)
 * have no record, so the result can be shorter than `runs`.
 */
export async function runAll(runs: readonly RunConfig[], options: PoolOptions): Promise<RunRecord[]> {
  const { jobs, env, slotEnv, signal, failFast = false, retries, onStart, onRecord, ...spawnOptions } = options;
  if (!Number.isInteger(jobs) || jobs < 1) {
    throw new MpxError('USAGE', `Expected jobs to be a whole number from 1 and up, got ${jobs}`);
  }
  if (!existsSync(spawnOptions.workerFile)) {
    throw new MpxError('FILE_NOT_FOUND', `worker entry point not found: ${spawnOptions.workerFile}`, {
      hint: 'build it first: npm run build',
    });
  }

  const records: (RunRecord | undefined)[] = new Array<RunRecord | undefined>(runs.length);
  if (signal?.aborted) return [];

  const queue = new PQueue({ concurrency: jobs });
  // Our own controller, so that a user abort and an internal stop give workers different reasons.
  const kill = new AbortController();
  let isStopped = false;
  let recordError: { error: unknown } | null = null;
  const stop = (killReason?: string): void => {
    isStopped = true;
    queue.clear();
    if (killReason !== undefined && !kill.signal.aborted) kill.abort(killReason);
  };
  const onAbort = (): void => stop(INTERRUPTED_BY_USER);
  signal?.addEventListener('abort', onAbort, { once: true });

  // Lowest free slot first, so slot ids stay within 0..jobs-1 and are reused.
  const freeSlots = Array.from({ length: jobs }, (_, slot) => slot);
  let reporting: Promise<void> = Promise.resolve();

  const runOne = async (run: RunConfig, index: number): Promise<void> => {
    if (isStopped) return;
    const slot = freeSlots.shift();
    if (slot === undefined) throw new Error(`mpx: no free worker slot with ${jobs} jobs (this is a bug)`);
    let record: RunRecord;
    try {
      onStart?.(run, slot);
      const maxAttempts = 1 + (retries ?? run.train.retries ?? 0);
      for (let attempt = 1; ; attempt++) {
        record = await runInWorker(run, {
          ...spawnOptions,
          signal: kill.signal,
          env: { ...env, ...slotEnv?.(slot), MPX_SLOT: String(slot) },
        });
        record = { ...record, attempts: attempt };
        // Only a crash may be bad luck (a killed worker, a flaky machine); failed, timeout and oom would repeat.
        if (record.status !== 'crashed' || attempt >= maxAttempts || kill.signal.aborted) break;
      }
    } finally {
      freeSlots.push(slot);
      freeSlots.sort((a, b) => a - b);
    }
    records[index] = record;
    if (failFast && FAILED_STATUSES.has(record.status)) stop();
    // Serialised: a caller rewriting its results file never sees two calls at once.
    reporting = reporting.then(async () => {
      if (recordError !== null) return;
      try {
        await onRecord?.(record, run);
      } catch (error) {
        recordError = { error };
        stop(INTERRUPTED_BY_ERROR);
      }
    });
    await reporting;
  };

  for (const [index, run] of runs.entries()) {
    // Tasks do not throw (runInWorker returns records); a cleared task's promise never settles, which is fine.
    void queue.add(() => runOne(run, index)).catch((error: unknown) => {
      recordError ??= { error };
      stop(INTERRUPTED_BY_ERROR);
    });
  }
  try {
    await queue.onIdle();
    await reporting;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (recordError !== null) throw (recordError as { error: unknown }).error;
  return records.filter((record): record is RunRecord => record !== undefined);
}
