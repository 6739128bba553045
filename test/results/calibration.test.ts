import { describe, expect, it } from 'vitest';
import type { ResultRow } from '../../src/results/aggregate.js';
import { compareRuntimes, relativeError, renderRuntimeCalibration } from '../../src/results/calibration.js';
import { blankRow } from '../../src/results/table.js';

function row(parts: Partial<ResultRow>): ResultRow {
  return { ...blankRow(), model: 'cnn', batchSize: 32, microBatchSize: 32, runsOk: 1, runsPlanned: 1, ...parts };
}
const wasm = (parts: Partial<ResultRow>) =>
  row({ backends: ['wasm'], requestedBackend: 'wasm', peakBytes: 3_000_000, peakModeledBytes: 2_000_000, peakTfModeledBytes: 900_000, peakTorchModeledBytes: 990_000, ...parts });
const torch = (parts: Partial<ResultRow>) => row({ backends: ['torch'], requestedBackend: 'torch', peakBytes: 1_000_000, ...parts });

describe('compareRuntimes', () => {
  it('pairs each tfjs row with the torch row of the same cell, whatever their order', () => {
    const rows = [torch({ batchSize: 64, peakBytes: 2_000_000 }), wasm({}), torch({}), wasm({ batchSize: 64 })];
    const comparisons = compareRuntimes(rows);
    expect(comparisons.map((c) => [c.batchSize, c.tfModeledBytes, c.torchPeakBytes])).toEqual([
      [32, 900_000, 1_000_000],
      [64, 900_000, 2_000_000],
    ]);
  });

  it('leaves out cells missing a side, a figure, or an ok status: a comparison needs both measured', () => {
    const rows = [
      wasm({ policy: 'mixed_bfloat16' }), // no torch partner
      wasm({}),
      torch({ status: 'oom' }),
      wasm({ model: 'mlp', peakTfModeledBytes: null }), // an older CSV
      torch({ model: 'mlp' }),
      wasm({ model: 'strided', policy: 'mixed_float16' }),
      torch({ model: 'strided', policy: 'mixed_float16', status: 'unsupported' }),
    ];
    expect(compareRuntimes(rows)).toEqual([]);
  });

  it('does not pair cells that differ in accumulation steps', () => {
    expect(compareRuntimes([wasm({ accumulationSteps: 2 }), torch({})])).toEqual([]);
  });
});

describe('renderRuntimeCalibration', () => {
  it('shows every figure in MB with the errors against torch, and per model the error ranges', () => {
    const text = renderRuntimeCalibration(compareRuntimes([wasm({}), torch({}), wasm({ batchSize: 64, peakTfModeledBytes: 1_100_000 }), torch({ batchSize: 64 })]));
    const lines = text.split('\n');
    expect(lines[2]).toBe('| cnn | 32 | float32 | 3.00 | 2.00 | 0.90 | 0.99 | 1.00 | −10.0 % | −1.0 % |');
    expect(lines[3]).toBe('| cnn | 64 | float32 | 3.00 | 2.00 | 1.10 | 0.99 | 1.00 | +10.0 % | −1.0 % |');
    expect(text).toContain('- **cnn** against torch\'s measured peak: tfjs measured +200.0 % (float32 rows), tfjs-lifetimes model +100.0 %, TensorFlow-lifetimes model −10.0 % … +10.0 %, PyTorch-lifetimes model −1.0 %.');
  });

  it('compares tfjs\'s measured fp32 graph with torch only on float32 rows', () => {
    const text = renderRuntimeCalibration(compareRuntimes([wasm({ policy: 'mixed_bfloat16' }), torch({ policy: 'mixed_bfloat16' })]));
    expect(text).toContain('- **cnn** against torch\'s measured peak: tfjs-lifetimes model +100.0 %,');
  });

  it('adds an accumulation column only when a cell accumulates', () => {
    const plain = renderRuntimeCalibration(compareRuntimes([wasm({}), torch({})]));
    const accumulated = renderRuntimeCalibration(compareRuntimes([wasm({ accumulationSteps: 4 }), torch({ accumulationSteps: 4 })]));
    expect(plain).not.toContain('acc.');
    expect(accumulated.split('\n')[2]).toMatch(/^\| cnn \| 32 \| float32 \| 4 \|/);
  });

  it('relativeError is modeled over measured, minus one', () => {
    expect(relativeError(105, 100)).toBeCloseTo(0.05, 12);
    expect(relativeError(80, 100)).toBeCloseTo(-0.2, 12);
  });
});
