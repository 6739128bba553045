import { loadAndPlan } from '../load-specs.js';
import { checkTorch } from '../torch.js';

/**
 * `mpx plan <specs...> [--json]`: print the expanded runs without running them. `--json` gives each run's whole
 * RunConfig under `run`: the torch worker runs one such object by itself (`python … --run FILE`).
 */
export async function planCommand(args: string[], options: { json: boolean; maxRuns?: number }): Promise<number> {
  const planned = await loadAndPlan(args, options);
  const runs = planned.flatMap(({ spec, plan }) =>
    plan.runs.map((run) => ({
      spec: spec.name,
      cell: run.cellIndex,
      cellId: run.cellId,
      runId: run.runId,
      repeat: run.repeat,
      model: plan.cells[run.cellIndex]!.model,
      batchSize: run.batchSize,
      microBatchSize: run.microBatchSize,
      policy: run.policy,
      accumulationSteps: run.accumulationSteps,
      backend: run.backend,
      steps: run.train.steps,
      run,
    })),
  );
  for (const warning of (await checkTorch(planned, false)).warnings) process.stderr.write(`mpx: ${warning}\n`);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);
    return 0;
  }
  const header = ['spec', 'cell', 'run id', 'rep', 'model', 'batch', 'micro', 'policy', 'accum', 'backend'];
  const table = runs.map((r) => [r.spec, String(r.cell), r.runId, String(r.repeat), r.model, String(r.batchSize), String(r.microBatchSize), r.policy, String(r.accumulationSteps), r.backend]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write(`${[line(header), ...table.map(line)].join('\n')}\n`);
  process.stdout.write(`${runs.length} runs in ${planned.reduce((n, p) => n + p.plan.cells.length, 0)} cells\n`);
  return 0;
}
