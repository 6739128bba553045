import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../../src/worker/backend.js';
import { countParameters, parameterTensorSizes, stateTensorSizes } from '../../src/spec/model-shapes.js';
import type { ModelDef } from '../../src/spec/types.js';
import { TensorLedger } from '../../src/worker/memory/ledger.js';
import { buildModel } from '../../src/worker/model.js';
import { quantize } from '../../src/worker/precision/quantize.js';
import { trainRun } from '../../src/worker/train.js';
import { IMAGE_FAMILIES, SEQUENCE_FAMILIES } from './families.js';
import { makeRun, tinySpec } from './make-run.js';

describe('emulated forward pass (wasm)', () => {
  beforeAll(async () => {
    await startBackend('wasm');
  });

  it('reuses the rounded weights within an update: same values and gradients as rounding on every call', () => {
    const run = makeRun(tinySpec({ policy: 'mixed_float16' }));
    const model = buildModel(run.model, run.seed);
    const x = tf.randomNormal([8, 64], 0, 3, 'float32', 5);
    const options = { training: true, grid: 'float16' as const, dropoutSeed: 1 };
    const lossOf = () => tf.sum<tf.Scalar>(tf.square(model.forward(x, options)));
    const first = tf.variableGrads(lossOf, model.variables);
    const second = tf.variableGrads(lossOf, model.variables); // served from the cache
    expect(second.value.dataSync()).toEqual(first.value.dataSync());
    for (const v of model.variables) expect(second.grads[v.name]!.dataSync()).toEqual(first.grads[v.name]!.dataSync());

    tf.dispose([x, first.value, second.value, ...Object.values(first.grads), ...Object.values(second.grads)]);
    model.dispose();
  });

  it('gives the gradient of rounding on the spot: a dense layer against quantize by hand', () => {
    const model = buildModel(
      { name: 'one', preset: null, input: [16], classes: 4, layers: [{ type: 'dense', units: 4, activation: 'linear', useBias: true }] },
      9,
    );
    const [kernel, bias] = model.variables as [tf.Variable, tf.Variable];
    const x = tf.randomNormal([8, 16], 0, 100, 'float32', 6);
    const q = (t: tf.Tensor) => quantize(t, 'float16');
    const viaModel = tf.variableGrads(
      () => tf.sum<tf.Scalar>(tf.mul(model.forward(x, { training: true, grid: 'float16', dropoutSeed: 1 }), 1e-3)),
      [kernel, bias],
    );
    const byHand = tf.variableGrads(() => tf.sum<tf.Scalar>(tf.mul(q(tf.add(q(tf.matMul(q(x), q(kernel))), q(bias))), 1e-3)), [kernel, bias]);
    expect(viaModel.value.dataSync()).toEqual(byHand.value.dataSync());
    expect(viaModel.grads[kernel.name]!.dataSync()).toEqual(byHand.grads[kernel.name]!.dataSync());
    expect(viaModel.grads[bias.name]!.dataSync()).toEqual(byHand.grads[bias.name]!.dataSync());
    model.dispose();
  });

  it('rounds the weights again after they change', () => {
    const run = makeRun(tinySpec({ policy: 'mixed_bfloat16' }));
    const model = buildModel(run.model, run.seed);
    const x = tf.ones([2, 64]);
    const options = { training: false, grid: 'bfloat16' as const, dropoutSeed: 1 };
    const before = model.forward(x, options).dataSync().slice();
    const kernel = model.variables[0]!;
    const doubled = tf.mul(kernel, 2);
    kernel.assign(doubled);
    doubled.dispose();
    const after = model.forward(x, options).dataSync();
    expect(Array.from(after)).not.toEqual(Array.from(before));
    tf.dispose(x);
    model.dispose();
  });
});

describe('every layer family, on wasm and cpu', () => {
  const runs = () => [makeRun(IMAGE_FAMILIES), makeRun(SEQUENCE_FAMILIES()), makeRun(SEQUENCE_FAMILIES({ dropout: 0.2, causal: true }))];

  it('builds the variables the spec counts (trainable and batch-norm state), and trains on wasm: loss goes down', async () => {
    await startBackend('wasm');
    for (const run of runs()) {
      const model = buildModel(run.model, run.seed);
      expect(model.variables.map((v) => v.size)).toEqual(parameterTensorSizes(run.model));
      expect(model.state.map((v) => v.size)).toEqual(stateTensorSizes(run.model));
      model.dispose();
      const m = await trainRun(run, 'wasm', new TensorLedger());
      expect(m.paramCount).toBe(countParameters(run.model).trainable);
      expect(m.finalLoss).toBeLessThan(0.8 * m.initialLoss);
    }
  }, 120_000);

  it('cpu starts from the same loss as wasm (to 1e-5) and trains too', async () => {
    const first = async (backend: 'wasm' | 'cpu', run: ReturnType<typeof makeRun>) => {
      await startBackend(backend);
      const short = { ...run, train: { ...run.train, steps: 4, warmupSteps: 0 } };
      return trainRun(short, backend, new TensorLedger());
    };
    for (const run of runs()) {
      const wasm = await first('wasm', run);
      const cpu = await first('cpu', run);
      expect(Math.abs(cpu.initialLoss - wasm.initialLoss) / wasm.initialLoss).toBeLessThan(1e-5);
      expect(cpu.finalLoss).toBeLessThan(cpu.initialLoss);
    }
  }, 240_000);
});

describe('emulated 16-bit families follow the Keras rule table (bit-exact, bfloat16 and float16)', () => {
  beforeAll(async () => {
    await startBackend('wasm');
  });
  const single = (input: number[], layers: ModelDef['layers'], classes: number): ModelDef => ({ name: 'one', preset: null, input, classes, layers });
  const options = (grid: 'float16' | 'bfloat16') => ({ training: true, grid, dropoutSeed: 1 });
  const same = (a: tf.Tensor, b: tf.Tensor) => expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));

  it.each(['float16', 'bfloat16'] as const)('%s: layer normalisation computes in float32 from the 16-bit input and rounds only its output', (grid) => {
    const model = buildModel(single([6], [{ type: 'dense', units: 5, activation: 'linear', useBias: false }, { type: 'layerNormalization', epsilon: 1e-3 }], 5), 3);
    const x = tf.randomNormal([4, 6], 0, 3, 'float32', 2);
    const q = (t: tf.Tensor) => quantize(t, grid);
    const h = q(tf.matMul(q(x), q(model.variables[0]!)));
    const mean = tf.mean(h, -1, true);
    const variance = tf.mean(tf.squaredDifference(h, mean), -1, true);
    const inv = tf.mul(tf.rsqrt(tf.add(variance, 1e-3)), model.variables[1]!);
    const byHand = q(tf.add(tf.mul(h, inv), tf.add(tf.mul(tf.neg(mean), inv), model.variables[2]!)));
    same(model.forward(x, options(grid)), byHand);
    model.dispose();
  });

  it.each(['float16', 'bfloat16'] as const)('%s: an embedding gathers float32 rows and rounds them; global pooling averages in float32 and rounds the mean', (grid) => {
    const model = buildModel(single([5], [{ type: 'embedding', vocab: 7, units: 3 }, { type: 'globalAveragePooling1d' }], 3), 4);
    const ids = tf.tensor2d([[0, 1, 2, 3, 4], [6, 6, 5, 0, 1]], undefined, 'int32');
    const rows = quantize(tf.gather(model.variables[0]!, ids), grid);
    same(model.forward(ids, options(grid)), quantize(tf.mean(rows, 1), grid));
    model.dispose();
  });

  it.each(['float16', 'bfloat16'] as const)('%s: gelu rounds each of TensorFlow\'s ops (0.5·x, x/√2, erf, 1 + erf, the product)', (grid) => {
    const model = buildModel(single([3], [{ type: 'dense', units: 4, activation: 'gelu', useBias: false }], 4), 5);
    const x = tf.randomNormal([6, 3], 0, 2, 'float32', 6);
    const q = (t: tf.Tensor) => quantize(t, grid);
    const y = q(tf.matMul(q(x), q(model.variables[0]!)));
    same(model.forward(x, options(grid)), q(tf.mul(q(tf.mul(y, 0.5)), q(tf.add(q(tf.erf(q(tf.div(y, 1.4142135623730951)))), 1)))));
    model.dispose();
  });

  it('batch normalisation moves its float32 moving statistics while training, and uses them at inference', () => {
    const model = buildModel(single([2, 2, 3], [{ type: 'batchNormalization', momentum: 0.5, epsilon: 1e-3 }, { type: 'globalAveragePooling2d' }, { type: 'dense', units: 2, activation: 'linear', useBias: true }], 2), 7);
    const x = tf.randomNormal([8, 2, 2, 3], 2, 3, 'float32', 8);
    const [movingMean, movingVariance] = model.state as [tf.Variable, tf.Variable];
    model.forward(x, { training: true, grid: null, dropoutSeed: 1 });
    model.applyStateUpdates();
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    expect(Array.from(movingMean.dataSync()).map((v, i) => v - 0.5 * mean.dataSync()[i]!).every((d) => Math.abs(d) < 1e-6)).toBe(true);
    expect(Array.from(movingVariance.dataSync()).map((v, i) => v - (0.5 + 0.5 * variance.dataSync()[i]!)).every((d) => Math.abs(d) < 1e-5)).toBe(true);
    model.dispose();
  });
});
