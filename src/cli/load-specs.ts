/** Loads and plans every spec named on the command line, reporting the errors of all files before exiting. */
import { MpxError } from '../errors.js';
import { planRuns } from '../matrix/plan.js';
import type { Plan } from '../matrix/types.js';
import { loadSpec } from '../spec/load.js';
import { combineErrors, locateProblems, SpecProblems, type SpecLocator } from '../spec/locator.js';
import type { ExperimentSpec } from '../spec/types.js';
import { resolveSpecFiles } from './files.js';

export interface PlannedSpec {
  spec: ExperimentSpec;
  plan: Plan;
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
      const plan = planLocated(spec, locator, options.maxRuns);
      const other = names.get(spec.name);
      if (other !== undefined) {
        throw locateProblems(
          [{ path: ['name'], message: `name "${spec.name}" is also used by ${other}; both would write ${spec.name}.csv in the results directory`, hint: 'give each spec its own name' }],
          locator,
        );
      }
      names.set(spec.name, file);
      planned.push({ spec, plan, locator });
    } catch (error) {
      if (!(error instanceof MpxError)) throw error;
      errors.push(error);
    }
  }
  if (errors.length > 0) throw combineErrors(errors);
  return planned;
}

function planLocated(spec: ExperimentSpec, locator: SpecLocator, maxRuns: number | undefined): Plan {
  try {
    return planRuns(spec, { maxRuns });
  } catch (error) {
    if (error instanceof SpecProblems) throw locateProblems(error.problems, locator);
    throw error;
  }
}
