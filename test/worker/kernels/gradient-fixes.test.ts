import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../../../src/worker/backend.js';

describe('SquaredDifference gradient (tfjs 4.22 does not reduce over broadcast axes)', () => {
  beforeAll(async () => {
    await startBackend('wasm');
  });

  it('gives each input a gradient of its own shape, as TensorFlow\'s _SquaredDifferenceGrad does', () => {
    const a = tf.randomNormal([4, 3], 0, 1, 'float32', 1);
    const b = tf.randomNormal([4, 1], 0, 1, 'float32', 2);
    const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.squaredDifference(x, y)))([a, b]);
    expect(da!.shape).toEqual([4, 3]);
    expect(db!.shape).toEqual([4, 1]);
    // d/da (a − b)² = 2(a − b); d/db = −2(a − b) summed over the broadcast axis.
    const diff = tf.sub(a, b);
    expect(Array.from(da!.dataSync())).toEqual(Array.from(tf.mul(diff, 2).dataSync()));
    Array.from(tf.sum(tf.mul(diff, -2), 1, true).dataSync()).forEach((v, i) => expect(db!.dataSync()[i]).toBeCloseTo(v, 5));
  });
});
