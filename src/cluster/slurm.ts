/**
 * Slurm job arrays for `mpx slurm`, as data: the batch scripts (one array task = one `mpx run --shard i/N`, and a
 * merge job), how shards are split into arrays that fit the cluster's MaxArraySize, and what `scontrol` and `squeue`
 * print, parsed. Pure: `slurm-commands.ts` runs the commands.
 *
 * Slurm's rules followed here (sbatch(1), job_array.html): array indices run from 0 to MaxArraySize − 1, so shard s is
 * task s − offset of an array whose `MPX_SHARD_OFFSET` is offset; `%N` caps the tasks running at once;
 * `--dependency=afterany:<id>` starts the merge once every task of the array has ended, whatever its state.
 */
import { shellQuote } from '../util/shell-quote.js';

/** Slurm's default MaxArraySize (slurm.conf(5)). */
export const DEFAULT_MAX_ARRAY_SIZE = 1001;

/** `MaxArraySize = 1001` in `scontrol show config`; null when the line is missing. */
export function parseMaxArraySize(scontrolShowConfig: string): number | null {
  const match = /^\s*MaxArraySize\s*=\s*(\d+)\s*$/m.exec(scontrolShowConfig);
  return match ? Number(match[1]) : null;
}

/** `sbatch --parsable` prints `jobid` or `jobid;cluster`. Throws when it printed no id. */
export function parseSbatchJobId(stdout: string): string {
  const id = stdout.trim().split(/\s+/).pop()?.split(';')[0] ?? '';
  if (!/^\d+$/.test(id)) throw new Error(`sbatch printed no job id: ${JSON.stringify(stdout.trim())}`);
  return id;
}

/** One `sbatch --array` call: shards `offset + index` for each index. */
export interface ArrayPart {
  /** Added to `SLURM_ARRAY_TASK_ID` to get the shard (`MPX_SHARD_OFFSET`). */
  offset: number;
  /** 1-based shard numbers this array runs, ascending. */
  shards: number[];
  /** `--array` without the throttle: `1-4`, `2,5-7`. */
  indices: string;
}

/**
 * Splits the shards to submit (1-based, any subset) into as few arrays as fit MaxArraySize: indices stay in 1 ..
 * MaxArraySize − 1 and each array has fewer than MaxArraySize tasks. One array whenever they fit.
 */
export function planArrays(shards: readonly number[], maxArraySize: number): ArrayPart[] {
  const span = Math.max(1, maxArraySize - 1);
  const byOffset = new Map<number, number[]>();
  for (const shard of [...new Set(shards)].sort((a, b) => a - b)) {
    const offset = Math.floor((shard - 1) / span) * span;
    const list = byOffset.get(offset) ?? [];
    list.push(shard);
    byOffset.set(offset, list);
  }
  return [...byOffset].map(([offset, list]) => ({ offset, shards: list, indices: compressIndices(list.map((s) => s - offset)) }));
}

/** `[1, 2, 3, 5, 7, 8]` → `1-3,5,7-8` (sorted, unique input). */
export function compressIndices(indices: readonly number[]): string {
  const parts: string[] = [];
  let start = indices[0];
  let previous = start;
  for (const index of [...indices.slice(1), undefined]) {
    if (index !== undefined && previous !== undefined && index === previous + 1) {
      previous = index;
      continue;
    }
    if (start !== undefined) parts.push(start === previous ? String(start) : `${start}-${previous}`);
    start = index;
    previous = index;
  }
  return parts.join(',');
}

/** What the scripts need. Paths are absolute, but for the specs, which are relative to `cwd` when given so. */
export interface SlurmScriptOptions {
  jobName: string;
  /** Where the task logs go (`%A_%a.out`; the merge's `merge-%j.out`). */
  logsDir: string;
  /** The directory the tasks start in (where `mpx slurm` ran). */
  cwd: string;
  /** The Node executable and mpx's CLI entry point, as this machine has them (compute nodes share the path). */
  node: string;
  cli: string;
  specs: readonly string[];
  resultsDir: string;
  shardCount: number;
  /** `#SBATCH` options of every task: `--time=…`, `--partition=…`, `--gpus-per-task=…`, extra ones. */
  taskOptions: readonly string[];
  /** `#SBATCH` options of the merge job (no GPUs). */
  mergeOptions: readonly string[];
  /** Arguments for every task's `mpx run` after the shard (`--jobs`, `--filter`, `--force`, …). */
  runArgs: readonly string[];
}

/** The array task's script: one shard of `mpx run`, exec'd so that Slurm's signals (preemption, scancel) reach mpx. */
export function renderTaskScript(o: SlurmScriptOptions): string {
  return [
    '#!/bin/bash',
    `# mpx slurm: one shard of ${o.specs.length === 1 ? o.specs[0] : `${o.specs.length} specs`} per array task (written by mpx; submitted with sbatch --array)`,
    `#SBATCH --job-name=${o.jobName}`,
    `#SBATCH --output=${o.logsDir}/%A_%a.out`,
    ...o.taskOptions.map((option) => `#SBATCH ${option}`),
    'set -eu',
    `cd ${shellQuote(o.cwd)}`,
    'shard=$(( SLURM_ARRAY_TASK_ID + ${MPX_SHARD_OFFSET:-0} ))',
    // Exit codes: 0 every run has a result, 3 some are oom, 1 some failed, 130 stopped by a signal (runs kept).
    `exec ${[o.node, o.cli, 'run', ...o.specs].map(shellQuote).join(' ')} --shard "$shard/${o.shardCount}" --results-dir ${shellQuote(o.resultsDir)}${o.runArgs.map((a) => ` ${shellQuote(a)}`).join('')}`,
    '',
  ].join('\n');
}

/** The merge job's script: `mpx merge` once every task has ended. */
export function renderMergeScript(o: SlurmScriptOptions): string {
  return [
    '#!/bin/bash',
    '# mpx slurm: merges the shards\' record files (written by mpx; submitted with --dependency=afterany on the arrays)',
    `#SBATCH --job-name=${o.jobName}-merge`,
    `#SBATCH --output=${o.logsDir}/merge-%j.out`,
    ...o.mergeOptions.map((option) => `#SBATCH ${option}`),
    'set -eu',
    `cd ${shellQuote(o.cwd)}`,
    `exec ${[o.node, o.cli, 'merge', ...o.specs].map(shellQuote).join(' ')} --results-dir ${shellQuote(o.resultsDir)}`,
    '',
  ].join('\n');
}

/** One line of `squeue -h -r -o '%i|%F|%K|%T|%j'`. */
export interface QueuedJob {
  /** `12_3` for an array task, `13` for a job. */
  id: string;
  /** The array's job id (the job's own id when it is no array). */
  arrayJobId: string;
  /** The array task id; null for a job that is no array. */
  taskId: number | null;
  /** PENDING, RUNNING, COMPLETING, … */
  state: string;
  name: string;
}

export const SQUEUE_FORMAT = '%i|%F|%K|%T|%j';

export function parseSqueue(stdout: string): QueuedJob[] {
  const jobs: QueuedJob[] = [];
  for (const line of stdout.split('\n')) {
    const fields = line.trim().split('|');
    if (fields.length < 5 || fields[0] === '') continue;
    const [id, arrayJobId, task, state, ...name] = fields;
    jobs.push({ id: id!, arrayJobId: arrayJobId!, taskId: /^\d+$/.test(task!) ? Number(task) : null, state: state!, name: name.join('|') });
  }
  return jobs;
}

/** Where a shard stands: from its runs' records and the queue. */
export type ShardState = 'done' | 'running' | 'pending' | 'failed' | 'missing';

export interface ShardStatus {
  shard: number;
  state: ShardState;
  runs: number;
  /** Runs with a result (ok, oom or unsupported). */
  finished: number;
  oom: number;
  failed: number;
  /** Runs with no record. */
  missing: number;
  /** The array task that ran (or runs) it last, e.g. `12_3`; null when never submitted. */
  task: string | null;
}

/** A submitted array, as the submission record keeps it. */
export interface SubmittedArray {
  jobId: string;
  offset: number;
  shards: number[];
}

/**
 * The state of every shard: `running`/`pending` while Slurm has its task (the latest submission's), else `done` when
 * every run has a result, `failed` when every run has a record and some failed, `missing` when some run has none (the
 * task was cancelled, preempted, killed, or never submitted).
 */
export function shardStatuses(
  counts: ReadonlyArray<{ runs: number; finished: number; oom: number; failed: number }>,
  arrays: readonly SubmittedArray[],
  queue: readonly QueuedJob[],
): ShardStatus[] {
  const taskOf = new Map<number, string>();
  for (const array of arrays) for (const shard of array.shards) taskOf.set(shard, `${array.jobId}_${shard - array.offset}`);
  const queued = new Map<string, string>();
  for (const job of queue) if (job.taskId !== null) queued.set(`${job.arrayJobId}_${job.taskId}`, job.state);
  return counts.map((count, i) => {
    const shard = i + 1;
    const task = taskOf.get(shard) ?? null;
    const queueState = task === null ? undefined : queued.get(task);
    const missing = count.runs - count.finished - count.failed;
    let state: ShardState;
    if (queueState !== undefined) state = queueState === 'PENDING' || /REQUEUE|HOLD/.test(queueState) ? 'pending' : 'running';
    else if (missing > 0) state = 'missing';
    else if (count.failed > 0) state = 'failed';
    else state = 'done';
    return { shard, state, runs: count.runs, finished: count.finished, oom: count.oom, failed: count.failed, missing, task };
  });
}
