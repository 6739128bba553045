/**
 * The pre-flight bound: exact on hand-computed models, every ceiling in its turn, and — the property that makes it
 * safe — never above what a run really held: checked on every committed results row (tfjs and torch).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { planRuns } from '../../src/matrix/plan.js';
import { parseResultsCsv } from '../../src/results/table.js';
import { engineCeiling, preflight, staticMemoryBound, WASM_HEAP_MAX_BYTES, type MemoryCeilings } from '../../src/runner/preflight.js';
import { loadSpec } from '../../src/spec/load.js';
import { parameterTensorSizes } from '../../src/spec/model-shapes.js';
import type { OptimizerDef } from '../../src/spec/types.js';
import { mlpModel, runConfig, TRAIN } from '../helpers/builders.js';

const NONE: MemoryCeilings = { budgetBytes: null, engine: null, workerShare: null };
const adam = { ...TRAIN, optimizer: { name: 'adam' as const, learningRate: 0.001, momentum: 0 } };

describe('staticMemoryBound', () => {
  it('is the fp32 state plus the larger of the gradients and the input micro-batch', () => {
    // mlpModel: 8 → 32 → 2, P = 8·32 + 32 + 32·2 + 2 = 354
    const P = 354;
    const small = staticMemoryBound(runConfig('a', { model: mlpModel(), train: adam, microBatchSize: 4, batchSize: 4, accumulationSteps: 1 }));
    expect(small).toEqual({ bytes: 4 * P * 3 + 4 * P, parameterCount: P, restingBytes: 12 * P, gradientBytes: 4 * P, inputBytes: 4 * 8 * 4, largestTensorBytes: 8 * 32 * 4 });
    // a micro-batch larger than the gradients: the input decides; accumulation adds 4P of accumulators
    const large = staticMemoryBound(runConfig('b', { model: mlpModel(), train: adam, batchSize: 256, microBatchSize: 64, accumulationSteps: 4 }));
    expect(large.restingBytes).toBe(16 * P);
    expect(large.bytes).toBe(16 * P + 64 * 8 * 4);
    // SGD keeps no slots
    expect(staticMemoryBound(runConfig('c', { model: mlpModel(), microBatchSize: 4, accumulationSteps: 1 })).restingBytes).toBe(4 * P);
  });

  it('counts AdamW\'s and RMSprop\'s slots as Keras makes them, and batch norm\'s moving statistics as fp32 state without slots', () => {
    // 8 → dense 32 (no bias) → batch norm (γ, β; moving mean, variance) → dense 2: P = 256 + 64 + 66 = 386, S = 64
    const model = {
      ...mlpModel(),
      layers: [
        { type: 'dense' as const, units: 32, activation: 'linear' as const, useBias: false },
        { type: 'batchNormalization' as const, momentum: 0.99, epsilon: 0.001 },
        { type: 'dense' as const, units: 2, activation: 'softmax' as const, useBias: true },
      ],
    };
    const [P, S] = [386, 64];
    const resting = (optimizer: Omit<OptimizerDef, 'learningRate' | 'momentum'> & { momentum?: number }) =>
      staticMemoryBound(runConfig('n', { model, train: { ...TRAIN, optimizer: { learningRate: 0.001, momentum: 0, ...optimizer } }, microBatchSize: 4, accumulationSteps: 1 }));
    expect(resting({ name: 'adamw', weightDecay: 0.004 }).restingBytes).toBe(4 * P * 3 + 4 * S);
    expect(resting({ name: 'rmsprop' }).restingBytes).toBe(4 * P * 2 + 4 * S);
    expect(resting({ name: 'rmsprop', momentum: 0.9, centered: true }).restingBytes).toBe(4 * P * 4 + 4 * S);
    const bound = resting({ name: 'sgd' });
    expect([bound.parameterCount, bound.gradientBytes, bound.bytes]).toEqual([P, 4 * P, 4 * P + 4 * S + 4 * P]);
  });
});

describe('preflight', () => {
  const run = runConfig('a', { model: mlpModel(), train: adam, microBatchSize: 4, batchSize: 4, accumulationSteps: 1 }); // bound 5,664 bytes
  it('lets a run through when it fits every ceiling', () => {
    expect(preflight(run, NONE)).toBeNull();
    expect(preflight(run, { budgetBytes: 5_664, engine: engineCeiling('wasm'), workerShare: { limitBytes: 5_664, source: 'test' } })).toBeNull();
  });

  it('names the ceiling, the bytes and the fix: the engine first, then the budget, then the machine share', () => {
    const engine = preflight(run, { ...NONE, engine: { limitBytes: 5_000, what: 'what the wasm backend can address (a wasm32 heap)' }, budgetBytes: 1 })!;
    expect(engine.ceiling).toBe('engine');
    expect(engine.reason).toBe(
      'pre-flight: needs at least 5.53 KiB before any activation (354 parameters: 4.15 KiB of fp32 weights, optimizer slots and accumulators, ' +
        'plus 1.38 KiB of gradients), above what the wasm backend can address (a wasm32 heap): 4.88 KiB; no worker was started. Use backend: torch or tensorflow, or a smaller model.',
    );
    const budget = preflight(run, { ...NONE, budgetBytes: 5_663, workerShare: { limitBytes: 1, source: 'x' } })!;
    expect([budget.ceiling, budget.reachedBytes, budget.limitBytes]).toEqual(['budget', 5_664, 5_663]);
    expect(budget.reason).toMatch(/no worker was started\. Raise memoryLimit, or use a smaller model or batch\.$/);
    // a capacity probe (steps 0) over its budget is the search's answer, not a setting to change
    const probe = preflight({ ...run, train: { ...run.train, steps: 0 } }, { ...NONE, budgetBytes: 5_663 })!;
    expect(probe.reason).toMatch(/no worker was started\. This batch does not fit capacity\.budget\.$/);
    const share = preflight(run, { ...NONE, workerShare: { limitBytes: 4_096, source: '8.00 KiB total ÷ 2 jobs' } })!;
    expect(share.ceiling).toBe('worker-share');
    expect(share.reason).toContain("above this worker's share of the machine's memory (8.00 KiB total ÷ 2 jobs): 4.00 KiB; no worker was started. Use fewer --jobs, set --worker-memory");
  });

  it('refuses a model whose single largest tensor cannot be addressed even when a bound would', () => {
    const wide = { ...mlpModel(), input: [65536], layers: [{ type: 'dense' as const, units: 65536, activation: 'relu' as const, useBias: true }, { type: 'dense' as const, units: 2, activation: 'softmax' as const, useBias: true }] };
    const verdict = preflight(runConfig('w', { model: wide, microBatchSize: 1, accumulationSteps: 1 }), { ...NONE, engine: engineCeiling('wasm') })!;
    expect(verdict.ceiling).toBe('engine');
    expect(verdict.limitBytes).toBe(WASM_HEAP_MAX_BYTES);
    expect(engineCeiling('torch')).toBeNull();
  });
});

/** Every committed spec with its results: the bound and the parameter count against what the runs recorded. */
const COMMITTED = ['seed-claims', 'seed-question', 'calibration/runtime', 'calibration/runtime-tokens', 'ci/smoke'];

describe.each(COMMITTED)('on the committed results of experiments/%s.yaml', (name) => {
  it('the parameter count from the shapes equals the engines\' params, and the bound is below every recorded peak', async () => {
    const { spec } = await loadSpec(new URL(`../../experiments/${name}.yaml`, import.meta.url).pathname);
    const plan = planRuns(spec);
    const csv = readFileSync(new URL(`../../results/${spec.name}.csv`, import.meta.url), 'utf8');
    const rows = parseResultsCsv(csv, spec.name, spec.name).rows.filter((row) => row.status === 'ok');
    expect(rows.length).toBeGreaterThan(0);
    const runOf = new Map(plan.runs.map((run) => [run.cellId, run]));
    for (const row of rows) {
      const run = runOf.get(row.cellId)!;
      const bound = staticMemoryBound(run);
      expect(parameterTensorSizes(run.model).reduce((a, b) => a + b, 0)).toBe(row.paramCount);
      expect(bound.bytes).toBeLessThanOrEqual(row.peakBytes!);
      if (row.peakTfModeledBytes !== null) expect(bound.bytes).toBeLessThanOrEqual(row.peakTfModeledBytes);
      expect(bound.restingBytes).toBe(row.restingBytes);
    }
  });
});
