/**
 * `mpx run <specs...>`: plan every spec, skip the runs whose result is already recorded (resume), run the rest in one
 * worker pool, and hand each finished run to its spec's results (`SpecResults` records it at once). `--shard i/n`
 * runs one shard of the selected runs with no lock on the results directory, so shards on many hosts can share it.
 */
import { cpus, hostname, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MpxError } from '../../errors.js';
import type { RunConfig } from '../../matrix/types.js';
import type { TorchDescription } from '../../results/metadata.js';
import { formatBytes, planningPeakOfRun } from '../../results/peak.js';
import { summarizeResults } from '../../results/report/summary.js';
import { renderTerminalSummary } from '../../results/report/terminal.js';
import { type MachineFacts, SpecResults } from '../../results/spec-results.js';
import { capacityRun } from '../../matrix/capacity.js';
import type { Plan } from '../../matrix/types.js';
import { assignShards, formatShard, parseShard, type Shard } from '../../matrix/shard.js';
import { readSpecRecords, type SpecRecords } from '../../results/spec-records.js';
import { assertResultsDirWritable, removeStaleTempFiles } from '../../results/store.js';
import { findTensorflowPackage, placeWorkers } from '../../runner/devices.js';
import { startGpuMemorySampler } from '../../runner/gpu-memory.js';
import { acquireResultsLock, isProcessAlive } from '../../runner/lock.js';
import { runAll } from '../../runner/pool.js';
import type { PythonWorker } from '../../runner/engines.js';
import { createProgress } from '../../runner/progress.js';
import { isStoredRecord, type RunRecord } from '../../runner/protocol.js';
import { locateProblems } from '../../spec/locator.js';
import { BYTE_SIZE_EXAMPLES, parseByteSize } from '../../spec/size.js';
import { shellQuote } from '../../util/shell-quote.js';
import { collectEnvironment, type Environment } from '../environment.js';
import { loadAndPlan, type PlannedSpec } from '../load-specs.js';
import { assertFilterMatches, matchesFilter, parseFilters, type RunFilter, type RunSelection, selectRuns } from '../select-runs.js';
import { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_SHARD_OOM } from '../exit-codes.js';
import { interruptOnSignals } from '../signals.js';
import { assertNoWholeRun, assertShardable } from '../shard-guards.js';
import { createMemoryCeilings, workerMemoryShare } from '../memory-ceilings.js';
import { checkTorch } from '../torch.js';
import { runCapacityPhase } from './run-capacity.js';

export interface RunCommandOptions {
  jobs?: number;
  maxRuns?: number;
  resultsDir: string;
  failFast: boolean;
  /** Re-run selected runs even when their result is recorded. @default false */
  force?: boolean;
  /** Re-run selected runs whose recorded status is failed, timeout or crashed. @default false */
  retryFailed?: boolean;
  /** `--filter` arguments, `key=value[|value][,key=value]`. @default [] */
  filter?: string[];
  /** `--memory-limit`: budget for the policy's modeled bytes of every run, overriding the specs' `memoryLimit`. */
  memoryLimit?: string;
  /** `--retries`: restarts of a crashed run, overriding the specs' `train.retries`. */
  retries?: number;
  /** `--worker-memory`: what one worker may take before the memory guard kills it; default this machine's memory ÷ jobs. */
  workerMemory?: string;
  /** `--shard <index>/<count>`: run only this shard of the selected runs (1-based). */
  shard?: string;
}

const WORKER_FILE = fileURLToPath(new URL('../../worker/main.js', import.meta.url));

/** One spec of this run: what it plans, what to run now, and its results. */
interface SpecRun {
  planned: PlannedSpec;
  selection: RunSelection;
  results: SpecResults;
  /** Record files were there when the run started. */
  hasRecordFiles: boolean;
  isInShard: (runId: string) => boolean;
}

export async function runCommand(args: string[], options: RunCommandOptions): Promise<number> {
  const shard = options.shard === undefined ? null : parseShard(options.shard);
  const planned = await loadAndPlan(args, options);
  const filter = parseFilters(options.filter ?? []);
  assertFilterMatches(filter, planned.map(filterablePlan));
  const memoryLimitBytes = parseSizeFlag('--memory-limit', options.memoryLimit);
  const workerMemoryBytes = parseSizeFlag('--worker-memory', options.workerMemory);
  assertBackendsInstalled(planned);
  const torch = await checkTorch(planned);
  for (const warning of torch.warnings) process.stderr.write(`mpx: ${warning}\n`);
  assertShardable(planned, shard);
  assertResultsDirWritable(options.resultsDir);
  // A whole run holds the lock from reading the stored records to merging the last result: a second one would run
  // the same runs. Shards take none (each records only its own runs, in files of its own), but do not start beside a
  // whole run, which would run their runs too.
  const lock = shard === null ? acquireResultsLock(options.resultsDir) : null;
  if (shard !== null) assertNoWholeRun(options.resultsDir, "which runs this shard's runs too", 'wait for it to finish, or stop it and run every part as a shard');
  try {
    // Half-written temp files of an mpx that was killed mid-write (its results files are intact). Not from a shard:
    // temp files of another host's live merge would look dead here.
    if (shard === null) removeStaleTempFiles(options.resultsDir, isProcessAlive);
    const env = await collectEnvironment({ cwd: process.cwd(), ignorePaths: [options.resultsDir] });
    const torchFacts = torch.probe === null || torch.worker === null ? null : { version: torch.probe.torch, python: torch.worker.python, cuda: torch.probe.cuda, blas: torch.probe.blas };
    const machineFacts = machineFactsOf({ ...env, torch: torchFacts });
    const matrixSpecs = planned.filter((p) => p.capacity === null);
    const inShard = shardMembers(matrixSpecs, filter, shard);
    const specs = matrixSpecs.map((p) => startSpec(p, filter, inShard, shard, machineFacts, options));
    if (shard !== null) reportShard(shard, specs);
    const capacitySpecs = planned.filter((p) => p.capacity !== null);
    const workers = { memoryLimitBytes, workerMemoryBytes, torchHasCuda: torch.probe?.cuda ?? false, python: torch.worker ?? undefined };
    const { isInterrupted, capacityFailed } = await runSelected(specs, capacitySpecs, planned, env, workers, { ...options, runFilter: filter, machineFacts });
    return await summarise(specs, filter, isInterrupted, shard, options.resultsDir, args, capacityFailed);
  } finally {
    lock?.release();
  }
}

/** The runs of this shard, as `spec name + run id` keys: a partition of the runs the filter selects, before resume. */
function shardMembers(planned: readonly PlannedSpec[], filter: RunFilter, shard: Shard | null): ReadonlySet<string> | null {
  if (shard === null) return null;
  const runs = planned.flatMap((p) => p.plan.runs.filter((run) => matchesFilter(filter, run)));
  const shards = assignShards(runs, shard.count);
  return new Set(runs.flatMap((run, i) => (shards[i] === shard.index ? [shardKey(run.specName, run.runId)] : [])));
}

const shardKey = (specName: string, runId: string) => `${specName}\u0000${runId}`;

/** What the metadata of every spec says about this machine and installation. */
function machineFactsOf(env: Environment & { torch: TorchDescription | null }): MachineFacts {
  return { mpxVersion: env.mpxVersion, nodeVersion: env.nodeVersion, tfjsVersions: env.tfjsVersions, os: env.os, cpus: cpus(), gpus: env.gpus, torch: env.torch, provenance: env.git };
}

/** The runs --filter is checked against: a matrix's runs, or one probe per capacity search (its model, policy, ...). */
function filterablePlan({ spec, plan, capacity }: PlannedSpec): Plan {
  return capacity === null ? plan : { ...plan, runs: capacity.cells.map((cell) => capacityRun(spec, cell, 1, 'probe')) };
}

function startSpec(
  planned: PlannedSpec,
  filter: RunFilter,
  inShard: ReadonlySet<string> | null,
  shard: Shard | null,
  machine: MachineFacts,
  options: RunCommandOptions,
): SpecRun {
  const { spec, plan } = planned;
  const stored: SpecRecords = readSpecRecords(options.resultsDir, spec.name);
  const isInShard = (runId: string) => inShard === null || inShard.has(shardKey(spec.name, runId));
  const selection = selectRuns(plan, stored.all, {
    filter,
    force: options.force ?? false,
    retryFailed: options.retryFailed ?? false,
    isInShard: (run) => isInShard(run.runId),
  });
  const results = new SpecResults(spec.name, spec, plan, selection.stored, options.resultsDir, machine, {
    shard,
    host: hostname(),
    toRun: selection.toRun,
    schedulerJob: schedulerJob(),
    rebuildIntervalMs: rebuildIntervalMs(),
  });
  reportSelection(planned, selection, filter, shard);
  if (shard === null) reportLiveWriters(planned, stored);
  return { planned, selection, results, hasRecordFiles: stored.files.length > 0, isInShard };
}

/** The Slurm job (array task) this process runs in, for the record file's header; null outside Slurm. */
function schedulerJob(): string | null {
  const { SLURM_JOB_ID, SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID } = process.env;
  if (SLURM_ARRAY_JOB_ID !== undefined && SLURM_ARRAY_TASK_ID !== undefined) return `${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}`;
  return SLURM_JOB_ID ?? null;
}

/** One line saying which shard this is, where, and on which GPUs: what a scheduler's log should start with. */
function reportShard(shard: Shard, specs: readonly SpecRun[]): void {
  const runs = specs.reduce((n, s) => n + s.selection.selected, 0);
  const toRun = specs.reduce((n, s) => n + s.selection.toRun.length, 0);
  const job = schedulerJob();
  const devices = process.env.CUDA_VISIBLE_DEVICES;
  const where = [`host ${hostname()}`, job === null ? null : `job ${job}`, devices === undefined ? null : `CUDA_VISIBLE_DEVICES=${devices}`].filter((p) => p !== null);
  process.stderr.write(`mpx: shard ${formatShard(shard)}: ${runs} runs, ${toRun} to run (${where.join(', ')})\n`);
}

/** A whole run beside shards that are still recording would run their runs a second time: say so. */
function reportLiveWriters({ spec }: PlannedSpec, stored: SpecRecords): void {
  const here = hostname();
  const live = stored.files.filter((f) => !f.isClosed && f.header !== null && (f.header.writer.host !== here || isProcessAlive(f.header.writer.pid)));
  if (live.length === 0) return;
  const who = live.slice(0, 3).map((f) => `${f.header!.writer.host} pid ${f.header!.writer.pid}`).join(', ');
  process.stderr.write(`mpx: ${spec.name}: warning: ${live.length} record file(s) are still being written (${who}${live.length > 3 ? ', …' : ''}); runs they have not recorded yet may run twice\n`);
}

/**
 * Runs every selected run of every matrix spec in one pool, then the capacity searches; says whether the user
 * interrupted it and how many searches failed.
 */
async function runSelected(
  specs: SpecRun[],
  capacitySpecs: PlannedSpec[],
  planned: PlannedSpec[],
  env: Environment,
  workers: { memoryLimitBytes: number | null; workerMemoryBytes: number | null; torchHasCuda: boolean; python?: PythonWorker },
  options: RunCommandOptions & { runFilter: RunFilter; machineFacts: MachineFacts },
): Promise<{ isInterrupted: boolean; capacityFailed: number }> {
  const runs = specs.flatMap((s) => s.selection.toRun);
  if (runs.length === 0 && capacitySpecs.length === 0) {
    process.stderr.write(`mpx: nothing to run: every selected run${options.shard === undefined ? '' : ' of this shard'} has a result (use --force to re-run)\n`);
    return { isInterrupted: false, capacityFailed: 0 };
  }
  const resultsOf = new Map<RunConfig, SpecResults>();
  for (const s of specs) for (const run of s.selection.toRun) resultsOf.set(run, s.results);
  const mayUseGpus =
    (planned.some((p) => p.spec.backend === 'auto' || p.spec.backend === 'tensorflow') && findTensorflowPackage() === '@tensorflow/tfjs-node-gpu') ||
    (workers.torchHasCuda && planned.some((p) => p.plan.cells.some((c) => c.backend === 'torch')));
  const { jobs, devices } = placeWorkers(mayUseGpus, env.gpus, options.jobs, process.env.CUDA_VISIBLE_DEVICES);
  const memoryFacts = {
    totalBytes: totalmem(),
    jobs,
    workerMemoryBytes: workers.workerMemoryBytes,
    budgetOverrideBytes: workers.memoryLimitBytes,
    hasTensorflowPackage: findTensorflowPackage() !== null,
    gpuCount: env.gpus.length,
    torchHasCuda: workers.torchHasCuda,
  };
  const workerOptions = {
    workerFile: WORKER_FILE,
    retries: options.retries,
    memoryLimitBytes: workers.memoryLimitBytes,
    python: workers.python,
    memoryCeilings: createMemoryCeilings(memoryFacts),
    workerMemory: workerMemoryShare(memoryFacts),
    // Without it TensorFlow reserves nearly all GPU memory up front and nvidia-smi would show that, not the run.
    env: { TF_FORCE_GPU_ALLOW_GROWTH: 'true' },
    ...(devices.length > 0
      ? {
          slotEnv: (slot: number) => ({ CUDA_VISIBLE_DEVICES: devices[slot % devices.length]! }),
          sampleGpuMemory: (pid: number) => startGpuMemorySampler(pid),
        }
      : {}),
  };
  let capacityFailed = 0;
  const isInterrupted = await interruptOnSignals(async (signal) => {
    if (runs.length > 0) {
      const progress = createProgress({ total: runs.length, isTTY: Boolean(process.stderr.isTTY), stream: process.stderr, jobs, describePeak });
      process.stderr.write(`mpx: ${runs.length} runs from ${specs.length} spec(s), ${jobs} at a time\n`);
      try {
        await runAll(runs, {
          ...workerOptions,
          jobs,
          signal,
          failFast: options.failFast,
          onStart: (run) => progress.start(run),
          onProgress: (run, step, total) => progress.progress(run, step, total),
          onRecord: (record, run) => {
            // An interrupted run measured nothing: not recording it lets the next `mpx run` start it again (and keeps
            // the result it had before a --force re-run). Recorded first, announced after: a run shown as finished
            // is on disk.
            if (isStoredRecord(record)) resultsOf.get(run)!.add(record);
            progress.finish(record, run);
          },
        });
      } finally {
        progress.done();
      }
    }
    if (capacitySpecs.length === 0 || signal.aborted) return;
    const phase = await runCapacityPhase(capacitySpecs, {
      ...workerOptions,
      jobs,
      signal,
      resultsDir: options.resultsDir,
      machine: options.machineFacts,
      force: options.force ?? false,
      filter: options.runFilter,
    });
    capacityFailed = phase.failed;
  });
  return { isInterrupted, capacityFailed };
}

/** A finished run's planning peak for its progress line: `29.88 MB modeled`. */
function describePeak(record: RunRecord, run: RunConfig): string | null {
  const peak = record.measurements === null ? null : planningPeakOfRun(record.measurements, run.backend);
  return peak === null ? null : `${formatBytes(peak.bytes)} ${peak.kind}`;
}

/**
 * `MPX_REBUILD_INTERVAL_MS`: the least time between rebuilds of a spec's CSV while runs finish (default 5 s). Drills
 * set it high so that a full disk meets the record append and not a rebuild, whatever the machine's speed.
 */
function rebuildIntervalMs(): number | undefined {
  const value = Number(process.env.MPX_REBUILD_INTERVAL_MS);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

/** The last line per spec, the summary of each matrix spec's results, and the exit code. */
async function summarise(
  specs: SpecRun[],
  filter: RunFilter,
  isInterrupted: boolean,
  shard: Shard | null,
  resultsDir: string,
  args: readonly string[],
  capacityFailed: number,
): Promise<number> {
  let failed = capacityFailed;
  let failedEarlier = 0;
  let oom = 0;
  const answers: string[] = [];
  const color = Boolean(process.stdout.isTTY) && process.env.NO_COLOR === undefined;
  for (const { planned, selection, results, hasRecordFiles, isInShard } of specs) {
    const runsById = new Map(planned.plan.runs.map((run) => [run.runId, run]));
    const summary = await results.finish({
      isInScope: isInShard,
      isCounted: (runId) => isInShard(runId) && matchesFilter(filter, runsById.get(runId)!),
      hadStale: selection.stale > 0 && shard === null,
      hasRecordFiles,
    });
    if (summary === null) continue;
    failed += summary.failed;
    failedEarlier += summary.failedEarlier;
    oom += summary.oom;
    const written = summary.written;
    const where =
      written === null ? `${resultsDir}/${planned.spec.name}.csv unchanged` : 'records' in written ? `→ ${written.records}` : `→ ${written.csv}`;
    const counts = `${summary.produced} new, ${summary.reused} reused`;
    const of = shard === null ? '' : ` of shard ${formatShard(shard)}`;
    process.stderr.write(`mpx: ${planned.spec.name}: ${summary.ok}/${summary.planned} runs${of} ok (${counts}) ${where}\n`);
    if (summary.keptFiles > 0) {
      process.stderr.write(`mpx: ${planned.spec.name}: ${summary.keptFiles} record file(s) are still being written by other mpx processes; mpx merge folds them in when they are done\n`);
    }
    answers.push(renderTerminalSummary(summarizeResults(planned.spec.name, results.rows()), { color }).join('\n'));
  }
  if (shard !== null && specs.some((s) => s.selection.toRun.length > 0 || s.hasRecordFiles)) {
    process.stderr.write(`mpx: shard ${formatShard(shard)} recorded; when every shard is, merge them: mpx merge ${args.map(shellQuote).join(' ')} --results-dir ${shellQuote(resultsDir)}\n`);
  }
  // The answer last, on stdout (progress and bookkeeping are on stderr): per spec, peak by policy and batch size.
  if (answers.length > 0) process.stdout.write(`\n${answers.join('\n\n')}\n`);
  if (isInterrupted) return EXIT_INTERRUPTED;
  if (failed > 0) {
    const earlier = failedEarlier > 0 ? ` (${failedEarlier} recorded by an earlier mpx run: re-run them with --retry-failed)` : '';
    process.stderr.write(`mpx: ${failed} run(s) failed${earlier}; see the status and reason columns\n`);
    return EXIT_FAILED;
  }
  // A scheduler's task tells OOM apart from success and failure (an oom row is still an answer, and recorded).
  if (shard !== null && oom > 0) return EXIT_SHARD_OOM;
  return EXIT_OK;
}

/** One line per spec saying what is reused, so a resumed sweep never looks like a silently short one. */
function reportSelection({ spec, plan }: PlannedSpec, selection: RunSelection, filter: RunFilter, shard: Shard | null): void {
  const { selected, reused, reusedFailed, stale } = selection;
  const say = (text: string) => process.stderr.write(`mpx: ${spec.name}: ${text}\n`);
  if (filter.size > 0 || shard !== null) say(`${[filter.size > 0 ? '--filter' : '', shard === null ? '' : `--shard ${formatShard(shard)}`].filter((t) => t !== '').join(' and ')} selects ${selected} of ${plan.runs.length} runs`);
  if (reused > 0) {
    const failedNote = reusedFailed > 0 ? `; ${reusedFailed} of them failed (use --retry-failed to re-run those)` : '';
    say(`reusing ${reused} of ${selected} runs (use --force to re-run)${failedNote}`);
  }
  if (stale > 0 && shard === null) say(`dropping ${stale} recorded run(s) that the spec no longer has`);
}

/** An explicitly requested `tensorflow` backend that is not installed is an input error, reported before any run. */
function assertBackendsInstalled(planned: PlannedSpec[]): void {
  for (const { spec, locator } of planned) {
    if (spec.backend !== 'tensorflow' || findTensorflowPackage() !== null) continue;
    throw locateProblems(
      [
        {
          code: 'BACKEND_UNAVAILABLE',
          path: ['backend'],
          message: 'backend tensorflow is requested but neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed',
          hint: 'npm install @tensorflow/tfjs-node-gpu (it downloads libtensorflow), or use backend: auto to fall back to wasm',
        },
      ],
      locator,
    );
  }
}

function parseSizeFlag(flag: string, text: string | undefined): number | null {
  if (text === undefined) return null;
  const bytes = parseByteSize(text);
  if (bytes === null) {
    throw new MpxError('USAGE', `${flag} must be a size such as ${BYTE_SIZE_EXAMPLES}, got "${text}"`, {
      hint: `e.g. mpx run experiments/*.yaml ${flag} 2GiB`,
    });
  }
  return bytes;
}
