/**
 * Matrix expansion with GitHub Actions `strategy.matrix` semantics:
 * https://docs.github.com/en/actions/using-jobs/using-a-matrix-for-your-jobs
 * Pure: data in, data out.
 */
import { AXES } from '../spec/types.js';
import type { Axis, CellAxes, MatrixDef, MatrixEntry } from '../spec/types.js';

/** Where one axis value of a cell came from, so later checks can point at the YAML node that introduced it. */
export type AxisSource =
  /** `matrix.<axis>[index]` */
  | { kind: 'matrix'; index: number }
  /** `matrix.include[index]` */
  | { kind: 'include'; index: number }
  /** `defaults.<axis>` */
  | { kind: 'defaults' };

/** A cell of the expanded matrix together with the source of each of its values. */
export interface TracedCell {
  axes: CellAxes;
  sources: Record<Axis, AxisSource>;
}

/** A combination while it is being built: axes it lacks are undefined, in `axes` and in `sources`. */
interface Combination {
  axes: MatrixEntry;
  sources: Partial<Record<Axis, AxisSource>>;
}

const DEFAULTS_SOURCE: AxisSource = Object.freeze({ kind: 'defaults' });

/** The matrix's own axes, in the order the YAML gives them (the first varies slowest). */
export function matrixAxes(matrix: MatrixDef): Axis[] {
  const axes: Axis[] = [];
  // axisOrder comes from the loader; axes it forgot still count (in AXES order), and none counts twice.
  for (const axis of [...matrix.axisOrder, ...AXES]) {
    if (matrix[axis] !== undefined && !axes.includes(axis)) axes.push(axis);
  }
  return axes;
}

/** Cells of `matrix`, each completed from `defaults`, in matrix order. See `expandMatrixTraced` for the rules. */
export function expandMatrix(matrix: MatrixDef, defaults: CellAxes): CellAxes[] {
  return expandMatrixTraced(matrix, defaults).map((cell) => cell.axes);
}

/**
 * Expands `matrix` exactly as GitHub Actions does, then completes each combination from `defaults`:
 * 1. the cartesian product of the axes, first axis slowest;
 * 2. `exclude` drops every combination that equals an exclude entry on all of that entry's keys (partial match);
 * 3. each `include` entry, in order, is merged into every original (post-exclude) combination where none of its keys
 *    would overwrite an original matrix value — an axis the matrix defines may only be restated with the same value,
 *    while an axis the matrix lacks is "added" and a later include may overwrite it; an entry merged nowhere is
 *    appended as a combination of its own, and later includes never merge into appended ones;
 * 4. with no axes at all, the include entries are the combinations (step 3 merges nothing, so all are appended).
 */
export function expandMatrixTraced(matrix: MatrixDef, defaults: CellAxes): TracedCell[] {
  const axes = matrixAxes(matrix);
  const isOriginalAxis = new Set<Axis>(axes);
  const excludes = matrix.exclude.map((entry) => ({ entry, keys: entryKeys(entry) }));
  // An empty exclude entry matches everything (every one of its zero keys is equal), as the rule is written.
  const isExcluded = (combo: Combination): boolean =>
    excludes.some(({ entry, keys }) => keys.every((axis) => combo.axes[axis] === entry[axis]));
  const kept = axes.length === 0 ? [] : cartesianProduct(matrix, axes).filter((combo) => !isExcluded(combo));

  const appended: Combination[] = [];
  matrix.include.forEach((entry, index) => {
    const source: AxisSource = { kind: 'include', index };
    const keys = entryKeys(entry);
    // The same value on an original axis is not an overwrite: it is what selects the combinations to extend.
    const originalKeys = keys.filter((axis) => isOriginalAxis.has(axis));
    const addedKeys = keys.filter((axis) => !isOriginalAxis.has(axis));
    let isMerged = false;
    for (const combo of kept) {
      if (!originalKeys.every((axis) => combo.axes[axis] === entry[axis])) continue;
      isMerged = true;
      // Original axes keep their value, and their source: the matrix item introduced it.
      for (const axis of addedKeys) {
        assignAxis(combo.axes, entry, axis);
        combo.sources[axis] = source;
      }
    }
    if (!isMerged) {
      const combo = emptyCombination();
      for (const axis of keys) {
        assignAxis(combo.axes, entry, axis);
        combo.sources[axis] = source;
      }
      appended.push(combo);
    }
  });

  // GitHub would run an identical job twice; a cell measured twice is only a wasted run (and two rows with one cellId),
  // so identical cells (same four values after defaults) are kept once, at their first position.
  const isNew = createCellSet();
  const cells: TracedCell[] = [];
  for (const combos of [kept, appended]) {
    for (const combo of combos) {
      const cell = completeFromDefaults(combo, defaults);
      if (isNew(cell.axes)) cells.push(cell);
    }
  }
  return cells;
}

/** Number of combinations before exclude and include: the size of the cartesian product (0 without axes). */
export function productSize(matrix: MatrixDef): number {
  const axes = matrixAxes(matrix);
  if (axes.length === 0) return 0;
  return axes.reduce((size, axis) => size * (matrix[axis]?.length ?? 0), 1);
}

/** Every combination of the axes' values, first axis slowest, each with its own objects (include mutates them). */
function cartesianProduct(matrix: MatrixDef, axes: Axis[]): Combination[] {
  // Combination n takes item floor(n / stride) % length of each axis; the last axis has stride 1.
  const place: Partial<Record<Axis, { stride: number; length: number; sources: AxisSource[] }>> = {};
  let total = 1;
  for (const axis of [...axes].reverse()) {
    const length = matrix[axis]?.length ?? 0;
    const sources = Array.from({ length }, (_, index): AxisSource => ({ kind: 'matrix', index }));
    place[axis] = { stride: total, length, sources };
    total *= length;
  }
  const indexOf = (axis: Axis, n: number): number => {
    const at = place[axis];
    return at === undefined ? -1 : Math.floor(n / at.stride) % at.length;
  };
  const sourceOf = (axis: Axis, n: number): AxisSource | undefined => place[axis]?.sources[indexOf(axis, n)];
  const combos: Combination[] = [];
  for (let n = 0; n < total; n++) {
    combos.push({
      axes: {
        model: matrix.model?.[indexOf('model', n)],
        batchSize: matrix.batchSize?.[indexOf('batchSize', n)],
        policy: matrix.policy?.[indexOf('policy', n)],
        accumulationSteps: matrix.accumulationSteps?.[indexOf('accumulationSteps', n)],
        backend: matrix.backend?.[indexOf('backend', n)],
      },
      sources: {
        model: sourceOf('model', n),
        batchSize: sourceOf('batchSize', n),
        policy: sourceOf('policy', n),
        accumulationSteps: sourceOf('accumulationSteps', n),
        backend: sourceOf('backend', n),
      },
    });
  }
  return combos;
}

/** Every axis present (as undefined) from the start, so every combination has one object shape. */
function emptyCombination(): Combination {
  return {
    axes: { model: undefined, batchSize: undefined, policy: undefined, accumulationSteps: undefined, backend: undefined },
    sources: { model: undefined, batchSize: undefined, policy: undefined, accumulationSteps: undefined, backend: undefined },
  };
}

/**
 * Returns a function that remembers cells by their values and says whether it sees one for the first time — nested
 * maps, one level per axis, so that a 100,000-cell matrix does not build 100,000 key strings.
 */
function createCellSet(): (axes: CellAxes) => boolean {
  const root = new Map<unknown, unknown>();
  return (axes) => {
    let level = root;
    for (const axis of AXES.slice(0, -1)) {
      let next = level.get(axes[axis]) as Map<unknown, unknown> | undefined;
      if (next === undefined) level.set(axes[axis], (next = new Map<unknown, unknown>()));
      level = next;
    }
    const last = axes[AXES[AXES.length - 1]!];
    if (level.has(last)) return false;
    level.set(last, true);
    return true;
  };
}

/** The axes an include/exclude entry sets (other keys, and keys set to undefined, are not axes). */
function entryKeys(entry: MatrixEntry): Axis[] {
  return AXES.filter((axis) => entry[axis] !== undefined);
}

function assignAxis<A extends Axis>(target: MatrixEntry, from: MatrixEntry, axis: A): void {
  target[axis] = from[axis];
}

/** Fills what a combination lacks from `defaults`, in place (a value and its source are always set together). */
function completeFromDefaults(combo: Combination, defaults: CellAxes): TracedCell {
  const { axes, sources } = combo;
  for (const axis of AXES) {
    if (axes[axis] !== undefined) continue;
    assignAxis(axes, defaults, axis);
    sources[axis] = DEFAULTS_SOURCE;
  }
  // Every axis now has a value and a source; completing in place saves three objects per cell of a large matrix.
  return combo as TracedCell;
}
