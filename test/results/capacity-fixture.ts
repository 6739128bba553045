/**
 * Capacity searches for the results tests: a capacity spec (mlp, cnn × float32, mixed_float16 × accumulation 1, 4 on
 * cpu) and searches run by the real search over memory curves given per cell, each probe a StoredRecord with the
 * run id `mpx run` would give it. Figures are chosen so every CSV column holds them exactly.
 */
import { capacityRun, microBatchRange, planCapacity, type CapacityCell, type CapacityPlan } from '../../src/matrix/capacity.js';
import type { FinishedSearch } from '../../src/results/capacity.js';
import { searchCapacity } from '../../src/runner/capacity-search.js';
import type { RecordedStatus, RunMeasurements, StoredRecord } from '../../src/runner/protocol.js';
import type { CapacityDef, ExperimentSpec } from '../../src/spec/types.js';
import { capacityDef, experimentSpec, measurements } from '../helpers/builders.js';

export function capacitySpec(capacity: Partial<CapacityDef> = {}, backends: ExperimentSpec['defaults']['backend'][] = ['cpu']): ExperimentSpec {
  return experimentSpec({
    name: 'cap',
    repeats: 1,
    capacity: capacityDef(capacity),
    matrix: {
      model: ['mlp', 'cnn'],
      policy: ['float32', 'mixed_float16'],
      accumulationSteps: [1, 4],
      backend: backends,
      axisOrder: ['model', 'policy', 'accumulationSteps', 'backend'],
      include: [],
      exclude: [],
    },
  });
}

/** What a probe at one micro batch gives: its peak in every metric, or a run that did not end ok. */
export type ProbeFigure = number | { status: Exclude<RecordedStatus, 'ok'>; reason: string; reachedBytes?: number };

/**
 * The record of a capacity run of `cell`: ok ones carry `bytes` as peak_tf_modeled_bytes and peak_modeled_bytes and
 * twice that as peak_bytes, so a row shows which metric it used.
 */
export function capacityRecord(spec: ExperimentSpec, cell: CapacityCell, microBatchSize: number, kind: 'probe' | 'confirm', figure: ProbeFigure, m: Partial<RunMeasurements> = {}): StoredRecord {
  const run = capacityRun(spec, cell, microBatchSize, kind);
  const backend = cell.backend === 'auto' ? 'cpu' : cell.backend;
  const base = { runId: run.runId, cellId: cell.cellId, cellIndex: cell.index, repeat: 0, backend, wallMs: 500, gpuPeakBytes: null, attempts: 1 } as const;
  if (typeof figure !== 'number') return { ...base, status: figure.status, reason: figure.reason, measurements: null, reachedBytes: figure.reachedBytes ?? null };
  return {
    ...base,
    status: 'ok',
    reason: null,
    measurements: measurements({ backend, steps: run.train.steps, peakTfModeledBytes: figure, peakModeledBytes: figure, peakBytes: 2 * figure, ...m }),
    reachedBytes: null,
  };
}

export interface SearchCurve {
  /** The probe's figure at a micro batch. */
  peak: (microBatchSize: number) => ProbeFigure;
  /** The confirmation's figure (default: the peak at the max, training at `samplesPerSecond` 1234); null: none made. */
  confirm?: ProbeFigure | null;
}

/** Searches `cell` over `curve` with the real search, recording each probe as `mpx run` would. */
export async function finishedSearch(spec: ExperimentSpec, cell: CapacityCell, curve: SearchCurve): Promise<FinishedSearch> {
  const capacity = spec.capacity!;
  const probeRecords: StoredRecord[] = [];
  const metric = capacity.metric === 'auto' ? (cell.backend === 'torch' ? 'peakBytes' : 'peakTfModeledBytes') : capacity.metric === 'peak_bytes' ? 'peakBytes' : 'peakModeledBytes';
  const result = await searchCapacity(microBatchRange(capacity, cell.accumulationSteps), capacity.budgetBytes, (microBatchSize) => {
    const record = capacityRecord(spec, cell, microBatchSize, 'probe', curve.peak(microBatchSize));
    probeRecords.push(record);
    return { status: record.status, bytes: record.measurements?.[metric] ?? null, reachedBytes: record.reachedBytes, reason: record.reason };
  });
  const max = result.maxMicroBatchSize;
  let confirm: StoredRecord | null = null;
  if (result.status === 'ok' && max !== null && curve.confirm !== null) {
    confirm = capacityRecord(spec, cell, max, 'confirm', curve.confirm ?? curve.peak(max), { samplesPerSecond: 1234, stepMsMedian: 12.5 });
  }
  return { cell, result, probeRecords, confirm };
}

export const linear = (fixedBytes: number, bytesPerSample: number) => (m: number) => fixedBytes + bytesPerSample * m;

/** The plan of `spec` and its searches, one curve per cell (by `model policy acc backend`), in cell order. */
export async function searchAll(spec: ExperimentSpec, curves: Record<string, SearchCurve>): Promise<{ plan: CapacityPlan; searches: FinishedSearch[] }> {
  const plan = planCapacity(spec);
  const searches: FinishedSearch[] = [];
  for (const cell of plan.cells) {
    const curve = curves[cellKey(cell)];
    if (curve !== undefined) searches.push(await finishedSearch(spec, cell, curve));
  }
  return { plan, searches };
}

export const cellKey = (cell: Pick<CapacityCell, 'model' | 'policy' | 'accumulationSteps' | 'backend'>): string => `${cell.model} ${cell.policy} ${cell.accumulationSteps} ${cell.backend}`;
