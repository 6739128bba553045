/**
 * The cells of a capacity spec (`capacity:`) and the runs its search makes. A capacity cell is a matrix cell without a
 * batch size — model × policy × accumulation steps × backend — because the batch size is what is searched. Each probe
 * is an ordinary RunConfig with `train.steps: 0` (the worker measures one update's memory and trains nothing) at one
 * micro batch; the confirmation is a short training run at the batch found. Pure: ids are content hashes, as for
 * every run, so a re-run reuses recorded probes.
 */
import { throwIfProblems, type SpecProblem } from '../spec/locator.js';
import type { BackendChoice, CapacityDef, ExperimentSpec, Policy } from '../spec/types.js';
import { expandMatrixTraced } from './expand.js';
import { sourcePath } from './plan.js';
import { canonicalJson, cellDocument, cellIdFromDigest, hashRun, sha256Hex } from './run-id.js';
import type { RunConfig } from './types.js';

/** One search: the largest batch of this model, policy, accumulation and engine that fits the budget. */
export interface CapacityCell {
  /** 0-based position in matrix order (rows of the capacity CSV follow it). */
  index: number;
  /** Content hash of the cell and the search settings: a changed budget or range is a different search. */
  cellId: string;
  model: string;
  policy: Policy;
  accumulationSteps: number;
  backend: BackendChoice;
}

export interface CapacityPlan {
  specName: string;
  capacity: CapacityDef;
  cells: CapacityCell[];
}

/** What a capacity run does: measure one update's memory, or train `confirmSteps` steps. */
export type CapacityRunKind = 'probe' | 'confirm';

/** Expands a capacity spec's matrix into its searches (matrix order; duplicates of one search merged). */
export function planCapacity(spec: ExperimentSpec): CapacityPlan {
  const capacity = spec.capacity;
  if (capacity === null) throw new Error(`planCapacity: spec ${spec.name} has no capacity section (this is a bug)`);
  const traced = expandMatrixTraced(spec.matrix, spec.defaults);
  if (traced.length === 0) {
    throwIfProblems([{ path: ['matrix'], message: 'matrix expands to no cells', hint: 'give the matrix an axis (model, policy, accumulationSteps, backend) or an include entry' }]);
  }
  const usesTorch = traced.some((t) => t.axes.backend === 'torch');
  if (usesTorch && (capacity.metric === 'peak_modeled_bytes' || capacity.metric === 'peak_tf_modeled_bytes')) {
    throwIfProblems([
      {
        path: ['capacity', 'metric'],
        message: `capacity.metric ${capacity.metric} is modeled on the tfjs engines only; a torch cell measures peak_bytes`,
        hint: 'use metric: auto (peak_bytes on torch, peak_tf_modeled_bytes on tfjs) or peak_bytes',
      },
    ]);
  }
  // A search probes micro batches × accumulation steps; a range holding no multiple of them would be left at once.
  const emptyRanges = new Map<string, SpecProblem>();
  for (const { axes, sources } of traced) {
    const k = axes.accumulationSteps;
    const { min, max } = microBatchRange(capacity, k);
    if (min <= max) continue;
    const path = sourcePath('accumulationSteps', sources.accumulationSteps);
    emptyRanges.set(JSON.stringify(path), {
      path,
      message: `no multiple of accumulationSteps ${k} lies in capacity.batchSize (${capacity.minBatchSize} to ${capacity.maxBatchSize}): the effective batch is a micro batch × ${k}`,
      hint: `widen capacity.batchSize to include a multiple of ${k}, or remove accumulationSteps ${k}`,
    });
  }
  throwIfProblems([...emptyRanges.values()]);
  const cells: CapacityCell[] = [];
  const seen = new Set<string>();
  for (const { axes } of traced) {
    const model = spec.models[axes.model]!;
    const document = cellDocument({ model, data: spec.data, train: spec.train, seed: spec.seed, policy: axes.policy, batchSize: 0, accumulationSteps: axes.accumulationSteps, backend: axes.backend });
    const cellId = cellIdFromDigest(sha256Hex(canonicalJson({ cell: document, capacity })));
    if (seen.has(cellId)) continue;
    seen.add(cellId);
    cells.push({ index: cells.length, cellId, model: axes.model, policy: axes.policy, accumulationSteps: axes.accumulationSteps, backend: axes.backend });
  }
  return { specName: spec.name, capacity, cells };
}

/** The micro batches a search may try: the effective range divided by the accumulation steps. */
export function microBatchRange(capacity: CapacityDef, accumulationSteps: number): { min: number; max: number } {
  return { min: Math.max(1, Math.ceil(capacity.minBatchSize / accumulationSteps)), max: Math.floor(capacity.maxBatchSize / accumulationSteps) };
}

/**
 * The run of `cell` at `microBatchSize`: a probe (no training, memory only, stopped once it passes twice the budget:
 * far enough above to measure the whole peak of a batch just over the boundary) or the confirmation.
 */
export function capacityRun(spec: ExperimentSpec, cell: CapacityCell, microBatchSize: number, kind: CapacityRunKind): RunConfig {
  const capacity = spec.capacity!;
  const model = spec.models[cell.model]!;
  const steps = kind === 'probe' ? 0 : capacity.confirmSteps;
  const train = { ...spec.train, steps, warmupSteps: Math.min(1, Math.max(0, steps - 1)) };
  const batchSize = microBatchSize * cell.accumulationSteps;
  const resolved = { model, data: spec.data, train, seed: spec.seed, policy: cell.policy, batchSize, accumulationSteps: cell.accumulationSteps, backend: cell.backend };
  const memoryLimitBytes = 2 * capacity.budgetBytes;
  return {
    // The limit is part of the id here: a probe stopped at one limit says nothing about a larger one.
    runId: cellIdFromDigest(sha256Hex(canonicalJson({ run: hashRun(resolved, 0), memoryLimitBytes }))),
    cellId: cell.cellId,
    cellIndex: cell.index,
    specName: spec.name,
    repeat: 0,
    seed: spec.seed,
    backend: cell.backend,
    model,
    data: spec.data,
    train,
    policy: cell.policy,
    batchSize,
    microBatchSize,
    accumulationSteps: cell.accumulationSteps,
    memoryLimitBytes,
  };
}
