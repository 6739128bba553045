import type { BackendChoice, CellAxes, DataDef, ModelDef, TrainDef } from '../spec/types.js';

/** One cell of the expanded matrix, in matrix order. */
export interface Cell extends CellAxes {
  /** 0-based position in matrix order (rows of the CSV follow it). */
  index: number;
  /** Content hash of the fully resolved cell (everything but the repeat index); stable across reorderings. */
  cellId: string;
  /** batchSize / accumulationSteps, always a whole number (validated). */
  microBatchSize: number;
}

/** Everything a worker needs for one run: self-contained, JSON-serialisable, sent in the `start` message. */
export interface RunConfig {
  /** Content hash of the resolved cell plus repeat index. */
  runId: string;
  cellId: string;
  cellIndex: number;
  specName: string;
  repeat: number;
  seed: number;
  backend: BackendChoice;
  model: ModelDef;
  data: DataDef;
  train: TrainDef;
  policy: CellAxes['policy'];
  batchSize: number;
  microBatchSize: number;
  accumulationSteps: number;
  /**
   * Memory budget for the policy's (modeled) bytes, from the spec's `memoryLimit`; null = none. Not part of the run
   * id: it decides whether a run stops as `oom`, not what an ok run measures.
   */
  memoryLimitBytes: number | null;
}

export interface Plan {
  specName: string;
  cells: Cell[];
  runs: RunConfig[];
}
