/** Time to plan a 100,000-cell matrix: parse, validate and resolve the YAML, expand, check and hash every cell. */
import { planRuns } from '../matrix/plan.js';
import { loadSpecText } from '../spec/load.js';
import { largeMatrixSpec, PLAN_CELLS } from './specs.js';

export interface PlanTiming {
  cells: number;
  /** The first planning in this process (cold JIT, as in `mpx plan`), in ms. */
  firstMs: number;
  /** Best of the repeats after it, in ms. */
  warmMs: number;
}

export function measurePlan(repeats = 3): PlanTiming {
  const yaml = largeMatrixSpec();
  const times: number[] = [];
  let cells = 0;
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    const plan = planRuns(loadSpecText(yaml, 'bench-plan.yaml').spec);
    times.push(performance.now() - started);
    cells = plan.cells.length;
  }
  if (cells !== PLAN_CELLS) throw new Error(`bench: the plan spec expanded to ${cells} cells, expected ${PLAN_CELLS}`);
  return { cells, firstMs: times[0]!, warmMs: Math.min(...times.slice(1)) };
}
