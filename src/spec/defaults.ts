/**
 * Every default of the YAML, in one place. `schemas/experiment.schema.json` documents the same values; a test keeps
 * the two equal.
 */
export const SPEC_DEFAULTS = {
  description: '',
  seed: 1,
  repeats: 1,
  backend: 'auto',
  maxRuns: 500,
  data: { kind: 'synthetic', samples: 2048, evalSamples: 512, noise: 1.0 },
  train: {
    steps: 30,
    warmupSteps: 3,
    optimizer: { name: 'adam', learningRate: 0.001, momentum: 0.9 },
    lossScale: 'dynamic',
    timeoutSeconds: 600,
    retries: 0,
  },
  defaults: { batchSize: 32, policy: 'float32', accumulationSteps: 1 },
  capacity: { metric: 'auto', batchSize: { min: 1, max: 65536 }, confirmSteps: 3, margin: 0.05 },
  mlp: { input: [784], hidden: [512, 512], classes: 10 },
  cnn: { input: [28, 28, 1], filters: [16, 32], kernelSize: 3, dense: [64], classes: 10 },
  layer: { activation: 'linear', useBias: true, strides: 1, padding: 'valid', poolSize: 2 },
} as const;

