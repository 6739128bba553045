/**
 * The PyTorch engine against the tfjs engine on the same RunConfig: the same data (src/worker/data.ts), the same
 * initial weights and function (src/worker/model.ts), the same initial loss (src/worker/train.ts), the same loss-scale
 * rules (src/worker/precision/loss-scale.ts). The tfjs side runs in-process on the cpu backend.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunConfig } from '../../../src/matrix/types.js';
import { startBackend } from '../../../src/worker/backend.js';
import { buildDataset } from '../../../src/worker/data.js';
import { buildModel } from '../../../src/worker/model.js';
import { LossScaler } from '../../../src/worker/precision/loss-scale.js';
import { createRandom } from '../../../src/worker/random.js';
import { tf } from '../../../src/worker/tfjs.js';
import { Trainer } from '../../../src/worker/train.js';
import { IMAGE_FAMILIES, SEQUENCE_FAMILIES } from '../families.js';
import { makeRun, makeRuns, tinySpec } from '../make-run.js';
import { MNIST_DIR, pythonSnippet, torchPython } from './python.js';

/** Odd shapes on purpose: TensorFlow's asymmetric `same` padding (even kernel, stride 2), `same` pooling, a softmax
 * over conv channels, and a flattened image as the model's output (class order back to NHWC). */
const EDGE_MODELS = `
name: edges
seed: 11
data: { kind: synthetic, samples: 64, evalSamples: 16 }
train: { steps: 3, warmupSteps: 1, optimizer: { name: adam, learningRate: 0.01 } }
models:
  odd:
    input: [9, 11, 2]
    layers:
      - conv2d: { filters: 3, kernelSize: [2, 3], strides: [2, 1], padding: same, activation: relu }
      - maxPooling2d: { poolSize: 3, strides: 2, padding: same }
      - conv2d: { filters: 4, kernelSize: 2, padding: same, activation: tanh }
      - flatten: {}
      - dropout: { rate: 0.2 }
      - dense: { units: 5, activation: sigmoid }
      - dense: { units: 3 }
  flat-output:
    input: [4, 4, 2]
    layers:
      - conv2d: { filters: 2, kernelSize: 3, padding: same, activation: softmax }
      - maxPooling2d: { poolSize: 2 }
      - conv2d: { filters: 3, kernelSize: 1 }
      - flatten: {}
matrix:
  model: [odd, flat-output]
`;

const PRESETS = {
  transformer: ['{ preset: transformer, width: 16, heads: 2, blocks: 1, classes: 3 }', '{ kind: tokens, vocab: 30, length: 10, samples: 64, evalSamples: 16 }'],
  resnet: ['{ preset: resnet, input: [6, 6, 2], filters: [4, 8], blocks: 1, classes: 3 }', '{ kind: synthetic, samples: 64, evalSamples: 16 }'],
};
const preset = (name: keyof typeof PRESETS) => `
name: presets
seed: 31
data: ${PRESETS[name][1]}
train: { steps: 3, warmupSteps: 1, optimizer: { name: adam, learningRate: 0.01 } }
models:
  ${name}: ${PRESETS[name][0]}
matrix: { batchSize: [8] }
`;

const MNIST_RUN = `
name: digits
seed: 2025
data: { kind: mnist, samples: 300, evalSamples: 40 }
train: { steps: 3, warmupSteps: 1, optimizer: { name: adam, learningRate: 0.001 } }
models:
  cnn: { preset: cnn, input: [28, 28, 1], filters: [4], kernelSize: 3, dense: [8], classes: 10 }
matrix: { batchSize: [8] }
`;

beforeAll(async () => {
  torchPython();
  expect((await startBackend('cpu')).name).toBe('cpu');
});

/** Float32 values differing by at most `ulps` units in the last place; returns how many differ at all. */
function expectWithinUlps(actual: number[], expected: Float32Array, ulps: number): number {
  expect(actual).toHaveLength(expected.length);
  const a = new Int32Array(Float32Array.from(actual).buffer);
  const b = new Int32Array(expected.buffer, expected.byteOffset, expected.length);
  let differing = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) differing++;
    expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(ulps);
  }
  return differing;
}

describe('data: the same samples as src/worker/data.ts', () => {
  it('synthetic vectors and images (block centres), and the mnist shuffle: equal to the last float32 ulp', async () => {
    const runs = [
      makeRun(tinySpec({ model: 'mlp' })),
      makeRun(tinySpec({ model: 'cnn' })),
      makeRuns(EDGE_MODELS)[0]!, // 3 channels: NHWC -> NCHW and back
      makeRun(MNIST_RUN),
      makeRun(SEQUENCE_FAMILIES()), // token ids
    ];
    const python = await pythonSnippet<Array<{ trainX: number[]; trainY: number[]; evalX: number[]; evalY: number[] }>>(
      `
import json, sys
from mpx_torch.data import build_dataset
from mpx_torch.protocol import encode
def tf_order(x):  # back to TensorFlow's NHWC sample order
    return (x.transpose(0, 2, 3, 1) if x.ndim == 4 else x).reshape(-1).tolist()
out = []
for run in json.load(sys.stdin):
    ds = build_dataset(run['data'], run['model']['input'], run['model']['classes'], run['seed'], ${JSON.stringify(MNIST_DIR)})
    out.append({'trainX': tf_order(ds.train_x), 'trainY': ds.train_y.tolist(), 'evalX': tf_order(ds.eval_x), 'evalY': ds.eval_y.tolist()})
print(encode(out))
`,
      runs,
    );
    let differing = 0;
    let values = 0;
    runs.forEach((run, i) => {
      const ts = buildDataset(run.data, run.model.input, run.model.classes, run.seed);
      expect(python[i]!.trainY).toEqual(Array.from(ts.trainY));
      expect(python[i]!.evalY).toEqual(Array.from(ts.evalY));
      if (ts.trainX instanceof Int32Array) {
        // Token ids: integers, equal.
        expect(python[i]!.trainX).toEqual(Array.from(ts.trainX));
        expect(python[i]!.evalX).toEqual(Array.from(ts.evalX));
        return;
      }
      differing += expectWithinUlps(python[i]!.trainX, ts.trainX, 1) + expectWithinUlps(python[i]!.evalX, ts.evalX as Float32Array, 1);
      values += ts.trainX.length + ts.evalX.length;
    });
    // libm and V8 may round log/sin/cos differently in the last double bit; measured: 0 of 20.5M float32 values.
    expect(differing / values).toBeLessThan(1e-4);
  });
});

interface PythonModel {
  /** Variables in TensorFlow layouts (conv kernels back to [kh, kw, in, out]), flat. */
  variables: number[][];
  /** Model outputs for the first 8 training samples, flat, classes in TensorFlow order. */
  outputs: number[];
  /** Loss of the first update (float32 policy). */
  loss: number;
}

describe('model: the same initial weights, function and initial loss as the tfjs engine (float32)', () => {
  const runs = (): RunConfig[] => [
    makeRun(tinySpec({ model: 'mlp', batchSize: 16 })),
    makeRun(tinySpec({ model: 'cnn', batchSize: 16 })),
    makeRun(tinySpec({ model: 'cnn', batchSize: 16, accumulationSteps: 4 })),
    ...makeRuns(EDGE_MODELS),
    // Every new family: a graph of convolutions, batch norm, pooling, add and concatenate; embedding, layer norm,
    // attention (causal too), conv1d and gelu on token data; the presets.
    makeRun(IMAGE_FAMILIES),
    makeRun(SEQUENCE_FAMILIES()),
    makeRun(SEQUENCE_FAMILIES({ causal: true })),
    makeRun(preset('transformer')),
    makeRun(preset('resnet')),
  ];

  it('matches weights exactly, outputs to 1e-6, the first loss (without dropout) to 1e-6 relative', async () => {
    const configs = runs();
    const python = await pythonSnippet<PythonModel[]>(
      `
import json, sys, torch
from mpx_torch.data import build_dataset
from mpx_torch.protocol import encode
from mpx_torch.train import Trainer
out = []
for run in json.load(sys.stdin):
    ds = build_dataset(run['data'], run['model']['input'], run['model']['classes'], run['seed'])
    trainer = Trainer(run, ds, torch.device('cpu'))
    variables = [(p.detach().permute(2, 3, 1, 0) if p.dim() == 4 else p.detach().permute(2, 1, 0) if p.dim() == 3 else p.detach()).reshape(-1).tolist() for p in trainer.model.params]
    outputs = trainer.model.forward(torch.from_numpy(ds.train_x[:8])).detach().reshape(-1).tolist()
    out.append({'variables': variables, 'outputs': outputs, 'loss': trainer.update(0)})
print(encode(out))
`,
      configs,
    );
    configs.forEach((run, i) => {
      const dataset = buildDataset(run.data, run.model.input, run.model.classes, run.seed);
      const model = buildModel(run.model, run.seed);
      const expected = model.variables.map((v) => Array.from(v.dataSync()));
      const afterFlatten = run.model.layers.findIndex((l) => l.type === 'flatten') >= 0 && run.model.input.length === 3;
      python[i]!.variables.forEach((values, j) => {
        // A dense kernel fed by a flattened image has its rows in NCHW order in torch: same values, other order.
        if (afterFlatten && model.variables[j]!.shape.length === 2) expect([...values].sort()).toEqual([...expected[j]!].sort());
        else expect(values).toEqual(expected[j]);
      });
      const dim = dataset.inputShape.reduce((a, b) => a * b, 1);
      const x = tf.tensor(dataset.trainX.subarray(0, 8 * dim), [8, ...dataset.inputShape]);
      const outputs = model.forward(x, { training: false, grid: null, dropoutSeed: 1 });
      const reference = outputs.dataSync();
      python[i]!.outputs.forEach((value, j) => expect(Math.abs(value - reference[j]!)).toBeLessThan(1e-6));
      tf.dispose([x, outputs]);
      model.dispose();

      // Dropout masks are seeded alike but drawn differently by each engine: training losses differ there.
      if (run.model.layers.some((l) => l.type === 'dropout')) return;
      const trainer = new Trainer(run, dataset, null, new LossScaler('none'));
      const loss = trainer.update(0);
      trainer.dispose();
      expect(Math.abs(python[i]!.loss - loss) / loss).toBeLessThan(1e-6);
    });
  });
});

describe('loss scaling: the rules of loss-scale.ts (tf.keras 2.x LossScaleOptimizer)', () => {
  it('gives the same scale, counter, skip decision and skipped count on the same finite/non-finite sequences', async () => {
    const cases: Array<{ definition: 'dynamic' | 'none' | number; initialScale?: number; growthSteps?: number }> = [
      { definition: 'dynamic', initialScale: 8, growthSteps: 3 }, // halving reaches the floor of 1, growth resumes
      { definition: 'dynamic', initialScale: 2 ** 127, growthSteps: 1 }, // doubling stops below float32 Infinity
      { definition: 'dynamic' },
      { definition: 512 },
      { definition: 'none' },
    ];
    const uniform = createRandom(99);
    const sequences = cases.map(() => Array.from({ length: 60 }, () => uniform() < 0.7));
    const python = await pythonSnippet<Array<Array<[number, number, boolean]>>>(
      `
import json, sys
from mpx_torch.loss_scale import DEFAULT_GROWTH_STEPS, DEFAULT_INITIAL_SCALE, LossScaler
from mpx_torch.protocol import encode
out = []
for case, finite in json.load(sys.stdin):
    scaler = LossScaler(case['definition'], case.get('initialScale', DEFAULT_INITIAL_SCALE), case.get('growthSteps', DEFAULT_GROWTH_STEPS))
    out.append([[scaler.scale, scaler.counter, scaler.update(f)] for f in finite] + [[scaler.scale, scaler.skipped_steps, scaler.uses_scaling]])
print(encode(out))
`,
      cases.map((c, i) => [c, sequences[i]]),
    );
    cases.forEach((c, i) => {
      const options = c.definition === 'dynamic' ? { initialScale: c.initialScale, growthSteps: c.growthSteps } : {};
      const scaler = new LossScaler(c.definition, options);
      const expected: Array<[number, number, boolean]> = sequences[i]!.map((finite) => [scaler.scale, scaler.counter, scaler.update(finite).apply]);
      expected.push([scaler.scale, scaler.skippedSteps, scaler.usesScaling]);
      expect(python[i]).toEqual(expected);
    });
  });

  it('checks finiteness with sums (no gradient-sized copy): NaN and ±Inf anywhere are caught', async () => {
    const results = await pythonSnippet<boolean[]>(`
import torch
from mpx_torch.loss_scale import all_finite
from mpx_torch.protocol import encode
ok = [torch.ones(3, 4), torch.zeros(5)]
print(encode([all_finite(ok), all_finite([]), all_finite(ok + [torch.tensor([1.0, float('nan')])]),
              all_finite(ok + [torch.tensor([float('inf')])]), all_finite([torch.tensor([-float('inf'), 2.0])])]))
`);
    expect(results).toEqual([true, true, false, false, false]);
  });
});

describe('optimizers: the same Keras 3 updates in both engines (float32)', () => {
  it('adamw and rmsprop (plain, momentum, centered) give the same losses over 5 updates (to 1e-5 relative)', async () => {
    const optimizers = ['{ name: adamw, weightDecay: 0.1 }', '{ name: rmsprop }', '{ name: rmsprop, momentum: 0.9 }', '{ name: rmsprop, momentum: 0.5, centered: true, rho: 0.8 }'];
    const configs = optimizers.map((optimizer) =>
      makeRun(`
name: o
seed: 13
data: { kind: synthetic, samples: 256, evalSamples: 16 }
train: { steps: 5, warmupSteps: 0, optimizer: ${optimizer.replace('}', ', learningRate: 0.01 }')} }
models:
  mlp: { preset: mlp, input: [16], hidden: [32], classes: 4 }
matrix: { batchSize: [32] }
`),
    );
    const python = await pythonSnippet<number[][]>(
      `
import json, sys, torch
from mpx_torch.data import build_dataset
from mpx_torch.protocol import encode
from mpx_torch.train import Trainer
out = []
for run in json.load(sys.stdin):
    ds = build_dataset(run['data'], run['model']['input'], run['model']['classes'], run['seed'])
    trainer = Trainer(run, ds, torch.device('cpu'))
    out.append([trainer.update(step) for step in range(5)])
print(encode(out))
`,
      configs,
    );
    configs.forEach((run, i) => {
      const dataset = buildDataset(run.data, run.model.input, run.model.classes, run.seed);
      const trainer = new Trainer(run, dataset, null, new LossScaler('none'));
      const losses = [0, 1, 2, 3, 4].map((step) => trainer.update(step));
      trainer.dispose();
      losses.forEach((loss, step) => expect(Math.abs(python[i]![step]! - loss) / loss, `${run.train.optimizer.name} step ${step}`).toBeLessThan(1e-5));
      expect(losses[4]).toBeLessThan(losses[0]!);
    });
  });
});
