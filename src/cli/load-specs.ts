/** Loads and plans every spec named on the command line, reporting the errors of all files before exiting. */
import { MpxError } from '../errors.js';
import { planRuns } from '../matrix/plan.js';
import type { Plan } from '../matrix/types.js';
import { loadSpec } from '../spec/load.js';
import type { ExperimentSpec } from '../spec/types.js';
import { resolveSpecFiles } from './files.js';

export interface PlannedSpec {
  spec: ExperimentSpec;
  plan: Plan;
}

export async function loadAndPlan(args: string[], options: { maxRuns?: number } = {}): Promise<PlannedSpec[]> {
  const files = await resolveSpecFiles(args);
  const errors: MpxError[] = [];
  const planned: PlannedSpec[] = [];
  const names = new Map<string, string>();
  for (const file of files) {
    try {
      const spec = await loadSpec(file);
      const plan = planRuns(spec, { maxRuns: options.maxRuns });
      const other = names.get(spec.name);
      if (other !== undefined) {
        const at = spec.locate(['name']);
        throw new MpxError('SPEC_INVALID', `name "${spec.name}" is also used by ${other}; both would write ${spec.name}.csv in the results directory`, {
          file,
          line: at?.line,
          col: at?.col,
          hint: 'give each spec its own name',
        });
      }
      names.set(spec.name, file);
      planned.push({ spec, plan });
    } catch (error) {
      if (!(error instanceof MpxError)) throw error;
      errors.push(error);
    }
  }
  if (errors.length > 0) {
    const all = errors.flatMap((e) => [e, ...e.related]);
    const [first, ...rest] = all;
    throw new MpxError(first!.code, first!.message, { file: first!.file, line: first!.line, col: first!.col, hint: first!.hint, related: rest.map(stripRelated) });
  }
  return planned;
}

function stripRelated(error: MpxError): MpxError {
  return new MpxError(error.code, error.message, { file: error.file, line: error.line, col: error.col, hint: error.hint });
}
