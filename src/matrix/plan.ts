/**
 * Turns a resolved spec into the list of runs: expands the matrix, checks what only the expanded cells show
 * (micro batches, unknown models, size), and attaches content ids. Pure: nothing is read or written; problems are
 * thrown as SpecProblems with paths into the spec, which the caller locates in the file.
 */
import { throwIfProblems, type SpecPath, type SpecProblem } from '../spec/locator.js';
import type { Axis, ExperimentSpec } from '../spec/types.js';
import { didYouMean } from '../util/did-you-mean.js';
import { expandMatrixTraced, matrixAxes, productSize } from './expand.js';
import type { AxisSource, TracedCell } from './expand.js';
import { cellIdFromDigest, createCellHasher, runIdFromDigest } from './run-id.js';
import type { Cell, Plan, RunConfig } from './types.js';

export interface PlanOptions {
  /** Largest number of runs (cells × repeats) allowed; overrides the spec's `maxRuns`. */
  maxRuns?: number;
}

/**
 * Most combinations the cartesian product may have before exclude, whatever the run limit: beyond this, expansion
 * itself would take seconds and gigabytes (four 200-value axes are a few lines of YAML and 1.6e9 combinations), and
 * exclude may only be checked after expanding.
 */
export const MAX_PRODUCT_COMBINATIONS = 10_000_000;

const DIVISOR_HINT_LIMIT = 24;

/** Expands and checks `spec.matrix`, returning its cells (matrix order) and runs (cell-major, then repeat 0, 1, …). */
export function planRuns(spec: ExperimentSpec, options: PlanOptions = {}): Plan {
  const maxRuns = options.maxRuns ?? spec.maxRuns;
  checkProductSize(spec);

  const traced = expandMatrixTraced(spec.matrix, spec.defaults);
  if (traced.length === 0) throwIfProblems([emptyMatrixProblem(spec)]);
  throwIfProblems(checkCells(spec, traced));

  const runCount = traced.length * spec.repeats;
  if (runCount > maxRuns) {
    throwIfProblems([
      {
        code: 'MATRIX_TOO_LARGE',
        path: ['matrix'],
        message:
          `matrix expands to ${runCount} runs (${plural(traced.length, 'cell')} × ${plural(spec.repeats, 'repeat')}), ` +
          `above the limit of ${maxRuns}`,
        hint: `raise it with --max-runs ${runCount} or maxRuns: ${runCount} in the spec`,
      },
    ]);
  }

  // One hasher per model: the model, data and train JSON are serialised once per model, not once per cell.
  const hashers = new Map<string, ReturnType<typeof createCellHasher>>();
  const cells: Cell[] = [];
  const runs: RunConfig[] = [];
  traced.forEach(({ axes }, index) => {
    const model = spec.models[axes.model];
    if (model === undefined) throw new Error(`model ${axes.model} vanished after checking; this is a bug`);
    let hasher = hashers.get(axes.model);
    if (hasher === undefined) {
      hasher = createCellHasher({ model, data: spec.data, train: spec.train, seed: spec.seed });
      hashers.set(axes.model, hasher);
    }
    const digest = hasher(axes);
    const cellId = cellIdFromDigest(digest);
    const microBatchSize = axes.batchSize / axes.accumulationSteps;
    cells.push({ index, cellId, ...axes, microBatchSize });
    for (let repeat = 0; repeat < spec.repeats; repeat++) {
      // model, data and train are shared by reference between runs: they are read, never changed.
      runs.push({
        runId: runIdFromDigest(digest, repeat),
        cellId,
        cellIndex: index,
        specName: spec.name,
        repeat,
        seed: spec.seed,
        backend: axes.backend,
        model,
        data: spec.data,
        train: spec.train,
        policy: axes.policy,
        batchSize: axes.batchSize,
        microBatchSize,
        accumulationSteps: axes.accumulationSteps,
        memoryLimitBytes: spec.memoryLimitBytes,
      });
    }
  });
  return { specName: spec.name, cells, runs };
}

/** Refuses a product too large to expand at all, before spending the time and memory to expand it. */
function checkProductSize(spec: ExperimentSpec): void {
  const size = productSize(spec.matrix);
  if (size <= MAX_PRODUCT_COMBINATIONS) return;
  const sizes = matrixAxes(spec.matrix).map((axis) => `${spec.matrix[axis]?.length ?? 0} ${axis}`);
  throwIfProblems([
    {
      code: 'MATRIX_TOO_LARGE',
      path: ['matrix'],
      message: `matrix has ${size} combinations before exclude (${sizes.join(' × ')}), above the ${MAX_PRODUCT_COMBINATIONS} that mpx can expand`,
      hint: 'split the experiment into several specs, or use fewer values per axis',
    },
  ]);
}

function emptyMatrixProblem(spec: ExperimentSpec): SpecProblem {
  const message =
    matrixAxes(spec.matrix).length === 0
      ? 'matrix expands to no cells: it has no axes and no include entries'
      : 'matrix expands to no cells: exclude removes every combination and no include entry adds one';
  return { path: ['matrix'], message, hint: 'give the matrix an axis (model, batchSize, policy, accumulationSteps) or an include entry' };
}

/**
 * The problems of the expanded cells — an unknown model, a batch that does not split into equal micro batches — each
 * distinct one (place and message) once, as errors that point at the node that introduced it.
 */
function checkCells(spec: ExperimentSpec, cells: TracedCell[]): SpecProblem[] {
  const problems = new Map<string, SpecProblem>();
  const add = (problem: SpecProblem): void => {
    const key = JSON.stringify([problem.path, problem.message]);
    if (!problems.has(key)) problems.set(key, problem);
  };
  const names = Object.keys(spec.models);
  for (const { axes, sources } of cells) {
    if (!Object.hasOwn(spec.models, axes.model)) {
      add({
        path: sourcePath('model', sources.model),
        message: `model "${axes.model}" is not defined under models (defined: ${names.join(', ') || 'none'})`,
        hint: names.length > 0 ? (didYouMean(axes.model, names) ?? 'define it under models, or fix the name') : 'define it under models',
      });
    }
    const { batchSize, accumulationSteps } = axes;
    if (batchSize % accumulationSteps !== 0) {
      add({
        path: divisibilityPath(sources),
        message:
          `batchSize ${batchSize} is not divisible by accumulationSteps ${accumulationSteps} ` +
          '(the micro batch batchSize/accumulationSteps must be a whole number)',
        hint: divisorHint(batchSize),
      });
    }
  }
  return [...problems.values()];
}

/**
 * The node that introduced a batchSize/accumulationSteps pair that does not divide: an include entry that set either
 * (its accumulationSteps first), else the `matrix.accumulationSteps` item, else a `matrix.batchSize` item (paired with
 * the default accumulationSteps, the new value is the batch size), else `defaults`.
 */
function divisibilityPath(sources: Record<Axis, AxisSource>): SpecPath {
  if (sources.accumulationSteps.kind === 'include') return sourcePath('accumulationSteps', sources.accumulationSteps);
  if (sources.batchSize.kind === 'include') return sourcePath('batchSize', sources.batchSize);
  if (sources.accumulationSteps.kind === 'matrix') return sourcePath('accumulationSteps', sources.accumulationSteps);
  if (sources.batchSize.kind === 'matrix') return sourcePath('batchSize', sources.batchSize);
  return ['defaults', 'accumulationSteps'];
}

/** The YAML node that gave a cell's `axis` its value. */
export function sourcePath(axis: Axis, source: AxisSource): SpecPath {
  switch (source.kind) {
    case 'matrix':
      return ['matrix', axis, source.index];
    case 'include':
      return ['matrix', 'include', source.index, axis];
    case 'defaults':
      // The backend axis defaults to the top-level `backend`.
      return axis === 'backend' ? ['backend'] : ['defaults', axis];
  }
}

function divisorHint(batchSize: number): string | undefined {
  const divisors = divisorsOf(batchSize);
  if (divisors.length === 0) return undefined;
  const shown = divisors.slice(0, DIVISOR_HINT_LIMIT).join(', ');
  const more = divisors.length > DIVISOR_HINT_LIMIT ? `, … (${divisors.length} in all)` : '';
  return `valid accumulationSteps for batchSize ${batchSize}: ${shown}${more}`;
}

/** Divisors of a positive whole number, ascending; none for anything else. */
export function divisorsOf(n: number): number[] {
  if (!Number.isSafeInteger(n) || n < 1) return [];
  const small: number[] = [];
  const large: number[] = [];
  for (let d = 1; d * d <= n; d++) {
    if (n % d !== 0) continue;
    small.push(d);
    if (d * d !== n) large.unshift(n / d);
  }
  return [...small, ...large];
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
