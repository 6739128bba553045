import { describe, expect, it } from 'vitest';
import { formatMpxError, type MpxError } from '../../src/errors.js';
import { capacityRun, microBatchRange, planCapacity } from '../../src/matrix/capacity.js';
import { locateProblems, SpecProblems } from '../../src/spec/locator.js';
import { loadSpecText, type LoadedSpec } from '../../src/spec/load.js';
import type { CapacityDef } from '../../src/spec/types.js';

const DEFAULT_CAPACITY = '{ budget: 48MiB, batchSize: { min: 8, max: 4096 } }';
const DEFAULT_MATRIX = `
  model: [mlp, cnn]
  policy: [float32, mixed_bfloat16]
  accumulationSteps: [1, 4]`;

const loaded = (capacity = DEFAULT_CAPACITY, extra = '', options: { matrix?: string; models?: string } = {}): LoadedSpec =>
  loadSpecText(
    `
name: cap
data: { kind: synthetic, samples: 64, evalSamples: 16 }
train: { steps: 5, warmupSteps: 1 }
models:
  mlp: ${options.models ?? '{ preset: mlp, input: [16], hidden: [8], classes: 2 }'}
  cnn: { preset: cnn, input: [8, 8, 1], filters: [2], dense: [4], classes: 2 }
capacity: ${capacity}
matrix:${options.matrix ?? DEFAULT_MATRIX}
${extra}
`,
    'cap.yaml',
  );
const spec = (capacity = DEFAULT_CAPACITY, extra = '', options: { matrix?: string; models?: string } = {}) => loaded(capacity, extra, options).spec;

/** The problems planCapacity throws, located in the YAML as `mpx run` locates them. */
function planError({ spec: s, locator }: LoadedSpec): MpxError {
  try {
    planCapacity(s);
  } catch (error) {
    if (error instanceof SpecProblems) return locateProblems(error.problems, locator);
    throw error;
  }
  throw new Error('planCapacity threw nothing');
}

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

  it('a changed range, metric or margin is another search for every cell; a changed model only for its own', () => {
    const ids = planCapacity(spec()).cells.map((c) => c.cellId);
    for (const capacity of [
      '{ budget: 48MiB, batchSize: { min: 8, max: 2048 } }',
      '{ budget: 48MiB, batchSize: { min: 16, max: 4096 } }',
      '{ budget: 48MiB, batchSize: { min: 8, max: 4096 }, metric: peak_modeled_bytes }',
      '{ budget: 48MiB, batchSize: { min: 8, max: 4096 }, margin: 0.1 }',
    ]) {
      const otherIds = planCapacity(spec(capacity)).cells.map((c) => c.cellId);
      expect(otherIds.filter((id) => ids.includes(id)), capacity).toEqual([]);
    }
    const widerMlp = planCapacity(spec(DEFAULT_CAPACITY, '', { models: '{ preset: mlp, input: [16], hidden: [9], classes: 2 }' })).cells;
    expect(widerMlp.map((c) => [c.model, ids.includes(c.cellId)])).toEqual([...Array(4).fill(['mlp', false]), ...Array(4).fill(['cnn', true])]);
  });

  it('merges matrix entries that name the same search, numbering the searches without gaps', () => {
    const plan = planCapacity(
      spec(DEFAULT_CAPACITY, '', {
        matrix: `
  include:
    - { model: mlp }
    - { model: cnn, accumulationSteps: 2 }
    - { model: mlp, policy: float32, accumulationSteps: 1 }
    - { model: cnn, accumulationSteps: 2 }`,
      }),
    );
    expect(plan.cells.map((c) => [c.index, c.model, c.policy, c.accumulationSteps])).toEqual([
      [0, 'mlp', 'float32', 1],
      [1, 'cnn', 'float32', 2],
    ]);
  });

  it('refuses a modeled metric for torch cells, pointing at capacity.metric', () => {
    for (const metric of ['peak_tf_modeled_bytes', 'peak_modeled_bytes']) {
      const error = planError(loaded(`{ budget: 1GiB, metric: ${metric} }`, '  backend: [wasm, torch]'));
      expect(formatMpxError(error)).toBe(
        `cap.yaml:8:35: capacity.metric ${metric} is modeled on the tfjs engines only; a torch cell measures peak_bytes\n` +
          '  hint: use metric: auto (peak_bytes on torch, peak_tf_modeled_bytes on tfjs) or peak_bytes',
      );
    }
    // measured on torch, modeled on tfjs engines only: both are fine
    expect(planCapacity(spec('{ budget: 1GiB, metric: peak_bytes }', '  backend: [wasm, torch]')).cells).toHaveLength(16);
    expect(planCapacity(spec('{ budget: 1GiB, metric: peak_tf_modeled_bytes }', '  backend: [wasm, cpu]')).cells).toHaveLength(16);
  });

  it('an accumulation that leaves no batch of the range to search is an error at its matrix item', () => {
    for (const [range, words] of [
      ['{ min: 1, max: 2 }', '1 to 2'],
      ['{ min: 5, max: 7 }', '5 to 7'],
    ]) {
      const error = planError(loaded(`{ budget: 1MiB, batchSize: ${range} }`));
      expect(formatMpxError(error)).toBe(
        `cap.yaml:12:26: no multiple of accumulationSteps 4 lies in capacity.batchSize (${words}): the effective batch is a micro batch × 4\n` +
          '  hint: widen capacity.batchSize to include a multiple of 4, or remove accumulationSteps 4',
      );
    }
    expect(planCapacity(spec('{ budget: 1MiB, batchSize: { min: 3, max: 4 } }')).cells).toHaveLength(8);
  });

  it('a matrix that expands to nothing is an error at matrix', () => {
    const error = planError(loaded(DEFAULT_CAPACITY, '', { matrix: '\n  policy: [float32]\n  exclude: [{ policy: float32 }]' }));
    expect(formatMpxError(error)).toBe(
      'cap.yaml:10:3: matrix expands to no cells\n  hint: give the matrix an axis (model, policy, accumulationSteps, backend) or an include entry',
    );
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

  it('a probe and a confirmation at the same batch are different runs of the same search', () => {
    const probe = capacityRun(s, cell!, 32, 'probe');
    const confirm = capacityRun(s, cell!, 32, 'confirm');
    expect(probe.runId).not.toBe(confirm.runId);
    expect([probe.cellId, confirm.cellId]).toEqual([cell!.cellId, cell!.cellId]);
    expect([probe.cellIndex, confirm.cellIndex]).toEqual([cell!.index, cell!.index]);
    expect(confirm).toMatchObject({ batchSize: 128, microBatchSize: 32, accumulationSteps: 4, memoryLimitBytes: 96 * 2 ** 20, policy: cell!.policy, repeat: 0 });
  });

  it('confirmSteps sets the confirmation\'s training steps; a longer confirmation is another run, its probes are not', () => {
    const longer = spec('{ budget: 48MiB, batchSize: { min: 8, max: 4096 }, confirmSteps: 10 }');
    const [longCell] = planCapacity(longer).cells.filter((c) => c.accumulationSteps === 4);
    const confirm = capacityRun(longer, longCell!, 32, 'confirm');
    expect(confirm.train).toMatchObject({ steps: 10, warmupSteps: 1 });
    expect(capacityRun(longer, longCell!, 32, 'probe').train).toMatchObject({ steps: 0, warmupSteps: 0 });
  });

  it('the effective batch is the micro batch times the accumulation steps', () => {
    for (const c of planCapacity(s).cells) {
      expect(capacityRun(s, c, 7, 'probe')).toMatchObject({ batchSize: 7 * c.accumulationSteps, microBatchSize: 7, accumulationSteps: c.accumulationSteps });
    }
  });

  it('the micro batch range is the effective range divided by the accumulation steps', () => {
    expect(microBatchRange(s.capacity!, 4)).toEqual({ min: 2, max: 1024 });
    expect(microBatchRange({ ...s.capacity!, minBatchSize: 1 }, 4)).toEqual({ min: 1, max: 1024 });
  });

  it('rounds the micro range inwards, so every micro batch × accumulation lies in the effective range', () => {
    const capacity: CapacityDef = { ...s.capacity!, minBatchSize: 10, maxBatchSize: 1000 };
    expect(microBatchRange(capacity, 1)).toEqual({ min: 10, max: 1000 });
    expect(microBatchRange(capacity, 3)).toEqual({ min: 4, max: 333 }); // 12 … 999
    expect(microBatchRange(capacity, 16)).toEqual({ min: 1, max: 62 }); // 16 … 992
    for (const k of [1, 2, 3, 4, 7, 16]) {
      const { min, max } = microBatchRange(capacity, k);
      expect(min * k).toBeGreaterThanOrEqual(10);
      expect(max * k).toBeLessThanOrEqual(1000);
      expect((min - 1) * k < 10 || min === 1).toBe(true);
      expect((max + 1) * k).toBeGreaterThan(1000);
    }
  });
});
