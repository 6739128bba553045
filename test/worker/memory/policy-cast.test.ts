import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { startBackend } from '../../../src/worker/backend.js';
import { TensorLedger } from '../../../src/worker/memory/ledger.js';
import { policyCast } from '../../../src/worker/memory/policy-cast.js';

describe('MpxCast: a cast of the policy, a copy on the fp32 graph', () => {
  for (const backend of ['wasm', 'cpu'] as const) {
    it(`${backend}: copies values and passes gradients back unchanged`, async () => {
      await startBackend(backend);
      const x = tf.randomNormal([3, 4], 0, 1, 'float32', 1);
      const y = policyCast(x, true);
      expect(y.dataId).not.toBe(x.dataId);
      expect(Array.from(y.dataSync())).toEqual(Array.from(x.dataSync()));
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(policyCast(t, false), 3)))(x);
      expect(Array.from(g.dataSync())).toEqual(new Array(12).fill(3));
      tf.dispose([x, y, g]);
    });
  }

  it('counts once in tfjs\'s measured bytes (the fp32 graph holds one buffer), twice at the policy\'s sizes', async () => {
    await startBackend('wasm');
    const ledger = new TensorLedger();
    ledger.attach();
    const x = tf.keep(tf.ones([1000])); // fp32, 4,000 bytes, outside the window
    ledger.openWindow(new Map([[x.dataId, 'other']]));
    tf.tidy(() => {
      const half = ledger.withContext({ role: 'activations', halfPrecision: true, layer: 0 }, () => policyCast(x, true));
      return ledger.withContext({ role: 'activations', halfPrecision: false, layer: 0 }, () => policyCast(half, false));
    });
    const report = ledger.closeWindow();
    expect(report.peakBytes).toBe(4000); // x and both copies are one buffer of the fp32 graph
    expect(report.peakModeledBytes).toBe(4000 + 2000 + 4000); // x, its 16-bit copy, the float32 copy of that
    x.dispose();
  });
});
