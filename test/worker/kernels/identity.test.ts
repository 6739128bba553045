import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerWasmTrainingKernels } from '../../../src/worker/kernels/wasm-training.js';

describe('Identity on wasm', () => {
  beforeAll(async () => {
    registerWasmTrainingKernels();
    await tf.setBackend('wasm');
  });

  it('shares the input buffer (as cpu does) and frees it once both tensors are gone', () => {
    const buffers = () => tf.memory().numDataBuffers;
    const x = tf.tensor1d([1, 2, 3]);
    const before = buffers();
    const y = tf.clone(x);
    expect(y.dataId).toBe(x.dataId);
    expect(buffers()).toBe(before);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3]);
    y.dispose();
    expect(buffers()).toBe(before - 1);
  });
});
