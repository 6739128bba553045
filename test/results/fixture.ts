/** A fixed plan and its records, covering every status, repeats with spread, a mixed policy with loss scaling. */
import type { Cell, Plan, RunConfig } from '../../src/matrix/types.js';
import type { RunMeasurements, RunRecord, RunStatus } from '../../src/runner/protocol.js';
import type { BackendName, CellAxes } from '../../src/spec/types.js';

const REPEATS = 3;

const axes: CellAxes[] = [
  { model: 'mlp', batchSize: 64, policy: 'float32', accumulationSteps: 1 },
  { model: 'mlp', batchSize: 64, policy: 'mixed_float16', accumulationSteps: 1 },
  { model: 'mlp', batchSize: 256, policy: 'mixed_float16', accumulationSteps: 4 },
  { model: 'cnn', batchSize: 64, policy: 'float32', accumulationSteps: 1 },
  { model: 'cnn', batchSize: 512, policy: 'mixed_bfloat16', accumulationSteps: 1 },
  { model: 'cnn', batchSize: 512, policy: 'float32', accumulationSteps: 4 },
  { model: 'cnn', batchSize: 64, policy: 'mixed_float16', accumulationSteps: 1 },
  { model: 'cnn', batchSize: 128, policy: 'float32', accumulationSteps: 1 },
];

export const cells: Cell[] = axes.map((a, index) => ({
  ...a,
  index,
  cellId: `c${index}${'0'.repeat(11)}`,
  microBatchSize: a.batchSize / a.accumulationSteps,
}));

const runs: RunConfig[] = cells.flatMap((cell) =>
  Array.from({ length: REPEATS }, (_, repeat) => ({
    runId: `${cell.cellId}-r${repeat}`,
    cellId: cell.cellId,
    cellIndex: cell.index,
    specName: 'golden',
    repeat,
    seed: 1234 + repeat,
    backend: 'auto' as const,
    model: { name: cell.model, preset: null, input: [784], classes: 10, layers: [] },
    data: { kind: 'synthetic' as const, samples: 256, evalSamples: 64, noise: 0.5 },
    train: {
      steps: 10,
      warmupSteps: 2,
      optimizer: { name: 'adam' as const, learningRate: 0.001, momentum: 0 },
      lossScale: 'dynamic' as const,
      timeoutSeconds: 60,
    },
    policy: cell.policy,
    batchSize: cell.batchSize,
    microBatchSize: cell.microBatchSize,
    accumulationSteps: cell.accumulationSteps,
  })),
);

export const plan: Plan = { specName: 'golden', cells, runs };

function measured(overrides: Partial<RunMeasurements>): RunMeasurements {
  return {
    backend: 'cpu',
    precision: 'native',
    paramCount: 669_706,
    steps: 10,
    stepMsMedian: 12.5,
    samplesPerSecond: 5120,
    initialLoss: 2.302585093,
    finalLoss: 0.4123456789,
    evalAccuracy: 0.875,
    lossScaleFinal: null,
    skippedSteps: 0,
    paramsBytes: 2_678_824,
    gradsBytes: 2_678_824,
    optimizerBytes: 5_357_648,
    accumulatorBytes: 0,
    activationsPeakBytes: 384_000,
    peakBytes: 8_421_376,
    restingBytes: 8_036_352,
    peakModeledBytes: 8_229_376,
    activationsPeakModeledBytes: 192_000,
    rssPeakBytes: 187_654_144,
    wasmHeapBytes: null,
    ...overrides,
  };
}

function record(
  cellIndex: number,
  repeat: number,
  status: RunStatus,
  options: { backend?: BackendName | null; reason?: string; m?: Partial<RunMeasurements>; reachedBytes?: number; gpuPeakBytes?: number } = {},
): RunRecord {
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
    measurements: status === 'ok' ? measured({ ...(backend ? { backend } : {}), ...options.m }) : null,
    reachedBytes: options.reachedBytes ?? null,
    gpuPeakBytes: options.gpuPeakBytes ?? null,
    attempts: 1,
  };
}

export const records: RunRecord[] = [
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
