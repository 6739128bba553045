import { describe, expect, it } from 'vitest';
import { countFlops } from '../../src/bench/flops.js';
import { presetRun } from '../../src/bench/specs.js';

describe('countFlops', () => {
  it('MLP 784-512-512-10 at batch 128: 2·m·k·n per product; no input gradient for the first layer', () => {
    const { layers, forward, trainingStep } = countFlops(presetRun('mlp', 'float32').model, 128);
    expect(layers.map((l) => [l.m, l.k, l.n])).toEqual([
      [128, 784, 512],
      [128, 512, 512],
      [128, 512, 10],
    ]);
    const products = [128 * 784 * 512, 128 * 512 * 512, 128 * 512 * 10].map((p) => 2 * p);
    expect(forward).toBe(products[0]! + products[1]! + products[2]!);
    expect(layers[0]!.inputGradient).toBe(0);
    expect(trainingStep).toBe(3 * forward - products[0]!);
  });

  it('CNN preset at batch 64: convolutions as (batch·outH·outW) × (kH·kW·inC) × filters', () => {
    const { layers } = countFlops(presetRun('cnn', 'float32').model, 64);
    expect(layers.map((l) => [l.type, l.m, l.k, l.n])).toEqual([
      ['conv2d', 64 * 28 * 28, 9, 16],
      ['conv2d', 64 * 14 * 14, 9 * 16, 32],
      ['dense', 64, 7 * 7 * 32, 64],
      ['dense', 64, 64, 10],
    ]);
    expect(layers.map((l) => l.inputGradient > 0)).toEqual([false, true, true, true]);
  });
});
