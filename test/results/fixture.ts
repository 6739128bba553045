/** A fixed plan and its records, covering every status, repeats with spread, a mixed policy with loss scaling. */
import type { Cell, Plan, RunConfig } from '../../src/matrix/types.js';
import type { RecordedStatus, RunMeasurements, StoredRecord } from '../../src/runner/protocol.js';
import type { BackendName, CellAxes } from '../../src/spec/types.js';
import { measurements, runConfig } from '../helpers/builders.js';

const REPEATS = 3;

const axes: CellAxes[] = [
  { model: 'mlp', batchSize: 64, policy: 'float32', accumulationSteps: 1, backend: 'auto' },
  { model: 'mlp', batchSize: 64, policy: 'mixed_float16', accumulationSteps: 1, backend: 'auto' },
  { model: 'mlp', batchSize: 256, policy: 'mixed_float16', accumulationSteps: 4, backend: 'auto' },
  { model: 'cnn', batchSize: 64, policy: 'float32', accumulationSteps: 1, backend: 'auto' },
  { model: 'cnn', batchSize: 512, policy: 'mixed_bfloat16', accumulationSteps: 1, backend: 'auto' },
  { model: 'cnn', batchSize: 512, policy: 'float32', accumulationSteps: 4, backend: 'auto' },
  { model: 'cnn', batchSize: 64, policy: 'mixed_float16', accumulationSteps: 1, backend: 'auto' },
  { model: 'cnn', batchSize: 128, policy: 'float32', accumulationSteps: 1, backend: 'auto' },
];

export const cells: Cell[] = axes.map((a, index) => ({
  ...a,
  index,
  cellId: `c${index}${'0'.repeat(11)}`,
  microBatchSize: a.batchSize / a.accumulationSteps,
}));

const runs: RunConfig[] = cells.flatMap((cell) =>
  Array.from({ length: REPEATS }, (_, repeat) =>
    runConfig(cell.cellId, {
      runId: `${cell.cellId}-r${repeat}`,
      cellId: cell.cellId,
      cellIndex: cell.index,
      specName: 'golden',
      repeat,
      backend: 'auto',
      model: { name: cell.model, preset: null, input: [784], classes: 10, layers: [] },
      policy: cell.policy,
      batchSize: cell.batchSize,
      microBatchSize: cell.microBatchSize,
      accumulationSteps: cell.accumulationSteps,
    }),
  ),
);

export const plan: Plan = { specName: 'golden', cells, runs };

function record(
  cellIndex: number,
  repeat: number,
  status: RecordedStatus,
  options: { backend?: BackendName | null; reason?: string; m?: Partial<RunMeasurements>; reachedBytes?: number; gpuPeakBytes?: number } = {},
): StoredRecord {
  const cell = cells[cellIndex]!;
  const backend = options.backend === undefined ? 'cpu' : options.backend;
  return {
    runId: `${cell.cellId}-r${repeat}`,
    cellId: cell.cellId,
    cellIndex,
    repeat,
    status,
    reason: status === 'ok' ? null : (options.reason ?? `${status} without details`),
    backend,
    wallMs: 1000 + cellIndex * 10 + repeat,
    measurements: status === 'ok' ? measurements({ ...(backend ? { backend } : {}), ...options.m }) : null,
    reachedBytes: options.reachedBytes ?? null,
    gpuPeakBytes: options.gpuPeakBytes ?? null,
    attempts: 1,
  };
}

export const records: StoredRecord[] = [
  // 0: three ok repeats with spread in time and loss.
  record(0, 0, 'ok', { m: { stepMsMedian: 12.5, finalLoss: 0.4123456789, rssPeakBytes: 187_654_144 } }),
  record(0, 1, 'ok', { m: { stepMsMedian: 13.75, finalLoss: 0.4129, rssPeakBytes: 188_000_000 } }),
  record(0, 2, 'ok', { m: { stepMsMedian: 12.0625, finalLoss: 0.41, rssPeakBytes: 187_000_000 } }),
  // 1: mixed policy, emulated on wasm, dynamic loss scale, skipped steps.
  ...[0, 1, 2].map((repeat) =>
    record(1, repeat, 'ok', {
      backend: 'wasm',
      m: {
        precision: 'emulated',
        stepMsMedian: 30.1 + repeat,
        samplesPerSecond: 2126.246 - repeat * 70,
        finalLoss: 0.4151 + repeat * 0.0001,
        lossScaleFinal: repeat === 1 ? 16384 : 32768,
        skippedSteps: repeat === 2 ? 3 : 2,
        wasmHeapBytes: 33_554_432 + repeat * 65_536,
      },
    }),
  ),
  // 2: one repeat failed (reason with comma, quotes and a stack), backends disagree.
  record(2, 0, 'ok', { backend: 'tensorflow', gpuPeakBytes: 1_048_576_000, m: { stepMsMedian: 8.000123, lossScaleFinal: 65536 } }),
  record(2, 1, 'failed', {
    backend: 'cpu',
    reason: 'Error: Kernel "Cast" not registered for backend cpu, dtype float16\n    at runKernel (engine.js:1)',
  }),
  record(2, 2, 'ok', { backend: 'cpu', m: { stepMsMedian: 9.5, lossScaleFinal: 65536 } }),
  // 3: every repeat timed out.
  ...[0, 1, 2].map((repeat) => record(3, repeat, 'timeout', { reason: 'no result within 60 s (step 4/10)' })),
  // 4: over the memory budget twice, one ok.
  record(4, 0, 'oom', { reason: 'measured 2.1 GiB > budget 2 GiB at step 1', reachedBytes: 2_254_857_830 }),
  record(4, 1, 'ok', { m: { precision: 'emulated', peakBytes: 2_000_000_000, initialLoss: 2.30258, finalLoss: 1.9 } }),
  record(4, 2, 'oom', { reason: 'measured 2.2 GiB > budget 2 GiB at step 1', reachedBytes: 2_362_232_012 }),
  // 5: crashed, oom and timeout: crashed is the worst.
  record(5, 0, 'oom', { reason: 'over budget' }),
  record(5, 1, 'crashed', { backend: null, reason: 'Worker exited unexpectedly with signal SIGSEGV during setup' }),
  record(5, 2, 'timeout', { reason: 'no result within 60 s' }),
  // 6: unfinished cell (1 of 3 recorded), diverged loss.
  record(6, 0, 'ok', { m: { finalLoss: Number.NaN, evalAccuracy: 0.1, lossScaleFinal: 1, skippedSteps: 10 } }),
  // 7: no records yet: no row.
];
