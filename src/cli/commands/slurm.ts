/**
 * `mpx slurm <specs...>`: one command from specs to merged results on a Slurm cluster. Writes a batch script whose
 * array tasks each run one shard (`mpx run --shard i/N`) and a merge script, submits the array(s) (split to fit
 * MaxArraySize) and a merge job that waits for all of them (`afterany`: a failed or OOM task never blocks the merge).
 * Submitting again submits only the shards whose runs are not recorded (or failed, with --retry-failed) and that are
 * not queued: the way to resume after preemption or cancellation. `mpx slurm status` says where each shard stands.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listQueue, readMaxArraySize, sbatch } from '../../cluster/slurm-commands.js';
import {
  planArrays,
  renderMergeScript,
  renderTaskScript,
  shardStatuses,
  type QueuedJob,
  type ShardStatus,
  type SlurmScriptOptions,
  type SubmittedArray,
} from '../../cluster/slurm.js';
import { readSubmission, submissionDir, submissionKey, writeSubmission, type SubmissionRecord } from '../../cluster/submission.js';
import { MpxError } from '../../errors.js';
import { assignShards, MAX_SHARDS } from '../../matrix/shard.js';
import { latestByRunId, readSpecRecords } from '../../results/spec-records.js';
import { FAILED_STATUSES, FINISHED_STATUSES } from '../../runner/protocol.js';
import { BYTE_SIZE_EXAMPLES, parseByteSize } from '../../spec/size.js';
import { shellQuote } from '../../util/shell-quote.js';
import { EXIT_FAILED, EXIT_OK } from '../exit-codes.js';
import { loadAndPlan, type PlannedSpec } from '../load-specs.js';
import { assertFilterMatches, matchesFilter, parseFilters } from '../select-runs.js';
import { assertShardable } from '../shard-guards.js';

const CLI_FILE = fileURLToPath(new URL('../main.js', import.meta.url));
/** Most shards `mpx slurm` makes by default (one per run up to this): what one array of the default MaxArraySize holds. */
export const DEFAULT_MAX_SHARDS = 1000;
const WAIT_POLL_MS = 1_000;

export interface SlurmStatusOptions {
  resultsDir: string;
  filter?: string[];
  maxRuns?: number;
}

export interface SlurmSubmitOptions extends SlurmStatusOptions {
  shards?: number;
  throttle?: number;
  time?: string;
  partition?: string;
  gpusPerTask?: number;
  gres?: string;
  cpusPerTask?: number;
  mem?: string;
  /** Extra sbatch options, each as one word (`--account=proj`). */
  sbatch?: string[];
  jobs?: number;
  force?: boolean;
  retryFailed?: boolean;
  memoryLimit?: string;
  retries?: number;
  dryRun?: boolean;
  wait?: boolean;
}

/** The specs, their shard partition and where each shard stands. */
interface Survey {
  planned: PlannedSpec[];
  key: string;
  dir: string;
  previous: SubmissionRecord | null;
  shardCount: number;
  statuses: ShardStatus[];
  jobNames: string[];
}

export async function slurmSubmitCommand(args: string[], options: SlurmSubmitOptions): Promise<number> {
  if (options.memoryLimit !== undefined && parseByteSize(options.memoryLimit) === null) {
    throw new MpxError('USAGE', `--memory-limit must be a size such as ${BYTE_SIZE_EXAMPLES}, got "${options.memoryLimit}"`);
  }
  const resultsDir = resolve(options.resultsDir);
  const survey = await surveyShards(args, { ...options, resultsDir }, options.shards, options.dryRun === true);
  const { statuses, dir, shardCount, previous } = survey;
  if (previous !== null && options.shards !== undefined && options.shards !== previous.shards) {
    const queued = statuses.filter((s) => s.state === 'running' || s.state === 'pending');
    if (queued.length > 0) {
      throw new MpxError('USAGE', `--shards ${options.shards} differs from the ${previous.shards} shards of the submission still queued (${queued.length} tasks)`, {
        hint: `wait for them or scancel them first, or leave --shards out to keep ${previous.shards}`,
      });
    }
  }
  const isWanted = (s: ShardStatus) =>
    s.state === 'missing' || (s.state === 'failed' && options.retryFailed === true) || (options.force === true && s.state !== 'running' && s.state !== 'pending');
  const toSubmit = statuses.filter(isWanted).map((s) => s.shard);
  const failedWaiting = statuses.filter((s) => s.state === 'failed' && options.retryFailed !== true).length;
  if (toSubmit.length === 0) {
    process.stdout.write(`${summaryLine(statuses)}\n`);
    process.stdout.write(`nothing to submit: every shard is done, queued${failedWaiting > 0 ? ' or failed (add --retry-failed to run the failed runs again)' : ''}\n`);
    return failedWaiting > 0 ? EXIT_FAILED : EXIT_OK;
  }

  const maxArraySize = await readMaxArraySize().catch((error: unknown) => {
    if (options.dryRun === true) return 1001; // scontrol may be missing where a dry run is tried
    throw error;
  });
  const parts = planArrays(toSubmit, maxArraySize);
  const scripts = scriptOptions(survey, resultsDir, options);
  const taskScript = `${dir}/job.sh`;
  const mergeScript = `${dir}/merge.sh`;
  const throttle = options.throttle === undefined ? '' : `%${options.throttle}`;
  const arrayArgs = (part: (typeof parts)[number]) => [`--array=${part.indices}${throttle}`, `--export=ALL,MPX_SHARD_OFFSET=${part.offset}`, taskScript];

  if (options.dryRun === true) {
    process.stdout.write(`# ${taskScript}\n${renderTaskScript(scripts)}\n# ${mergeScript}\n${renderMergeScript(scripts)}\n`);
    for (const part of parts) process.stdout.write(`sbatch --parsable ${arrayArgs(part).map(shellQuote).join(' ')}\n`);
    process.stdout.write(`sbatch --parsable --dependency=afterany:<array job ids> ${shellQuote(mergeScript)}\n`);
    process.stdout.write(`# ${toSubmit.length} of ${shardCount} shards; MaxArraySize ${maxArraySize}; nothing submitted (--dry-run)\n`);
    return EXIT_OK;
  }

  mkdirSync(`${dir}/logs`, { recursive: true });
  writeFileSync(taskScript, renderTaskScript(scripts), { mode: 0o755 });
  writeFileSync(mergeScript, renderMergeScript(scripts), { mode: 0o755 });
  const arrays: SubmittedArray[] = [];
  const record: SubmissionRecord = previous ?? { mpxSlurm: 1, specs: survey.planned.map((p) => p.spec.name).sort(), shards: shardCount, submissions: [] };
  record.shards = shardCount;
  const submission: SubmissionRecord['submissions'][number] = { date: new Date().toISOString(), arrays, mergeJobId: null };
  record.submissions.push(submission);
  try {
    for (const part of parts) arrays.push({ jobId: await sbatch(arrayArgs(part)), offset: part.offset, shards: part.shards });
    submission.mergeJobId = await sbatch([`--dependency=afterany:${arrays.map((a) => a.jobId).join(':')}`, mergeScript]);
  } finally {
    // What was submitted is recorded even when a later sbatch failed, so status and resubmission know about it.
    if (arrays.length > 0) writeSubmission(dir, record);
  }

  const logs = relative(process.cwd(), `${dir}/logs`) || '.';
  for (const array of arrays) {
    const range = `${array.shards[0]}${array.shards.length > 1 ? `–${array.shards[array.shards.length - 1]}` : ''}`;
    process.stdout.write(`array job ${array.jobId}: ${array.shards.length} shard(s) of ${shardCount} (${range}), ${array.shards.length} task(s)${throttle === '' ? '' : `, at most ${options.throttle} at a time`}\n`);
  }
  process.stdout.write(`merge job ${submission.mergeJobId}: mpx merge once every task has ended (afterany)\n`);
  process.stdout.write(`logs: ${logs}/<array job>_<task>.out, ${logs}/merge-${submission.mergeJobId}.out\n`);
  const statusCommand = `mpx slurm status ${args.map(shellQuote).join(' ')}${options.resultsDir === 'results' ? '' : ` --results-dir ${shellQuote(options.resultsDir)}`}`;
  if (options.wait !== true) {
    process.stdout.write(`follow with: ${statusCommand}\n`);
    return EXIT_OK;
  }
  await waitForJobs(survey.jobNames, [...arrays.map((a) => a.jobId), submission.mergeJobId]);
  return printStatus(await surveyShards(args, { ...options, resultsDir }, undefined, false));
}

export async function slurmStatusCommand(args: string[], options: SlurmStatusOptions): Promise<number> {
  const survey = await surveyShards(args, { ...options, resultsDir: resolve(options.resultsDir) }, undefined, false);
  if (survey.previous === null) process.stdout.write(`no mpx slurm submission recorded in ${survey.dir}; as ${survey.shardCount} shards:\n`);
  return printStatus(survey);
}

async function surveyShards(args: string[], options: SlurmStatusOptions, shards: number | undefined, isDryRun: boolean): Promise<Survey> {
  const planned = await loadAndPlan(args, options);
  assertShardable(planned, 'slurm');
  const filter = parseFilters(options.filter ?? []);
  assertFilterMatches(filter, planned.map((p) => p.plan));
  const key = submissionKey(planned.map((p) => p.spec.name));
  const dir = submissionDir(options.resultsDir, key);
  const previous = readSubmission(dir);
  const runs = planned.flatMap((p) => p.plan.runs.filter((run) => matchesFilter(filter, run)));
  const shardCount = shards ?? previous?.shards ?? Math.max(1, Math.min(runs.length, DEFAULT_MAX_SHARDS));
  if (shardCount > MAX_SHARDS) throw new MpxError('USAGE', `--shards must be at most ${MAX_SHARDS}, got ${shardCount}`);
  const latest = new Map(planned.map((p) => [p.spec.name, latestByRunId(readSpecRecords(options.resultsDir, p.spec.name).all)]));
  const assigned = assignShards(runs, shardCount);
  const counts = Array.from({ length: shardCount }, () => ({ runs: 0, finished: 0, oom: 0, failed: 0 }));
  for (const [i, run] of runs.entries()) {
    const count = counts[assigned[i]! - 1]!;
    const record = latest.get(run.specName)!.get(run.runId);
    count.runs += 1;
    if (record !== undefined && FINISHED_STATUSES.has(record.status)) count.finished += 1;
    if (record?.status === 'oom') count.oom += 1;
    if (record !== undefined && FAILED_STATUSES.has(record.status)) count.failed += 1;
  }
  const jobName = `mpx-${key}`;
  const jobNames = [jobName, `${jobName}-merge`];
  const arrays = previous?.submissions.flatMap((s) => s.arrays) ?? [];
  // A first submission (or a dry run) needs no queue: nothing of it can be queued yet.
  const queue: QueuedJob[] = arrays.length === 0 || isDryRun ? [] : await listQueue(jobNames);
  return { planned, key, dir, previous, shardCount, statuses: shardStatuses(counts, arrays, queue), jobNames };
}

function scriptOptions(survey: Survey, resultsDir: string, options: SlurmSubmitOptions): SlurmScriptOptions {
  const common = [
    ...(options.partition === undefined ? [] : [`--partition=${options.partition}`]),
    ...(options.time === undefined ? [] : [`--time=${options.time}`]),
    ...(options.sbatch ?? []),
  ];
  const gpus = options.gpusPerTask ?? gresGpuCount(options.gres);
  const taskOptions = [
    ...common,
    ...(options.gpusPerTask === undefined ? [] : [`--gpus-per-task=${options.gpusPerTask}`]),
    ...(options.gres === undefined ? [] : [`--gres=${options.gres}`]),
    ...(options.cpusPerTask === undefined ? [] : [`--cpus-per-task=${options.cpusPerTask}`]),
    ...(options.mem === undefined ? [] : [`--mem=${options.mem}`]),
  ];
  // One worker per GPU the task gets; on CPUs, one per CPU it gets (Slurm gives one unless told).
  const jobs = options.jobs ?? gpus ?? options.cpusPerTask ?? 1;
  const runArgs = [
    '--jobs',
    String(jobs),
    ...(options.filter ?? []).flatMap((f) => ['--filter', f]),
    ...(options.force === true ? ['--force'] : []),
    ...(options.retryFailed === true ? ['--retry-failed'] : []),
    ...(options.memoryLimit === undefined ? [] : ['--memory-limit', options.memoryLimit]),
    ...(options.retries === undefined ? [] : ['--retries', String(options.retries)]),
    ...(options.maxRuns === undefined ? [] : ['--max-runs', String(options.maxRuns)]),
  ];
  return {
    jobName: `mpx-${survey.key}`,
    logsDir: `${survey.dir}/logs`,
    cwd: process.cwd(),
    node: process.execPath,
    cli: CLI_FILE,
    // As given: the task starts in the same directory, and meta.json records the spec's path as a local run would.
    specs: survey.planned.map((p) => p.spec.file),
    resultsDir,
    shardCount: survey.shardCount,
    taskOptions,
    mergeOptions: common,
    runArgs,
  };
}

/** `gpu:2` or `gpu:a100:2` → 2; `gpu` → 1; no GPU gres → undefined. */
function gresGpuCount(gres: string | undefined): number | undefined {
  const gpu = gres?.split(',').find((g) => g.startsWith('gpu'));
  if (gpu === undefined) return undefined;
  const count = Number(gpu.split(':').pop());
  return Number.isInteger(count) && count > 0 ? count : 1;
}

async function waitForJobs(jobNames: readonly string[], jobIds: readonly string[]): Promise<void> {
  const ids = new Set(jobIds);
  for (;;) {
    const queue = await listQueue(jobNames);
    if (!queue.some((job) => ids.has(job.arrayJobId))) return;
    await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
  }
}

function printStatus(survey: Survey): number {
  const { statuses } = survey;
  const header = ['shard', 'state', 'runs', 'done', 'oom', 'failed', 'missing', 'task'];
  const rows = statuses.map((s) => [String(s.shard), s.state, String(s.runs), String(s.finished), String(s.oom), String(s.failed), String(s.missing), s.task ?? '-']);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n${summaryLine(statuses)}\n`);
  const isIncomplete = statuses.some((s) => s.state === 'failed' || s.state === 'missing');
  if (isIncomplete) process.stdout.write('submit again (mpx slurm <specs>) to run the missing shards; add --retry-failed for the failed ones\n');
  return isIncomplete ? EXIT_FAILED : EXIT_OK;
}

function summaryLine(statuses: readonly ShardStatus[]): string {
  const counts = new Map<string, number>();
  for (const s of statuses) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
  const order = ['done', 'running', 'pending', 'failed', 'missing'];
  return `${statuses.length} shards: ${order.filter((s) => counts.has(s)).map((s) => `${counts.get(s)} ${s}`).join(', ')}`;
}
