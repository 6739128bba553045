/**
 * Runs the capacity searches of one spec: each search probes one micro batch at a time in a fresh worker (through
 * `runInWorker`, so the pre-flight, the memory guard, timeouts and crash handling are those of every run), searches
 * run `jobs` at a time (p-queue, a slot free list as in `pool.ts`), and a probe recorded before is reused instead of
 * run again — so an interrupted search resumes, and an unchanged one replays in no time.
 */
import PQueue from 'p-queue';
import { capacityRun, microBatchRange, type CapacityCell, type CapacityPlan } from '../matrix/capacity.js';
import type { RunConfig } from '../matrix/types.js';
import { metricValue, searchMetric, type FinishedSearch } from '../results/capacity.js';
import type { ExperimentSpec } from '../spec/types.js';
import { searchCapacity, type ProbeOutcome } from './capacity-search.js';
import { preflight } from './preflight.js';
import { isStoredRecord, type RunRecord, type StoredRecord } from './protocol.js';
import { runInWorker, type SpawnOptions } from './spawn.js';

export interface CapacityRunOptions extends Omit<SpawnOptions, 'signal' | 'env'> {
  jobs: number;
  env?: Record<string, string>;
  slotEnv?: (slot: number) => Record<string, string>;
  /** Aborting stops the searches; a probe cut short is not recorded (the next run does it again). */
  signal?: AbortSignal;
  /** Reuse recorded runs (false with --force). @default true */
  reuse?: boolean;
  /** A record of this spec, if one is stored (resume). */
  recordOf: (runId: string) => StoredRecord | undefined;
  /** Every new record, in the order they finish (never two at once): persist it here. */
  onRecord: (record: StoredRecord, run: RunConfig) => void;
  onProbe?: (cell: CapacityCell, microBatchSize: number, outcome: ProbeOutcome, isReused: boolean) => void;
  onSearch?: (search: FinishedSearch) => void;
}

/** Thrown inside a search when the user interrupted it. */
class Interrupted extends Error {}

/** Runs every search of `plan`; returns those that finished, in cell order (fewer when interrupted). */
export async function runCapacitySearches(spec: ExperimentSpec, plan: CapacityPlan, options: CapacityRunOptions): Promise<FinishedSearch[]> {
  const { jobs, env, slotEnv, signal, reuse = true, recordOf, onRecord, onProbe, onSearch, ...spawnOptions } = options;
  const freeSlots = Array.from({ length: jobs }, (_, slot) => slot);
  const finished: FinishedSearch[] = [];
  const queue = new PQueue({ concurrency: jobs });

  /** The record of `run`: stored, refused by the pre-flight, or from a worker. */
  const execute = async (run: RunConfig): Promise<{ record: StoredRecord; isReused: boolean }> => {
    const stored = reuse ? recordOf(run.runId) : undefined;
    if (stored !== undefined) return { record: stored, isReused: true };
    // The search's own budget, not the probe's stop line (twice it): a static bound above it cannot fit.
    const ceilings = spawnOptions.memoryCeilings?.(run);
    const verdict = ceilings ? preflight(run, { ...ceilings, budgetBytes: plan.capacity.budgetBytes }) : null;
    let record: RunRecord;
    if (verdict !== null) {
      record = { runId: run.runId, cellId: run.cellId, cellIndex: run.cellIndex, repeat: 0, status: 'oom', reason: verdict.reason, backend: null, wallMs: 0, measurements: null, reachedBytes: verdict.reachedBytes, gpuPeakBytes: null, attempts: 1 };
    } else {
      if (signal?.aborted) throw new Interrupted();
      const slot = freeSlots.shift()!;
      try {
        record = await runInWorker(run, { ...spawnOptions, signal, env: { ...env, ...slotEnv?.(slot), MPX_SLOT: String(slot) } });
      } finally {
        freeSlots.push(slot);
        freeSlots.sort((a, b) => a - b);
      }
    }
    if (!isStoredRecord(record)) throw new Interrupted();
    onRecord(record, run);
    return { record, isReused: false };
  };

  const search = async (cell: CapacityCell): Promise<void> => {
    const metric = searchMetric(plan.capacity.metric, cell.backend);
    const probeRecords: StoredRecord[] = [];
    const result = await searchCapacity(microBatchRange(plan.capacity, cell.accumulationSteps), plan.capacity.budgetBytes, async (microBatchSize) => {
      const { record, isReused } = await execute(capacityRun(spec, cell, microBatchSize, 'probe'));
      probeRecords.push(record);
      const bytes = metricValue(record, metric);
      const outcome: ProbeOutcome =
        record.status === 'ok' && bytes === null
          ? { status: 'failed', bytes: null, reachedBytes: null, reason: `the engine (${record.backend ?? '?'}) has no ${metric}` }
          : { status: record.status, bytes, reachedBytes: record.reachedBytes, reason: record.reason };
      onProbe?.(cell, microBatchSize, outcome, isReused);
      return outcome;
    });
    let confirm: StoredRecord | null = null;
    if (result.status === 'ok' && result.maxMicroBatchSize !== null && plan.capacity.confirmSteps > 0) {
      confirm = (await execute(capacityRun(spec, cell, result.maxMicroBatchSize, 'confirm'))).record;
    }
    const done: FinishedSearch = { cell, result, probeRecords, confirm };
    finished.push(done);
    onSearch?.(done);
  };

  const tasks = plan.cells.map((cell) =>
    queue.add(() =>
      search(cell).catch((error: unknown) => {
        if (error instanceof Interrupted) return;
        throw error;
      }),
    ),
  );
  try {
    await Promise.all(tasks);
  } catch (error) {
    queue.clear();
    throw error;
  }
  return finished.sort((a, b) => a.cell.index - b.cell.index);
}
