/**
 * The capacity search against a brute-force scan: on memory curves of the shapes real updates have (linear, flat then
 * linear, stepped), on failures, and on a real model measured in process (wasm) at every micro batch.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { searchCapacity, type ProbeOutcome } from '../../src/runner/capacity-search.js';
import { startBackend } from '../../src/worker/backend.js';
import { buildDataset } from '../../src/worker/data.js';
import { TensorLedger } from '../../src/worker/memory/ledger.js';
import { measureMemory } from '../../src/worker/train.js';
import { makeRun } from '../worker/make-run.js';

const ok = (bytes: number): ProbeOutcome => ({ status: 'ok', bytes, reachedBytes: null, reason: null });

/** The largest m in range whose peak fits, by trying them all. */
function bruteForce(range: { min: number; max: number }, budget: number, peak: (m: number) => number): number | null {
  let best: number | null = null;
  for (let m = range.min; m <= range.max; m++) if (peak(m) <= budget) best = m;
  return best;
}

const curves: Array<[string, (m: number) => number]> = [
  ['linear', (m) => 1_000_000 + 12_345 * m],
  ['flat, then linear (an optimizer-bound peak at small batches)', (m) => Math.max(40_000_000, 30_000_000 + 9_216 * m)],
  ['linear with allocator rounding (whole 64 KiB pages)', (m) => Math.ceil((2_000_000 + 7_777 * m) / 65_536) * 65_536],
  ['steep', (m) => 5_000 + 3_000_000 * m],
];

describe('searchCapacity against a brute-force scan', () => {
  it.each(curves)('%s: the same boundary for many budgets, in few probes', async (_, peak) => {
    const range = { min: 1, max: 65_536 };
    const counts: number[] = [];
    for (const budget of [peak(1), peak(1) + 1, 3e7, 48 * 2 ** 20, 6e7, 1e8, 2e8, 3.3e8, 1e9, peak(65_536), peak(65_536) - 1]) {
      const result = await searchCapacity(range, budget, (m) => ok(peak(m)));
      const expected = bruteForce(range, budget, peak);
      expect(result.maxMicroBatchSize, `budget ${budget}`).toBe(expected);
      expect(result.status).toBe(expected === null ? 'oom' : 'ok');
      if (expected !== null) expect(result.reason).toBeNull();
      expect(result.monotonicityViolations).toEqual([]);
      expect(result.isRangeLimited).toBe(expected === range.max);
      if (expected !== null && expected < range.max) expect(result.peakAboveMaxBytes).toBe(peak(expected + 1));
      expect(result.peakAtMaxBytes).toBe(expected === null ? null : peak(expected));
      counts.push(result.probes.length);
    }
    // Small probes are cheap (a flat start costs a few); the worst case (a budget just under a 64 KiB plateau) stays
    // under the 16-probe cap.
    counts.sort((a, b) => a - b);
    expect(counts[Math.floor(counts.length / 2)]).toBeLessThanOrEqual(8);
    expect(counts.at(-1)).toBeLessThan(16);
  });

  it('needs at most 4 probes on an exactly linear curve (two to fit, the boundary, the batch above it)', async () => {
    const result = await searchCapacity({ min: 8, max: 65_536 }, 48 * 2 ** 20, (m) => ok(1_000_000 + 12_345 * m));
    expect(result.probes.map((p) => p.microBatchSize)).toEqual([8, 64, 3996, 3997]);
    expect(result.fit).toEqual({ fixedBytes: 1_000_000, bytesPerSample: 12_345 });
  });

  it('nothing fits: oom, with the smallest batch\'s figure', async () => {
    const result = await searchCapacity({ min: 4, max: 100 }, 1_000, () => ok(5_000));
    expect(result).toMatchObject({ status: 'oom', maxMicroBatchSize: null, reason: 'not even the smallest batch of the range fits: micro batch 4 peaks at 5000 bytes, above the budget of 1000' });
  });

  it('a probe stopped early (oom) is a does-not-fit point; the search bisects where it cannot interpolate', async () => {
    const peak = (m: number) => 1_000 * m;
    const result = await searchCapacity({ min: 1, max: 4096 }, 100_000, (m) =>
      peak(m) > 200_000 ? { status: 'oom', bytes: null, reachedBytes: 200_001, reason: 'over twice the budget' } : ok(peak(m)),
    );
    expect(result.maxMicroBatchSize).toBe(100);
    expect(result.peakAboveMaxBytes).toBe(101_000);
  });

  it('a probe that fails for another reason ends the search with its status', async () => {
    const result = await searchCapacity({ min: 1, max: 1000 }, 1e9, (m) => (m === 1 ? ok(10) : { status: 'crashed', bytes: null, reachedBytes: null, reason: 'signal SIGKILL' }));
    expect(result.status).toBe('crashed');
    expect(result.reason).toBe('the probe at micro batch 8 ended crashed: signal SIGKILL');
    expect(result.maxMicroBatchSize).toBe(1);
  });

  it('reports non-monotonic memory instead of hiding it', async () => {
    // A dip at 50–59 (a different kernel algorithm chosen at that size, as cuDNN may).
    const peak = (m: number) => (m >= 50 && m < 60 ? 500 : 1_000 * m);
    const result = await searchCapacity({ min: 1, max: 100 }, 55_000, (m) => ok(peak(m)));
    expect(result.maxMicroBatchSize).toBe(bruteForce({ min: 1, max: 100 }, 55_000, peak));
    expect(result.monotonicityViolations.length).toBeGreaterThan(0);
    expect(result.monotonicityViolations[0]).toMatch(/^micro batch \d+ (fits but \d+ does not|peaks at \d+ bytes, below the \d+ of micro batch \d+)$/);
  });

  it('stops after maxProbes and says where the boundary lies', async () => {
    const result = await searchCapacity({ min: 1, max: 1 << 20 }, 1e9, (m) => (m < 3_000 ? ok(1) : { status: 'oom', bytes: null, reachedBytes: 2e9, reason: 'x' }), { maxProbes: 4 });
    expect(result.probes).toHaveLength(4);
    expect(result.reason).toMatch(/^stopped after 4 probes with the boundary between micro batches \d+ and \d+$/);
  });
});

describe('searchCapacity on a real model (wasm, in process): the boundary equals a scan of every micro batch', () => {
  let ledger: TensorLedger;
  beforeAll(async () => {
    await startBackend('wasm');
    ledger = new TensorLedger();
    ledger.attach();
  });

  it.each(['mlp', 'cnn'])('%s, mixed_float16, peak_tf_modeled_bytes', async (model) => {
    const peakAt = new Map<number, number>();
    const peak = (m: number) => {
      if (!peakAt.has(m)) {
        const run = makeRun(`
name: t
seed: 3
data: { kind: synthetic, samples: 256, evalSamples: 16 }
train: { steps: 2, warmupSteps: 0 }
models:
  mlp: { preset: mlp, input: [64], hidden: [32, 32], classes: 4 }
  cnn: { preset: cnn, input: [12, 12, 1], filters: [4, 8], kernelSize: 3, dense: [16], classes: 4 }
matrix: { model: [${model}], batchSize: [${m}], policy: [mixed_float16] }
`);
        peakAt.set(m, measureMemory(run, buildDataset(run.data, run.model.input, run.model.classes, run.seed), ledger).peakTfModeledBytes);
      }
      return peakAt.get(m)!;
    };
    const range = { min: 1, max: 48 };
    const budget = Math.round((peak(20) + peak(21)) / 2);
    const result = await searchCapacity(range, budget, (m) => ok(peak(m)));
    expect(result.maxMicroBatchSize).toBe(bruteForce(range, budget, peak));
    expect(result.monotonicityViolations).toEqual([]);
    expect(result.probes.length).toBeLessThanOrEqual(6);
  });
});
