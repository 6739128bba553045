/** Small models that use every layer family, for the worker and torch tests (fast on cpu too). */
export const IMAGE_FAMILIES = `
name: images
seed: 21
data: { kind: synthetic, samples: 128, evalSamples: 64 }
train: { steps: 30, warmupSteps: 1, optimizer: { name: adam, learningRate: 0.01 } }
models:
  images:
    input: [8, 8, 2]
    layers:
      - conv2d: { filters: 4, kernelSize: 3, padding: same, activation: gelu, id: stem }
      - batchNormalization: { id: norm }
      - conv2d: { filters: 4, kernelSize: 3, padding: same, useBias: false }
      - add: { inputs: [norm, conv2d_out], id: residual }
      - averagePooling2d: { poolSize: 3, strides: 2, padding: same, id: avg }
      - maxPooling2d: { poolSize: 2, inputs: [stem], id: max }
      - concatenate: { inputs: [avg, max] }
      - globalAveragePooling2d:
      - dense: { units: 4 }
      - activation: { name: softmax, dtype: float32 }
matrix: { batchSize: [16] }
`.replace('useBias: false }', 'useBias: false, id: conv2d_out }');

export const SEQUENCE_FAMILIES = (options: { dropout?: number; causal?: boolean; optimizer?: string } = {}) => `
name: sequences
seed: 22
data: { kind: tokens, vocab: 40, length: 12, samples: 128, evalSamples: 64 }
train: { steps: 30, warmupSteps: 1, optimizer: { name: ${options.optimizer ?? 'adam'}, learningRate: 0.01 } }
models:
  sequences:
    input: [12]
    layers:
      - embedding: { vocab: 40, units: 16, id: tokens }
      - layerNormalization: {}
      - multiHeadAttention: { heads: 2, keySize: 8, dropout: ${options.dropout ?? 0}, causal: ${options.causal ?? false}, id: attention }
      - add: { inputs: [tokens, attention], id: residual }
      - conv1d: { filters: 8, kernelSize: 3, padding: same, activation: relu, inputs: [tokens], id: local }
      - dense: { units: 16, activation: gelu, inputs: [residual] }
      - concatenate: { inputs: [dense_out, local] }
      - globalAveragePooling1d:
      - dense: { units: 4 }
matrix: { batchSize: [16] }
`.replace('activation: gelu, inputs', 'activation: gelu, id: dense_out, inputs');
