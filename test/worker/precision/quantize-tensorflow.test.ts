/**
 * tfjs-node cannot be installed here, so the `tensorflow` registration is exercised on a stand-in: a CPU
 * backend registered under the name 'tensorflow' with the cpu kernels copied (but not MpxQuantize), so
 * registerQuantizeKernels() installs the op-composition kernel there.
 */
import * as tf from '@tensorflow/tfjs';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { quantize, QUANTIZE_KERNEL, registerQuantizeKernels } from '../../../src/worker/precision/quantize.js';
import { roundToBfloat16, roundToFloat16 } from '../../../src/worker/precision/round.js';
import { randomBits } from './reference.js';

describe("MpxQuantize on a stand-in 'tensorflow' backend (composition of ops)", () => {
  beforeAll(async () => {
    expect(tf.findBackendFactory('tensorflow')).toBeNull();
    registerQuantizeKernels(); // no tensorflow backend yet: nothing registered for it
    expect(tf.getKernel(QUANTIZE_KERNEL, 'tensorflow')).toBeUndefined();
    tf.registerBackend('tensorflow', () => new MathBackendCPU(), 0);
    tf.copyRegisteredKernels('cpu', 'tensorflow');
    tf.unregisterKernel(QUANTIZE_KERNEL, 'tensorflow'); // drop the copied cpu loop kernel
    registerQuantizeKernels(); // called again after the backend appears, as backend.ts does
    // The composition kernel, not the cpu loop.
    expect(tf.getKernel(QUANTIZE_KERNEL, 'tensorflow')?.kernelFunc).toBeDefined();
    expect(tf.getKernel(QUANTIZE_KERNEL, 'tensorflow')?.kernelFunc).not.toBe(
      tf.getKernel(QUANTIZE_KERNEL, 'cpu')?.kernelFunc,
    );
    expect(await tf.setBackend('tensorflow')).toBe(true);
  });

  for (const [format, round] of [
    ['float16', roundToFloat16],
    ['bfloat16', roundToBfloat16],
  ] as const) {
    it(`${format}: forward and gradient match round.ts (non-NaN bit-exact), no leak`, () => {
      const src = new Float32Array(randomBits(100_000, 777).buffer);
      const expected = new Float32Array(src.length);
      round(src, expected);
      const x = tf.tensor1d(src);
      const before = tf.memory().numTensors;
      const y = quantize(x, format);
      expect(tf.memory().numTensors).toBe(before + 1);
      const got = y.dataSync() as Float32Array;
      const gu = new Uint32Array(got.buffer);
      const eu = new Uint32Array(expected.buffer);
      let bad = 0;
      for (let i = 0; i < src.length; i++) {
        if (gu[i] !== eu[i] && !(Number.isNaN(got[i]) && Number.isNaN(expected[i]))) bad++;
      }
      expect(bad).toBe(0);

      const finite = src.map((v) => (Number.isFinite(v) ? v : 0));
      const dy = tf.tensor1d(finite);
      const xs = tf.ones([finite.length]);
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(quantize(t, format), dy)))(xs);
      const expectedG = new Float32Array(finite.length);
      round(finite, expectedG);
      expect(Array.from(g.dataSync())).toEqual(Array.from(expectedG));
      tf.dispose([x, y, dy, xs, g]);
      expect(tf.memory().numTensors).toBe(before - 1);
    });
  }
});
