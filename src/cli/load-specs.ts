/** Loads and plans every spec named on the command line, reporting the errors of all files before exiting. */
import { MpxError } from '../errors.js';
import { planCapacity, type CapacityPlan } from '../matrix/capacity.js';
import { planRuns } from '../matrix/plan.js';
import type { Plan } from '../matrix/types.js';
import { loadSpec } from '../spec/load.js';
import { combineErrors, locateProblems, SpecProblems, type SpecLocator } from '../spec/locator.js';
import type { BackendChoice, ExperimentSpec, Policy } from '../spec/types.js';
import { resolveSpecFiles } from './files.js';

export interface PlannedSpec {
  spec: ExperimentSpec;
  /** The runs of a run matrix; empty for a capacity spec (its runs are decided while it searches). */
  plan: Plan;
  /** The searches of a capacity spec (`capacity:`); null for a run matrix. */
  capacity: CapacityPlan | null;
  /** Maps paths of the spec to its file, for problems found after loading (e.g. a backend that is not installed). */
  locator: SpecLocator;
}

export async function loadAndPlan(args: string[], options: { maxRuns?: number } = {}): Promise<PlannedSpec[]> {
  const files = await resolveSpecFiles(args);
  const errors: MpxError[] = [];
  const planned: PlannedSpec[] = [];
  const names = new Map<string, string>();
  for (const file of files) {
    try {
      const { spec, locator } = await loadSpec(file);
      const capacity = spec.capacity === null ? null : located(() => planCapacity(spec), locator);
      const plan = capacity !== null ? { specName: spec.name, cells: [], runs: [] } : located(() => planRuns(spec, { maxRuns: options.maxRuns }), locator);
      const other = names.get(spec.name);
      if (other !== undefined) {
        throw locateProblems(
          [{ path: ['name'], message: `name "${spec.name}" is also used by ${other}; both would write ${spec.name}.csv in the results directory`, hint: 'give each spec its own name' }],
          locator,
        );
      }
      names.set(spec.name, file);
      planned.push({ spec, plan, capacity, locator });
    } catch (error) {
      if (!(error instanceof MpxError)) throw error;
      errors.push(error);
    }
  }
  if (errors.length > 0) throw combineErrors(errors);
  return planned;
}

/** Runs a planner, locating its SpecProblems in the file. */
function located<T>(planner: () => T, locator: SpecLocator): T {
  try {
    return planner();
  } catch (error) {
    if (error instanceof SpecProblems) throw locateProblems(error.problems, locator);
    throw error;
  }
}

/** The cells of a spec whatever its kind: matrix cells, or capacity searches (which have no batch size). */
export function cellsOf(planned: PlannedSpec): ReadonlyArray<{ backend: BackendChoice; policy: Policy }> {
  return planned.capacity?.cells ?? planned.plan.cells;
}
