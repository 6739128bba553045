import { describe, expect, it } from 'vitest';
import { formatMpxError, type MpxError } from '../../src/errors.js';
import { divisorsOf, planRuns, type PlanOptions } from '../../src/matrix/plan.js';
import { hashCell, hashRun } from '../../src/matrix/run-id.js';
import { locateProblems, SpecProblems, type SpecLocator } from '../../src/spec/locator.js';
import type { ExperimentSpec, MatrixDef, ModelDef } from '../../src/spec/types.js';
import { experimentSpec, mlpModel } from '../helpers/builders.js';

const model = mlpModel;

/** Where each spec's paths are in its (imagined) YAML file: path (dot-joined) → line:col; a missing path was not written. */
const POSITIONS = new WeakMap<ExperimentSpec, Record<string, string>>();

function spec(overrides: Partial<ExperimentSpec> & { matrix: MatrixDef }, positions: Record<string, string> = {}): ExperimentSpec {
  const s = experimentSpec(overrides);
  POSITIONS.set(s, positions);
  return s;
}

/** A locator over a spec's positions that, like the real one, falls back to the nearest path the file has. */
function locatorOf(s: ExperimentSpec): SpecLocator {
  const positions = POSITIONS.get(s) ?? {};
  return {
    file: s.file,
    position(path) {
      for (let length = path.length; length >= 0; length--) {
        const at = positions[path.slice(0, length).join('.')];
        if (at === undefined) continue;
        const [line, col] = at.split(':').map(Number);
        return { line: line!, col: col! };
      }
      return undefined;
    },
  };
}

/** The problems planRuns throws, located as the CLI locates them. */
function planError(s: ExperimentSpec, options: PlanOptions = {}): MpxError {
  try {
    planRuns(s, options);
  } catch (error) {
    if (error instanceof SpecProblems) return locateProblems(error.problems, locatorOf(s));
    throw error;
  }
  throw new Error('planRuns threw nothing');
}

function matrix(def: Partial<MatrixDef>): MatrixDef {
  return { axisOrder: [], include: [], exclude: [], ...def };
}


describe('planRuns', () => {
  it('builds cells in matrix order and runs cell-major, then by repeat', () => {
    const s = spec({
      matrix: matrix({ model: ['mlp', 'cnn'], accumulationSteps: [1, 4], axisOrder: ['model', 'accumulationSteps'] }),
    });
    const plan = planRuns(s, {});
    expect(plan.specName).toBe('a');
    expect(plan.cells.map((c) => [c.index, c.model, c.accumulationSteps, c.microBatchSize])).toEqual([
      [0, 'mlp', 1, 32],
      [1, 'mlp', 4, 8],
      [2, 'cnn', 1, 32],
      [3, 'cnn', 4, 8],
    ]);
    expect(plan.runs.map((r) => [r.cellIndex, r.repeat])).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
      [2, 0],
      [2, 1],
      [3, 0],
      [3, 1],
    ]);
  });

  it('gives each run everything a worker needs, with ids equal to hashCell/hashRun', () => {
    const s = spec({ matrix: matrix({ policy: ['mixed_float16'], axisOrder: ['policy'] }), repeats: 1 });
    const plan = planRuns(s);
    const run = plan.runs[0];
    const resolved = {
      model: s.models.mlp as ModelDef,
      data: s.data,
      train: s.train,
      policy: 'mixed_float16' as const,
      batchSize: 32,
      accumulationSteps: 1,
      seed: 7,
      backend: 'cpu' as const,
    };
    expect(run).toEqual({
      runId: hashRun(resolved, 0),
      cellId: hashCell(resolved),
      cellIndex: 0,
      specName: 'a',
      repeat: 0,
      seed: 7,
      backend: 'cpu',
      model: s.models.mlp,
      data: s.data,
      train: s.train,
      policy: 'mixed_float16',
      batchSize: 32,
      microBatchSize: 32,
      accumulationSteps: 1,
      memoryLimitBytes: null,
    });
    expect(plan.cells[0]?.cellId).toBe(run?.cellId);
    // The start message carries it as JSON.
    expect(JSON.parse(JSON.stringify(run))).toEqual(run);
  });

  it('keeps cell ids when the matrix is reordered or a model key renamed', () => {
    const a = planRuns(spec({ matrix: matrix({ model: ['mlp', 'cnn'], axisOrder: ['model'] }) }));
    const b = planRuns(
      spec({
        models: { net: model('net', 64), mlp: model('mlp') },
        defaults: { model: 'net', batchSize: 32, policy: 'float32', accumulationSteps: 1, backend: 'cpu' },
        matrix: matrix({ model: ['net', 'mlp'], axisOrder: ['model'] }),
      }),
    );
    expect(b.cells.map((c) => c.cellId)).toEqual([a.cells[1]?.cellId, a.cells[0]?.cellId]);
  });

  it('takes maxRuns from the options over the spec', () => {
    const s = spec({ matrix: matrix({ batchSize: [8, 16, 32], axisOrder: ['batchSize'] }), maxRuns: 5 });
    expect(() => planRuns(s)).toThrow(SpecProblems);
    expect(planRuns(s, { maxRuns: 6 }).runs).toHaveLength(6);
  });

  it('plans a 100,000-cell matrix with unique ids', () => {
    const models = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`m${i}`, model(`m${i}`, 16 + i)]));
    const s = spec({
      models,
      repeats: 2,
      maxRuns: 200_000,
      matrix: matrix({
        model: Object.keys(models),
        batchSize: Array.from({ length: 1000 }, (_, i) => 16 * (i + 1)),
        policy: ['float32', 'mixed_float16'],
        accumulationSteps: [1, 2, 4, 8, 16],
        axisOrder: ['model', 'batchSize', 'policy', 'accumulationSteps'],
      }),
    });
    const plan = planRuns(s);
    expect(plan.cells).toHaveLength(100_000);
    expect(plan.runs).toHaveLength(200_000);
    expect(new Set(plan.cells.map((c) => c.cellId)).size).toBe(100_000);
    expect(new Set(plan.runs.map((r) => r.runId)).size).toBe(200_000);
  });
});

describe('planRuns errors', () => {
  it('batchSize not divisible by accumulationSteps points at the matrix.accumulationSteps item', () => {
    const s = spec(
      { matrix: matrix({ accumulationSteps: [1, 3], axisOrder: ['accumulationSteps'] }) },
      { 'matrix.accumulationSteps.1': '14:25' },
    );
    const error = planError(s);
    expect(error.code).toBe('SPEC_INVALID');
    expect(formatMpxError(error)).toBe(
      'experiments/a.yaml:14:25: batchSize 32 is not divisible by accumulationSteps 3 ' +
        '(the micro batch batchSize/accumulationSteps must be a whole number)\n' +
        '  hint: valid accumulationSteps for batchSize 32: 1, 2, 4, 8, 16, 32',
    );
  });

  it('points at the include entry that introduced the value; problems come in file order', () => {
    const s = spec(
      {
        matrix: matrix({
          model: ['mlp', 'cnn'],
          axisOrder: ['model'],
          include: [{ model: 'cnn', batchSize: 30, accumulationSteps: 4 }, { model: 'mlp', batchSize: 10 }],
        }),
        defaults: { model: 'mlp', batchSize: 32, policy: 'float32', accumulationSteps: 4, backend: 'cpu' },
      },
      { 'matrix.include.0.accumulationSteps': '20:37', 'matrix.include.1.batchSize': '21:30' },
    );
    const error = planError(s);
    expect(formatMpxError(error)).toBe(
      [
        'experiments/a.yaml:20:37: batchSize 30 is not divisible by accumulationSteps 4 ' +
          '(the micro batch batchSize/accumulationSteps must be a whole number)',
        '  hint: valid accumulationSteps for batchSize 30: 1, 2, 3, 5, 6, 10, 15, 30',
        'experiments/a.yaml:21:30: batchSize 10 is not divisible by accumulationSteps 4 ' +
          '(the micro batch batchSize/accumulationSteps must be a whole number)',
        '  hint: valid accumulationSteps for batchSize 10: 1, 2, 5, 10',
      ].join('\n'),
    );
  });

  it('points at a matrix.batchSize item paired with the default accumulationSteps, else at defaults', () => {
    const defaults = { model: 'mlp', batchSize: 30, policy: 'float32', accumulationSteps: 4, backend: 'cpu' } as const;
    const positions = { 'matrix.batchSize.1': '9:20', 'defaults.accumulationSteps': '5:22', matrix: '8:1' };
    const fromMatrix = planError(spec({ defaults, matrix: matrix({ batchSize: [32, 30], axisOrder: ['batchSize'] }) }, positions));
    expect(fromMatrix.where).toBe('experiments/a.yaml:9:20');
    const fromDefaults = planError(spec({ defaults, matrix: matrix({ policy: ['float32'], axisOrder: ['policy'] }) }, positions));
    expect(fromDefaults.where).toBe('experiments/a.yaml:5:22');
  });

  it('reports every distinct divisibility problem together, each once', () => {
    const s = spec(
      {
        matrix: matrix({
          model: ['mlp', 'cnn'],
          batchSize: [32, 30],
          accumulationSteps: [3, 4],
          axisOrder: ['model', 'batchSize', 'accumulationSteps'],
        }),
      },
      { 'matrix.accumulationSteps.0': '3:1', 'matrix.accumulationSteps.1': '4:1' },
    );
    const error = planError(s);
    // 32 % 3, 30 % 4 fail for both models; each is reported once.
    expect([error, ...error.related].map((e) => `${e.where} ${e.message.split(' (')[0]}`)).toEqual([
      'experiments/a.yaml:3:1 batchSize 32 is not divisible by accumulationSteps 3',
      'experiments/a.yaml:4:1 batchSize 30 is not divisible by accumulationSteps 4',
    ]);
    expect(error.related.every((e) => e.code === 'SPEC_INVALID' && e.related.length === 0)).toBe(true);
  });

  it('falls back to the nearest node the YAML has', () => {
    const s = spec(
      {
        defaults: { model: 'mlp', batchSize: 32, policy: 'float32', accumulationSteps: 1, backend: 'cpu' },
        matrix: matrix({ include: [{ model: 'mlp', accumulationSteps: 5 }] }),
      },
      { 'matrix.include.0': '7:7' },
    );
    expect(planError(s).where).toBe('experiments/a.yaml:7:7');
    expect(planError(spec({ matrix: matrix({}) })).where).toBe('experiments/a.yaml');
  });

  it('an unknown model points at where it was named, with a suggestion', () => {
    const s = spec(
      { matrix: matrix({ model: ['mlp', 'cnnn'], axisOrder: ['model'] }) },
      { 'matrix.model.1': '12:18' },
    );
    expect(formatMpxError(planError(s))).toBe(
      'experiments/a.yaml:12:18: model "cnnn" is not defined under models (defined: mlp, cnn)\n' +
        '  hint: did you mean "cnn"?',
    );
  });

  it('an empty matrix is SPEC_INVALID at matrix', () => {
    const positions = { matrix: '8:1' };
    const allExcluded = matrix({ model: ['mlp'], axisOrder: ['model'], exclude: [{ model: 'mlp' }] });
    const excluded = planError(spec({ matrix: allExcluded }, positions));
    expect(excluded.code).toBe('SPEC_INVALID');
    expect(excluded.where).toBe('experiments/a.yaml:8:1');
    expect(excluded.message).toBe(
      'matrix expands to no cells: exclude removes every combination and no include entry adds one',
    );
    expect(planError(spec({ matrix: matrix({}) }, positions)).message).toBe(
      'matrix expands to no cells: it has no axes and no include entries',
    );
  });

  it('too many runs is MATRIX_TOO_LARGE with the flag that fixes it', () => {
    const s = spec(
      {
        repeats: 3,
        matrix: matrix({
          batchSize: Array.from({ length: 100 }, (_, i) => i + 1),
          policy: ['float32', 'mixed_float16', 'mixed_bfloat16'],
          model: ['mlp', 'cnn'],
          axisOrder: ['batchSize', 'policy', 'model'],
          include: [
            { model: 'mlp', batchSize: 1000 },
            { model: 'mlp', batchSize: 2000 },
            { model: 'cnn', batchSize: 1000 },
            { model: 'cnn', batchSize: 2000 },
          ],
        }),
      },
      { matrix: '8:1' },
    );
    const error = planError(s);
    expect(error.code).toBe('MATRIX_TOO_LARGE');
    expect(formatMpxError(error)).toBe(
      'experiments/a.yaml:8:1: matrix expands to 1812 runs (604 cells × 3 repeats), above the limit of 500\n' +
        '  hint: raise it with --max-runs 1812 or maxRuns: 1812 in the spec',
    );
    expect(planError(spec({ ...s, repeats: 1 }), { maxRuns: 100 }).message).toBe(
      'matrix expands to 604 runs (604 cells × 1 repeat), above the limit of 100',
    );
  });

  it('refuses to expand a product too large to hold, before expanding it', () => {
    const values = Array.from({ length: 250 }, (_, i) => i + 1);
    const s = spec({
      matrix: matrix({
        batchSize: values,
        accumulationSteps: values,
        model: values.map(String),
        axisOrder: ['batchSize', 'accumulationSteps', 'model'],
      }),
    });
    const error = planError(s);
    expect(error.code).toBe('MATRIX_TOO_LARGE');
    expect(error.message).toBe(
      'matrix has 15625000 combinations before exclude (250 batchSize × 250 accumulationSteps × 250 model), ' +
        'above the 10000000 that mpx can expand',
    );
  });
});

describe('divisorsOf', () => {
  it('lists divisors ascending', () => {
    expect(divisorsOf(1)).toEqual([1]);
    expect(divisorsOf(36)).toEqual([1, 2, 3, 4, 6, 9, 12, 18, 36]);
    expect(divisorsOf(0)).toEqual([]);
    expect(divisorsOf(2.5)).toEqual([]);
  });
});
