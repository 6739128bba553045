import { microBatchRange } from '../../matrix/capacity.js';
import { formatByteSize } from '../../spec/size.js';
import { loadAndPlan, type PlannedSpec } from '../load-specs.js';
import { checkTorch } from '../torch.js';

/**
 * `mpx plan <specs...> [--json]`: print the expanded runs without running them. `--json` gives each run's whole
 * RunConfig under `run`: the torch worker runs one such object by itself (`python … --run FILE`). A capacity spec has
 * no runs before it searches: its searches are listed instead (`kind: "capacity-search"` in the JSON).
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
  const searches = planned.flatMap(capacitySearches);
  for (const warning of (await checkTorch(planned, false)).warnings) process.stderr.write(`mpx: ${warning}\n`);
  if (options.json) {
    process.stdout.write(`${JSON.stringify([...runs, ...searches], null, 2)}\n`);
    return 0;
  }
  const matrixSpecs = planned.filter((p) => p.capacity === null);
  if (matrixSpecs.length > 0 || searches.length === 0) {
    const header = ['spec', 'cell', 'run id', 'rep', 'model', 'batch', 'micro', 'policy', 'accum', 'backend'];
    const table = runs.map((r) => [r.spec, String(r.cell), r.runId, String(r.repeat), r.model, String(r.batchSize), String(r.microBatchSize), r.policy, String(r.accumulationSteps), r.backend]);
    process.stdout.write(renderTable(header, table));
    process.stdout.write(`${runs.length} runs in ${matrixSpecs.reduce((n, p) => n + p.plan.cells.length, 0)} cells\n`);
  }
  if (searches.length > 0) {
    const header = ['spec', 'search', 'cell id', 'model', 'policy', 'accum', 'backend', 'micro batch', 'budget', 'metric'];
    const table = searches.map((s) => [
      s.spec,
      String(s.cell),
      s.cellId,
      s.model,
      s.policy,
      String(s.accumulationSteps),
      s.backend,
      `${s.microBatchSize.min}–${s.microBatchSize.max}`,
      formatByteSize(s.budgetBytes),
      s.metric,
    ]);
    if (runs.length > 0 || matrixSpecs.length > 0) process.stdout.write('\n');
    process.stdout.write(renderTable(header, table));
    process.stdout.write(`${searches.length} capacity searches (their probe runs are decided while they search)\n`);
  }
  return 0;
}

/** A capacity spec's searches as `mpx plan` lists them. */
function capacitySearches({ spec, capacity }: PlannedSpec) {
  if (capacity === null) return [];
  return capacity.cells.map((cell) => ({
    kind: 'capacity-search' as const,
    spec: spec.name,
    cell: cell.index,
    cellId: cell.cellId,
    model: cell.model,
    policy: cell.policy,
    accumulationSteps: cell.accumulationSteps,
    backend: cell.backend,
    microBatchSize: microBatchRange(capacity.capacity, cell.accumulationSteps),
    budgetBytes: capacity.capacity.budgetBytes,
    metric: capacity.capacity.metric,
  }));
}

function renderTable(header: string[], table: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return `${[line(header), ...table.map(line)].join('\n')}\n`;
}
