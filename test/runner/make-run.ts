import { fileURLToPath } from 'node:url';
import type { RunConfig } from '../../src/matrix/types.js';

/** Path of a fake worker in test/fixtures/workers. */
export function fakeWorker(name: string): string {
  return fileURLToPath(new URL(`../fixtures/workers/${name}.mjs`, import.meta.url));
}

/** A small, well-formed RunConfig; `id` becomes runId and cellId. */
export function makeRun(id: string, overrides: Partial<RunConfig> = {}): RunConfig {
  return {
    runId: `run-${id}`,
    cellId: `cell-${id}`,
    cellIndex: 0,
    specName: 'test',
    repeat: 0,
    seed: 1,
    backend: 'cpu',
    model: {
      name: 'mlp',
      preset: 'mlp',
      input: [4],
      classes: 2,
      layers: [{ type: 'dense', units: 2, activation: 'softmax', useBias: true }],
    },
    data: { kind: 'synthetic', samples: 64, evalSamples: 16, noise: 0.1 },
    train: {
      steps: 5,
      warmupSteps: 1,
      optimizer: { name: 'sgd', learningRate: 0.01, momentum: 0 },
      lossScale: 'none',
      timeoutSeconds: 30,
      retries: 0,
    },
    policy: 'mixed_float16',
    batchSize: 128,
    microBatchSize: 32,
    accumulationSteps: 4,
    ...overrides,
  };
}
