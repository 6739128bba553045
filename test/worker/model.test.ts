import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../../src/worker/backend.js';
import { buildModel } from '../../src/worker/model.js';
import { quantize } from '../../src/worker/precision/quantize.js';
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
