import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { allFinite, LossScaler } from '../../../src/worker/precision/loss-scale.js';

describe('LossScaler dynamic (tf.keras 2.x rules)', () => {
  it('starts at 2^15 and doubles after 2000 consecutive finite steps', () => {
    const s = new LossScaler('dynamic');
    expect(s.scale).toBe(32768);
    expect(s.usesScaling).toBe(true);
    expect(s.checksFiniteness).toBe(true);
    for (let i = 0; i < 1999; i++) expect(s.update(true).apply).toBe(true);
    expect(s.scale).toBe(32768);
    expect(s.counter).toBe(1999);
    expect(s.update(true).apply).toBe(true); // the 2000th finite step grows the scale
    expect(s.scale).toBe(65536);
    expect(s.counter).toBe(0);
    for (let i = 0; i < 2000; i++) s.update(true);
    expect(s.scale).toBe(131072);
    expect(s.skippedSteps).toBe(0);
  });

  it('halves and skips on non-finite gradients, and resets the growth counter', () => {
    const s = new LossScaler('dynamic');
    for (let i = 0; i < 1500; i++) s.update(true);
    expect(s.update(false)).toEqual({ apply: false });
    expect(s.scale).toBe(16384);
    expect(s.counter).toBe(0);
    expect(s.skippedSteps).toBe(1);
    for (let i = 0; i < 1999; i++) s.update(true);
    expect(s.scale).toBe(16384); // 1500 earlier steps no longer count
    s.update(true);
    expect(s.scale).toBe(32768);
    s.update(false);
    s.update(false);
    expect(s.scale).toBe(8192);
    expect(s.skippedSteps).toBe(3);
  });

  it('never goes below 1 (tf.maximum(scale / 2, 1))', () => {
    const s = new LossScaler('dynamic', { initialScale: 4 });
    s.update(false);
    s.update(false);
    expect(s.scale).toBe(1);
    expect(s.update(false).apply).toBe(false);
    expect(s.scale).toBe(1);
    expect(s.skippedSteps).toBe(3);
  });

  it('only grows to a value that is finite as a float32', () => {
    const s = new LossScaler('dynamic', { initialScale: 2 ** 127, growthSteps: 1 });
    s.update(true);
    expect(s.scale).toBe(2 ** 127);
    expect(s.counter).toBe(0);
  });

  it('honours custom growth steps', () => {
    const s = new LossScaler('dynamic', { initialScale: 8, growthSteps: 3 });
    s.update(true);
    s.update(true);
    expect(s.scale).toBe(8);
    s.update(true);
    expect(s.scale).toBe(16);
  });
});

describe('LossScaler fixed and none', () => {
  it('fixed: constant scale, never skips, even on non-finite gradients (as Keras with dynamic=False)', () => {
    const s = new LossScaler(1024);
    expect(s.mode).toBe('fixed');
    expect(s.usesScaling).toBe(true);
    expect(s.checksFiniteness).toBe(false);
    for (let i = 0; i < 5000; i++) expect(s.update(i % 7 !== 0).apply).toBe(true);
    expect(s.scale).toBe(1024);
    expect(s.skippedSteps).toBe(0);
  });

  it('none: scale 1, never skips', () => {
    const s = new LossScaler('none');
    expect(s.scale).toBe(1);
    expect(s.usesScaling).toBe(false);
    expect(s.update(false).apply).toBe(true);
    expect(s.scale).toBe(1);
    expect(s.skippedSteps).toBe(0);
  });

  it('rejects bad definitions', () => {
    expect(() => new LossScaler(0)).toThrow();
    expect(() => new LossScaler(-8)).toThrow();
    expect(() => new LossScaler(Infinity)).toThrow();
    expect(() => new LossScaler(NaN)).toThrow();
    expect(() => new LossScaler('static' as 'none')).toThrow();
    expect(() => new LossScaler(8, { growthSteps: 10 })).toThrow();
    expect(() => new LossScaler('dynamic', { growthSteps: 0 })).toThrow();
  });
});

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`allFinite on ${backend}`, () => {
    it('detects Infinity and NaN anywhere, accepts any values float16 can hold, and leaks nothing', async () => {
      expect(await tf.setBackend(backend)).toBe(true);
      const finite = [tf.tensor2d([[1, -2], [3e-40, 0]]), tf.fill([100_000], 65504), tf.tensor1d([-65504, -65504])];
      const before = tf.memory().numTensors;
      expect(allFinite(finite)).toBe(true);
      expect(allFinite([])).toBe(true);
      expect(allFinite({ a: finite[0]!, b: finite[1]! })).toBe(true);
      for (const bad of [Infinity, -Infinity, NaN]) {
        const t = tf.tensor1d([1, 2, bad, 4]);
        expect(allFinite([...finite, t])).toBe(false);
        expect(allFinite([t])).toBe(false);
        t.dispose();
      }
      // A sum that overflows float32 needs elements far beyond float16's range: non-finite in 16 bits too.
      const huge = tf.fill([1000], 3e38);
      expect(allFinite([huge])).toBe(false);
      huge.dispose();
      const ints = tf.tensor1d([1, 2], 'int32');
      expect(allFinite([ints])).toBe(true);
      ints.dispose();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose(finite);
    });
  });
}
