/**
 * `mpx run <specs...>`: plan every spec, skip the runs whose result is already recorded (resume), run the rest in
 * one worker pool, and rewrite each spec's results from all its current records after every finished run (so an
 * interrupt or a crash of mpx itself never loses finished work, and a partial run never drops rows).
 */
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MpxError } from '../../errors.js';
import type { RunConfig } from '../../matrix/types.js';
import { aggregateCells } from '../../results/aggregate.js';
import { collectMetadata } from '../../results/metadata.js';
import { assertResultsDirWritable, hasSameResults, readRunRecords, removeStaleTempFiles, type ResultsBundle, writeResults } from '../../results/store.js';
import { findTensorflowPackage } from '../../runner/devices.js';
import { startGpuMemorySampler } from '../../runner/gpu-memory.js';
import { acquireResultsLock, isProcessAlive } from '../../runner/lock.js';
import { BYTE_SIZE_EXAMPLES, parseByteSize } from '../../spec/size.js';
import { INTERRUPTED_BY_USER, runAll } from '../../runner/pool.js';
import { createProgress } from '../../runner/progress.js';
import type { RunRecord, RunStatus } from '../../runner/protocol.js';
import { collectEnvironment, type Environment } from '../environment.js';
import { loadAndPlan, type PlannedSpec } from '../load-specs.js';
import { assertFilterMatches, matchesFilter, parseFilters, type RunFilter, type RunSelection, selectRuns } from '../select-runs.js';

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
  /** `--memory-limit`: budget for the policy's modelled bytes of every run, overriding the specs' `memoryLimit`. */
  memoryLimit?: string;
  /** `--retries`: restarts of a crashed run, overriding the specs' `train.retries`. */
  retries?: number;
}

const WORKER_FILE = fileURLToPath(new URL('../../worker/main.js', import.meta.url));
const FAILED: ReadonlySet<RunStatus> = new Set(['failed', 'crashed', 'timeout']);

interface SpecState {
  planned: PlannedSpec;
  selection: RunSelection;
  /** run id → latest record: the stored ones, replaced by new ones as they finish. */
  current: Map<string, RunRecord>;
  /** Run ids recorded by this invocation. */
  producedNow: Set<string>;
}

export async function runCommand(args: string[], options: RunCommandOptions): Promise<number> {
  const planned = await loadAndPlan(args, options);
  const filter = parseFilters(options.filter ?? []);
  assertFilterMatches(filter, planned.map((p) => p.plan));
  const memoryLimitBytes = parseMemoryLimit(options.memoryLimit);
  assertBackendsInstalled(planned);
  assertResultsDirWritable(options.resultsDir);
  // Held from reading the stored records to writing the last result: a second mpx run on the same directory would
  // interleave its records with ours.
  const lock = acquireResultsLock(options.resultsDir);
  try {
    // Half-written temp files of an mpx that was killed mid-write (its results files are intact).
    removeStaleTempFiles(options.resultsDir, isProcessAlive);
    return await runLocked(planned, filter, memoryLimitBytes, options);
  } finally {
    lock.release();
  }
}

async function runLocked(planned: PlannedSpec[], filter: RunFilter, memoryLimitBytes: number | null, options: RunCommandOptions): Promise<number> {
  const states = planned.map((p): SpecState => {
    const selection = selectRuns(p.plan, readRunRecords(options.resultsDir, p.spec.name), {
      filter,
      force: options.force ?? false,
      retryFailed: options.retryFailed ?? false,
    });
    return { planned: p, selection, current: new Map(selection.stored.map((r) => [r.runId, r])), producedNow: new Set() };
  });
  const env = await collectEnvironment({ cwd: process.cwd(), ignorePaths: [options.resultsDir] });

  for (const state of states) reportSelection(state, filter);

  const runs = states.flatMap((s) => s.selection.toRun);
  const stateOf = new Map<RunConfig, SpecState>();
  for (const state of states) for (const run of state.selection.toRun) stateOf.set(run, state);
  const write = (state: SpecState) => writeResults(options.resultsDir, state.planned.spec.name, bundleOf(state, env));

  const interrupt = new AbortController();
  if (runs.length > 0) {
    const jobs = options.jobs ?? defaultJobCount(planned, env);
    const gpus = usesGpus(planned, env) ? env.gpus : [];
    const progress = createProgress({ total: runs.length, isTTY: Boolean(process.stderr.isTTY), stream: process.stderr, jobs });
    const onSignal = (signal: NodeJS.Signals) => {
      if (interrupt.signal.aborted) process.exit(130); // a second Ctrl-C: leave at once
      process.stderr.write(`\nmpx: ${signal}: stopping workers; finished runs are kept (press Ctrl-C again to exit at once)\n`);
      interrupt.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.stderr.write(`mpx: ${runs.length} runs from ${planned.length} spec(s), ${jobs} at a time\n`);
    try {
      await runAll(runs, {
        jobs,
        workerFile: WORKER_FILE,
        signal: interrupt.signal,
        failFast: options.failFast,
        retries: options.retries,
        memoryLimitBytes,
        // Without it TensorFlow reserves nearly all GPU memory up front and nvidia-smi would show that, not the run.
        env: { TF_FORCE_GPU_ALLOW_GROWTH: 'true' },
        ...(gpus.length > 0
          ? {
              slotEnv: (slot: number) => ({ CUDA_VISIBLE_DEVICES: String(gpus[slot % gpus.length]!.index) }),
              sampleGpuMemory: (pid: number) => startGpuMemorySampler(pid),
            }
          : {}),
        onStart: (run) => progress.start(run),
        onProgress: (run, step, total) => progress.progress(run, step, total),
        onRecord: (record, run) => {
          progress.finish(record, run);
          // A run killed by Ctrl-C measured nothing: not recording it lets the next `mpx run` start it again (and
          // keeps the result it had before a --force re-run), where a `failed` record would wait for --retry-failed.
          if (isInterruption(record, interrupt.signal)) return;
          const state = stateOf.get(run)!;
          state.current.set(record.runId, record);
          state.producedNow.add(record.runId);
          write(state);
        },
      });
    } finally {
      progress.done();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  } else {
    process.stderr.write('mpx: nothing to run: every selected run has a result (use --force to re-run)\n');
  }

  let failed = 0;
  let failedEarlier = 0;
  for (const state of states) {
    const { spec, plan } = state.planned;
    if (state.current.size === 0 && state.selection.stale === 0) continue; // nothing recorded, nothing to drop
    const bundle = bundleOf(state, env);
    // Nothing new: leave committed files alone unless the plan dropped or moved records (the CSV must mirror the spec).
    const isUnchanged = state.producedNow.size === 0 && hasSameResults(options.resultsDir, spec.name, bundle);
    const paths = isUnchanged ? null : writeResults(options.resultsDir, spec.name, bundle);
    for (const run of plan.runs) {
      const record = state.current.get(run.runId);
      if (record === undefined || !FAILED.has(record.status) || !matchesFilter(filter, run)) continue;
      failed += 1;
      if (!state.producedNow.has(run.runId)) failedEarlier += 1;
    }
    const ok = [...state.current.values()].filter((r) => r.status === 'ok').length;
    const where = paths === null ? `${options.resultsDir}/${spec.name}.csv unchanged` : `→ ${paths.csv}`;
    const counts = `${state.producedNow.size} new, ${state.current.size - state.producedNow.size} reused`;
    process.stderr.write(`mpx: ${spec.name}: ${ok}/${plan.runs.length} runs ok (${counts}) ${where}\n`);
  }
  if (interrupt.signal.aborted) return 130;
  if (failed > 0) {
    const earlier = failedEarlier > 0 ? ` (${failedEarlier} recorded by an earlier mpx run: re-run them with --retry-failed)` : '';
    process.stderr.write(`mpx: ${failed} run(s) failed${earlier}; see the status and reason columns\n`);
    return 1;
  }
  return 0;
}

function isInterruption(record: RunRecord, signal: AbortSignal): boolean {
  return signal.aborted && record.status === 'failed' && record.reason === INTERRUPTED_BY_USER;
}

/** Everything a spec's results files hold right now: all current records of its plan, old and new. */
function bundleOf(state: SpecState, env: Environment): ResultsBundle {
  const { spec, plan } = state.planned;
  const records = [...state.current.values()];
  return {
    rows: aggregateCells(plan, records),
    records,
    metadata: collectMetadata({
      mpxVersion: env.mpxVersion,
      nodeVersion: env.nodeVersion,
      tfjsVersions: env.tfjsVersions,
      os: env.os,
      cpus: cpus(),
      gpus: env.gpus,
      provenance: env.git,
      spec: { name: spec.name, file: spec.file, sha256: spec.sha256 },
      date: new Date(),
      plannedRuns: plan.runs.length,
      records,
      reusedRuns: records.length - state.producedNow.size,
    }),
  };
}

/** One line per spec saying what is reused, so a resumed sweep never looks like a silently short one. */
function reportSelection(state: SpecState, filter: RunFilter): void {
  const { spec, plan } = state.planned;
  const { selected, reused, reusedFailed, stale } = state.selection;
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
  for (const { spec } of planned) {
    if (spec.backend !== 'tensorflow' || findTensorflowPackage() !== null) continue;
    const at = spec.locate(['backend']);
    throw new MpxError('BACKEND_UNAVAILABLE', 'backend tensorflow is requested but neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed', {
      file: spec.file,
      line: at?.line,
      col: at?.col,
      hint: 'npm install @tensorflow/tfjs-node-gpu (it downloads libtensorflow), or use backend: auto to fall back to wasm',
    });
  }
}

/** Whether workers may train on GPUs: tfjs-node-gpu is installed, a spec may pick it, and nvidia-smi lists GPUs. */
function usesGpus(planned: PlannedSpec[], env: Environment): boolean {
  const mayUseTensorflow = planned.some((p) => p.spec.backend === 'auto' || p.spec.backend === 'tensorflow');
  return mayUseTensorflow && findTensorflowPackage() === '@tensorflow/tfjs-node-gpu' && env.gpus.length > 0;
}

/** One worker per core on CPU backends; one per GPU (each pinned with CUDA_VISIBLE_DEVICES) on the GPU backend. */
function defaultJobCount(planned: PlannedSpec[], env: Environment): number {
  return usesGpus(planned, env) ? env.gpus.length : availableParallelism();
}

function parseMemoryLimit(text: string | undefined): number | null {
  if (text === undefined) return null;
  const bytes = parseByteSize(text);
  if (bytes === null) {
    throw new MpxError('USAGE', `--memory-limit must be a size such as ${BYTE_SIZE_EXAMPLES}, got "${text}"`, {
      hint: 'e.g. mpx run experiments/*.yaml --memory-limit 2GiB',
    });
  }
  return bytes;
}
