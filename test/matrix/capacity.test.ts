import { describe, expect, it } from 'vitest';
import { capacityRun, microBatchRange, planCapacity } from '../../src/matrix/capacity.js';
import { SpecProblems } from '../../src/spec/locator.js';
import { loadSpecText } from '../../src/spec/load.js';

const spec = (capacity = '{ budget: 48MiB, batchSize: { min: 8, max: 4096 } }', extra = '') =>
  loadSpecText(
    `
name: cap
data: { kind: synthetic, samples: 64, evalSamples: 16 }
train: { steps: 5, warmupSteps: 1 }
models:
  mlp: { preset: mlp, input: [16], hidden: [8], classes: 2 }
  cnn: { preset: cnn, input: [8, 8, 1], filters: [2], dense: [4], classes: 2 }
capacity: ${capacity}
matrix:
  model: [mlp, cnn]
  policy: [float32, mixed_bfloat16]
  accumulationSteps: [1, 4]
${extra}
`,
    'cap.yaml',
  ).spec;

describe('planCapacity', () => {
  it('has one search per model × policy × accumulation × backend, in matrix order, without a batch size', () => {
    const plan = planCapacity(spec());
    expect(plan.cells.map((c) => [c.index, c.model, c.policy, c.accumulationSteps, c.backend])).toEqual([
      [0, 'mlp', 'float32', 1, 'auto'],
      [1, 'mlp', 'float32', 4, 'auto'],
      [2, 'mlp', 'mixed_bfloat16', 1, 'auto'],
      [3, 'mlp', 'mixed_bfloat16', 4, 'auto'],
      [4, 'cnn', 'float32', 1, 'auto'],
      [5, 'cnn', 'float32', 4, 'auto'],
      [6, 'cnn', 'mixed_bfloat16', 1, 'auto'],
      [7, 'cnn', 'mixed_bfloat16', 4, 'auto'],
    ]);
    expect(plan.capacity).toEqual({ budgetBytes: 48 * 2 ** 20, metric: 'auto', minBatchSize: 8, maxBatchSize: 4096, confirmSteps: 3, margin: 0.05 });
  });

  it('cell ids follow the search: another budget is another search, the same spec the same ids', () => {
    const ids = planCapacity(spec()).cells.map((c) => c.cellId);
    expect(new Set(ids).size).toBe(8);
    expect(planCapacity(spec()).cells.map((c) => c.cellId)).toEqual(ids);
    expect(planCapacity(spec('{ budget: 64MiB, batchSize: { min: 8, max: 4096 } }')).cells[0]!.cellId).not.toBe(ids[0]);
  });

  it('refuses a modeled metric for torch cells, pointing at capacity.metric', () => {
    const torch = spec('{ budget: 1GiB, metric: peak_tf_modeled_bytes }', '  backend: [wasm, torch]');
    expect(() => planCapacity(torch)).toThrow(SpecProblems);
  });
});

describe('capacity runs', () => {
  const s = spec();
  const [cell] = planCapacity(s).cells.filter((c) => c.accumulationSteps === 4);

  it('a probe trains nothing (steps 0) at one micro batch, stopped at twice the budget', () => {
    const probe = capacityRun(s, cell!, 32, 'probe');
    expect(probe).toMatchObject({ batchSize: 128, microBatchSize: 32, accumulationSteps: 4, memoryLimitBytes: 96 * 2 ** 20, train: { steps: 0, warmupSteps: 0 } });
    const confirm = capacityRun(s, cell!, 32, 'confirm');
    expect(confirm.train).toMatchObject({ steps: 3, warmupSteps: 1 });
    expect(new Set([probe.runId, confirm.runId, capacityRun(s, cell!, 33, 'probe').runId]).size).toBe(3);
    expect(capacityRun(s, cell!, 32, 'probe').runId).toBe(probe.runId);
  });

  it('the micro batch range is the effective range divided by the accumulation steps', () => {
    expect(microBatchRange(s.capacity!, 4)).toEqual({ min: 2, max: 1024 });
    expect(microBatchRange({ ...s.capacity!, minBatchSize: 1 }, 4)).toEqual({ min: 1, max: 1024 });
  });
});
