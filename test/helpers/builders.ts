/**
 * The one place tests write RunConfig and ExperimentSpec literals by hand. Tests that want what a real spec expands
 * to go through the loader and planner instead (`test/worker/make-run.ts`).
 */
import type { RunConfig } from '../../src/matrix/types.js';
import type { MachineFacts } from '../../src/results/metadata.js';
import type { RunMeasurements } from '../../src/runner/protocol.js';
import type { CapacityDef, ExperimentSpec, ModelDef, TrainDef } from '../../src/spec/types.js';

/** A two-layer MLP on 8 inputs; `units` sizes the hidden layer. */
export function mlpModel(name = 'mlp', units = 32): ModelDef {
  return {
    name,
    preset: null,
    input: [8],
    classes: 2,
    layers: [
      { type: 'dense', units, activation: 'relu', useBias: true },
      { type: 'dense', units: 2, activation: 'softmax', useBias: true },
    ],
  };
}

export const TRAIN: TrainDef = {
  steps: 5,
  warmupSteps: 1,
  optimizer: { name: 'sgd', learningRate: 0.01, momentum: 0 },
  lossScale: 'none',
  timeoutSeconds: 30,
  retries: 0,
};

/** A small, well-formed RunConfig; `id` becomes `run-<id>` and `cell-<id>`. */
export function runConfig(id: string, overrides: Partial<RunConfig> = {}): RunConfig {
  return {
    runId: `run-${id}`,
    cellId: `cell-${id}`,
    cellIndex: 0,
    specName: 'test',
    repeat: 0,
    seed: 1,
    backend: 'auto',
    model: { name: 'mlp', preset: 'mlp', input: [4], classes: 2, layers: [{ type: 'dense', units: 2, activation: 'softmax', useBias: true }] },
    data: { kind: 'synthetic', samples: 64, evalSamples: 16, noise: 0.1 },
    train: TRAIN,
    policy: 'mixed_float16',
    batchSize: 128,
    microBatchSize: 32,
    accumulationSteps: 4,
    memoryLimitBytes: null,
    ...overrides,
  };
}

/** A resolved spec as the loader returns it, with two MLPs (`mlp`, `cnn`) and a matrix to fill in. */
export function experimentSpec(overrides: Partial<ExperimentSpec> & Pick<ExperimentSpec, 'matrix'>): ExperimentSpec {
  return {
    file: 'experiments/a.yaml',
    sha256: '0'.repeat(64),
    name: 'a',
    description: '',
    seed: 7,
    repeats: 2,
    backend: 'cpu',
    data: { kind: 'synthetic', samples: 64, evalSamples: 16, noise: 0.1 },
    train: { ...TRAIN, steps: 2, optimizer: { name: 'sgd', learningRate: 0.1, momentum: 0 }, lossScale: 'dynamic', timeoutSeconds: 60 },
    models: { mlp: mlpModel('mlp'), cnn: mlpModel('cnn', 64) },
    defaults: { model: 'mlp', batchSize: 32, policy: 'float32', accumulationSteps: 1, backend: 'cpu' },
    maxRuns: 500,
    memoryLimitBytes: null,
    capacity: null,
    ...overrides,
  };
}

/** What an ok run of the golden fixture measured; `overrides` change single values. */
export function measurements(overrides: Partial<RunMeasurements> = {}): RunMeasurements {
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
    peakTfModeledBytes: 3_200_000,
    activationsPeakTfModeledBytes: 96_000,
    peakTorchModeledBytes: 3_300_000,
    reservedPeakBytes: null,
    rssPeakBytes: 187_654_144,
    wasmHeapBytes: null,
    engine: { device: 'cpu', deviceName: 'Test CPU', memoryMethod: 'tensor ledger' },
    ...overrides,
  };
}


/** A capacity section as the loader resolves it: a 1 MB budget over effective batches 4 to 1024. */
export function capacityDef(overrides: Partial<CapacityDef> = {}): CapacityDef {
  return { budgetBytes: 1_000_000, metric: 'auto', minBatchSize: 4, maxBatchSize: 1024, confirmSteps: 1, margin: 0.05, ...overrides };
}

/** The machine facts of a results directory's metadata, fixed for tests; `overrides` change single facts. */
export function machineFacts(overrides: Partial<MachineFacts> = {}): MachineFacts {
  return {
    mpxVersion: '0.1.0',
    nodeVersion: 'v20.20.2',
    tfjsVersions: {},
    os: { platform: 'linux', release: '6.8.0', arch: 'x64' },
    cpus: [{ model: 'Test CPU' }],
    gpus: [],
    provenance: null,
    ...overrides,
  };
}
