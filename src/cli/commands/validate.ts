import { loadAndPlan } from '../load-specs.js';

/** `mpx validate <specs...>`: load, validate and expand each spec; print one line per valid spec. */
export async function validateCommand(args: string[], options: { maxRuns?: number }): Promise<number> {
  const planned = await loadAndPlan(args, options);
  for (const { spec, plan } of planned) {
    process.stdout.write(`${spec.file}: ok (${plan.cells.length} cells, ${plan.runs.length} runs)\n`);
  }
  return 0;
}
