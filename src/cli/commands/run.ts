/**
 * `mpx run <specs...>`: plan every spec, skip the runs whose result is already recorded (resume), run the rest in one
 * worker pool, and hand each finished run to its spec's results (`SpecResults` rewrites the files at once).
 */
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MpxError } from '../../errors.js';
import type { RunConfig } from '../../matrix/types.js';
import type { TorchDescription } from '../../results/metadata.js';
import { type MachineFacts, SpecResults } from '../../results/spec-results.js';
import { capacityRun } from '../../matrix/capacity.js';
import type { Plan } from '../../matrix/types.js';
import { assertResultsDirWritable, readRunRecords, removeStaleTempFiles } from '../../results/store.js';
import { findTensorflowPackage, placeWorkers } from '../../runner/devices.js';
import { startGpuMemorySampler } from '../../runner/gpu-memory.js';
import { acquireResultsLock, isProcessAlive } from '../../runner/lock.js';
import { runAll } from '../../runner/pool.js';
import type { PythonWorker } from '../../runner/engines.js';
import { createProgress } from '../../runner/progress.js';
import { isStoredRecord } from '../../runner/protocol.js';
import { locateProblems } from '../../spec/locator.js';
import { BYTE_SIZE_EXAMPLES, parseByteSize } from '../../spec/size.js';
import { collectEnvironment, type Environment } from '../environment.js';
import { loadAndPlan, type PlannedSpec } from '../load-specs.js';
import { assertFilterMatches, matchesFilter, parseFilters, type RunFilter, type RunSelection, selectRuns } from '../select-runs.js';
import { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK } from '../exit-codes.js';
import { interruptOnSignals } from '../signals.js';
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
}

const WORKER_FILE = fileURLToPath(new URL('../../worker/main.js', import.meta.url));

/** One spec of this run: what it plans, what to run now, and its results. */
interface SpecRun {
  planned: PlannedSpec;
  selection: RunSelection;
  results: SpecResults;
}

export async function runCommand(args: string[], options: RunCommandOptions): Promise<number> {
  const planned = await loadAndPlan(args, options);
  const filter = parseFilters(options.filter ?? []);
  assertFilterMatches(filter, planned.map(filterablePlan));
  const memoryLimitBytes = parseSizeFlag('--memory-limit', options.memoryLimit);
  const workerMemoryBytes = parseSizeFlag('--worker-memory', options.workerMemory);
  assertBackendsInstalled(planned);
  const torch = await checkTorch(planned);
  for (const warning of torch.warnings) process.stderr.write(`mpx: ${warning}\n`);
  assertResultsDirWritable(options.resultsDir);
  // Held from reading the stored records to writing the last result: a second mpx run on the same directory would
  // interleave its records with ours.
  const lock = acquireResultsLock(options.resultsDir);
  try {
    // Half-written temp files of an mpx that was killed mid-write (its results files are intact).
    removeStaleTempFiles(options.resultsDir, isProcessAlive);
    const env = await collectEnvironment({ cwd: process.cwd(), ignorePaths: [options.resultsDir] });
    const torchFacts = torch.probe === null || torch.worker === null ? null : { version: torch.probe.torch, python: torch.worker.python, cuda: torch.probe.cuda, blas: torch.probe.blas };
    const machineFacts = machineFactsOf({ ...env, torch: torchFacts });
    const specs = planned.filter((p) => p.capacity === null).map((p) => startSpec(p, filter, machineFacts, options));
    const capacitySpecs = planned.filter((p) => p.capacity !== null);
    const workers = { memoryLimitBytes, workerMemoryBytes, torchHasCuda: torch.probe?.cuda ?? false, python: torch.worker ?? undefined };
    const { isInterrupted, capacityFailed } = await runSelected(specs, capacitySpecs, planned, env, workers, { ...options, runFilter: filter, machineFacts });
    return summarise(specs, filter, isInterrupted, options.resultsDir, capacityFailed);
  } finally {
    lock.release();
  }
}

/** What the metadata of every spec says about this machine and installation. */
function machineFactsOf(env: Environment & { torch: TorchDescription | null }): MachineFacts {
  return { mpxVersion: env.mpxVersion, nodeVersion: env.nodeVersion, tfjsVersions: env.tfjsVersions, os: env.os, cpus: cpus(), gpus: env.gpus, torch: env.torch, provenance: env.git };
}

/** The runs --filter is checked against: a matrix's runs, or one probe per capacity search (its model, policy, ...). */
function filterablePlan({ spec, plan, capacity }: PlannedSpec): Plan {
  return capacity === null ? plan : { ...plan, runs: capacity.cells.map((cell) => capacityRun(spec, cell, 1, 'probe')) };
}

function startSpec(planned: PlannedSpec, filter: RunFilter, machine: MachineFacts, options: RunCommandOptions): SpecRun {
  const { spec, plan } = planned;
  const selection = selectRuns(plan, readRunRecords(options.resultsDir, spec.name), {
    filter,
    force: options.force ?? false,
    retryFailed: options.retryFailed ?? false,
  });
  const results = new SpecResults(spec.name, spec, plan, selection.stored, options.resultsDir, machine);
  reportSelection(planned, selection, filter);
  return { planned, selection, results };
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
    process.stderr.write('mpx: nothing to run: every selected run has a result (use --force to re-run)\n');
    return { isInterrupted: false, capacityFailed: 0 };
  }
  const resultsOf = new Map<RunConfig, SpecResults>();
  for (const s of specs) for (const run of s.selection.toRun) resultsOf.set(run, s.results);
  const mayUseGpus = planned.some((p) => p.spec.backend === 'auto' || p.spec.backend === 'tensorflow') && findTensorflowPackage() === '@tensorflow/tfjs-node-gpu';
  const { jobs, gpus } = placeWorkers(mayUseGpus, env.gpus, options.jobs);
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
    ...(gpus.length > 0
      ? {
          slotEnv: (slot: number) => ({ CUDA_VISIBLE_DEVICES: String(gpus[slot % gpus.length]!.index) }),
          sampleGpuMemory: (pid: number) => startGpuMemorySampler(pid),
        }
      : {}),
  };
  let capacityFailed = 0;
  const isInterrupted = await interruptOnSignals(async (signal) => {
    if (runs.length > 0) {
      const progress = createProgress({ total: runs.length, isTTY: Boolean(process.stderr.isTTY), stream: process.stderr, jobs });
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
            progress.finish(record, run);
            // An interrupted run measured nothing: not recording it lets the next `mpx run` start it again (and keeps
            // the result it had before a --force re-run).
            if (isStoredRecord(record)) resultsOf.get(run)!.add(record);
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

/** The last line per spec and the exit code. */
function summarise(specs: SpecRun[], filter: RunFilter, isInterrupted: boolean, resultsDir: string, capacityFailed: number): number {
  let failed = capacityFailed;
  let failedEarlier = 0;
  for (const { planned, selection, results } of specs) {
    const runsById = new Map(planned.plan.runs.map((run) => [run.runId, run]));
    const summary = results.finish((runId) => matchesFilter(filter, runsById.get(runId)!), selection.stale > 0);
    if (summary === null) continue;
    failed += summary.failed;
    failedEarlier += summary.failedEarlier;
    const where = summary.written === null ? `${resultsDir}/${planned.spec.name}.csv unchanged` : `→ ${summary.written.csv}`;
    const counts = `${summary.produced} new, ${summary.reused} reused`;
    process.stderr.write(`mpx: ${planned.spec.name}: ${summary.ok}/${summary.planned} runs ok (${counts}) ${where}\n`);
  }
  if (isInterrupted) return EXIT_INTERRUPTED;
  if (failed > 0) {
    const earlier = failedEarlier > 0 ? ` (${failedEarlier} recorded by an earlier mpx run: re-run them with --retry-failed)` : '';
    process.stderr.write(`mpx: ${failed} run(s) failed${earlier}; see the status and reason columns\n`);
    return EXIT_FAILED;
  }
  return EXIT_OK;
}

/** One line per spec saying what is reused, so a resumed sweep never looks like a silently short one. */
function reportSelection({ spec, plan }: PlannedSpec, selection: RunSelection, filter: RunFilter): void {
  const { selected, reused, reusedFailed, stale } = selection;
  const say = (text: string) => process.stderr.write(`mpx: ${spec.name}: ${text}\n`);
  if (filter.size > 0) say(`--filter selects ${selected} of ${plan.runs.length} runs`);
  if (reused > 0) {
    const failedNote = reusedFailed > 0 ? `; ${reusedFailed} of them failed (use --retry-failed to re-run those)` : '';
    say(`reusing ${reused} of ${selected} runs (use --force to re-run)${failedNote}`);
  }
  if (stale > 0) say(`dropping ${stale} recorded run(s) that the spec no longer has`);
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
