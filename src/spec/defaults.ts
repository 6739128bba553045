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
  tokens: { vocab: 1000 },
  train: {
    steps: 30,
    warmupSteps: 3,
    optimizer: { name: 'adam', learningRate: 0.001, momentum: 0.9 },
    lossScale: 'dynamic',
    timeoutSeconds: 600,
    retries: 0,
  },
  /** Keras 3 AdamW's weight_decay; RMSprop's rho, momentum (0: no momentum slot) and centered. */
  adamw: { weightDecay: 0.004 },
  rmsprop: { rho: 0.9, momentum: 0, centered: false },
  defaults: { batchSize: 32, policy: 'float32', accumulationSteps: 1 },
  capacity: { metric: 'auto', batchSize: { min: 1, max: 65536 }, confirmSteps: 3, margin: 0.05 },
  mlp: { input: [784], hidden: [512, 512], classes: 10 },
  cnn: { input: [28, 28, 1], filters: [16, 32], kernelSize: 3, dense: [64], classes: 10 },
  transformer: { vocab: 1000, length: 64, width: 64, heads: 4, blocks: 2, ffnPerWidth: 4, dropout: 0, causal: false, classes: 10 },
  resnet: { input: [32, 32, 3], filters: [16, 32, 64], blocks: 2, classes: 10 },
  layer: { activation: 'linear', useBias: true, strides: 1, padding: 'valid', poolSize: 2 },
  /** Keras 3's defaults: LayerNormalization(epsilon=1e-3), BatchNormalization(momentum=0.99, epsilon=1e-3), MultiHeadAttention(dropout=0, use_bias=True). */
  layerNormalization: { epsilon: 1e-3 },
  batchNormalization: { momentum: 0.99, epsilon: 1e-3 },
  multiHeadAttention: { dropout: 0, causal: false, useBias: true },
} as const;

