import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { ADAM_KERNEL, adamUpdate, hasFusedAdam } from '../../../src/worker/kernels/adam.js';
import { registerWasmTrainingKernels } from '../../../src/worker/kernels/wasm-training.js';
import { createRandom } from '../../../src/worker/random.js';

/** The worker's own seeded PRNG (mulberry32), so failures reproduce. */
const rng = createRandom;

/** The tf-op Adam of src/worker/optimizer.ts, one variable. */
function adamWithOps(m: tf.Tensor, v: tf.Tensor, w: tf.Tensor, g: tf.Tensor, factor: number, stepSize: number): tf.Tensor[] {
  return tf.tidy(() => {
    const m2 = tf.add(tf.mul(m, 0.9), tf.mul(g, (1 - 0.9) * factor));
    const v2 = tf.add(tf.mul(v, 0.999), tf.mul(tf.square(g), (1 - 0.999) * factor * factor));
    const w2 = tf.sub(w, tf.mul(tf.div(m2, tf.add(tf.sqrt(v2), 1e-7)), stepSize));
    return [m2, v2, w2];
  });
}

function bits(t: tf.Tensor): Uint32Array {
  return new Uint32Array((t.dataSync() as Float32Array).slice().buffer);
}

describe(`${ADAM_KERNEL} on wasm`, () => {
  beforeAll(async () => {
    registerWasmTrainingKernels();
    expect(await tf.setBackend('wasm')).toBe(true);
    await tf.ready();
  });

  it('is available, and gives the same bits as the tf-op Adam (tails, factors, tiny and huge values)', () => {
    expect(hasFusedAdam()).toBe(true);
    const rand = rng(7);
    for (const size of [0, 1, 3, 4, 5, 17, 1000, 4099]) {
      for (const factor of [1, 1 / 32768, 0.25]) {
        const values = (scale: number, positive = false) =>
          Float32Array.from({ length: size }, () => (positive ? rand() : rand() * 2 - 1) * scale * (rand() < 0.1 ? 1e-20 : 1));
        const [m, v, w, g] = [tf.tensor1d(values(0.1)), tf.tensor1d(values(0.01, true)), tf.tensor1d(values(1)), tf.tensor1d(values(100))];
        const stepSize = (0.001 * Math.sqrt(1 - 0.999 ** 3)) / (1 - 0.9 ** 3);
        const expected = adamWithOps(m, v, w, g, factor, stepSize);
        const before = tf.memory().numTensors;
        const got = adamUpdate(m, v, w, g, { beta1: 0.9, c1: (1 - 0.9) * factor, beta2: 0.999, c2: (1 - 0.999) * factor * factor, epsilon: 1e-7, stepSize });
        expect(tf.memory().numTensors).toBe(before + 3);
        got.forEach((t, k) => {
          expect(t.shape).toEqual([size]);
          expect(bits(t)).toEqual(bits(expected[k]!));
        });
        tf.dispose([m, v, w, g, ...expected, ...got]);
      }
    }
  });
});
