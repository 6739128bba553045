import { loadAndPlan } from '../load-specs.js';
import { checkTorch } from '../torch.js';

/**
 * `mpx validate <specs...>`: load, validate and expand each spec; print one line per valid spec. Cells this machine
 * cannot run (torch without PyTorch, a policy its device lacks) are warnings on stderr, not errors.
 */
export async function validateCommand(args: string[], options: { maxRuns?: number }): Promise<number> {
  const planned = await loadAndPlan(args, options);
  for (const { spec, plan } of planned) {
    process.stdout.write(`${spec.file}: ok (${plan.cells.length} cells, ${plan.runs.length} runs)\n`);
  }
  for (const warning of (await checkTorch(planned, false)).warnings) process.stderr.write(`mpx: ${warning}\n`);
  return 0;
}
