/**
 * The capacity specs of an `mpx run`: each search of each spec through `runCapacitySearches`, its records into the
 * spec's `CapacityResults` (files rewritten after every probe), one line per probe and per search on stderr.
 */
import { capacityRun, type CapacityCell } from '../../matrix/capacity.js';
import { CapacityResults } from '../../results/capacity-results.js';
import { formatCapacityLabel, type CapacityRow, type FinishedSearch } from '../../results/capacity.js';
import type { MachineFacts } from '../../results/spec-results.js';
import { readRunRecords } from '../../results/store.js';
import { runCapacitySearches, type CapacityRunOptions } from '../../runner/capacity.js';
import type { ProbeOutcome } from '../../runner/capacity-search.js';
import { FAILED_STATUSES } from '../../runner/protocol.js';
import { formatByteSize } from '../../spec/size.js';
import type { PlannedSpec } from '../load-specs.js';
import { matchesFilter, type RunFilter } from '../select-runs.js';

export type CapacityPhaseOptions = Omit<CapacityRunOptions, 'recordOf' | 'onRecord' | 'onProbe' | 'onSearch' | 'reuse'> & {
  resultsDir: string;
  machine: MachineFacts;
  force: boolean;
  filter: RunFilter;
};

export interface CapacityPhase {
  /** Searches that ended failed, timed out or crashed. */
  failed: number;
}

/** Runs the searches of every capacity spec (in the order given) and writes their results. */
export async function runCapacityPhase(specs: readonly PlannedSpec[], options: CapacityPhaseOptions): Promise<CapacityPhase> {
  const { resultsDir, machine, force, filter, ...runOptions } = options;
  let failed = 0;
  for (const planned of specs) {
    const { spec } = planned;
    const plan = planned.capacity!;
    const cells = plan.cells.filter((cell) => matchesFilter(filter, capacityRun(spec, cell, 1, 'probe')));
    if (cells.length === 0) continue;
    const results = new CapacityResults({ name: spec.name, file: spec.file, sha256: spec.sha256 }, plan, readRunRecords(resultsDir, spec.name), resultsDir, machine);
    const say = (text: string) => process.stderr.write(`${text}\n`);
    say(`mpx: ${spec.name}: ${cells.length} capacity search(es) for the largest batch under ${formatByteSize(plan.capacity.budgetBytes)}, ${runOptions.jobs} at a time`);
    const reusedByCell = new Map<CapacityCell, number>();
    const finished = await runCapacitySearches(spec, { ...plan, cells }, {
      ...runOptions,
      reuse: !force,
      recordOf: (runId) => results.recordOf(runId),
      onRecord: (record) => results.add(record),
      onProbe: (cell, microBatchSize, outcome, isReused) => {
        if (isReused) reusedByCell.set(cell, (reusedByCell.get(cell) ?? 0) + 1);
        else say(`  ${formatCapacityLabel({ ...cell, requestedBackend: cell.backend })}: ${describeProbe(microBatchSize * cell.accumulationSteps, outcome, plan.capacity.budgetBytes)}`);
      },
      onSearch: (search) => {
        results.finishSearch(search);
        say(`  ${describeSearch(search, reusedByCell.get(search.cell) ?? 0)}`);
      },
    });
    const summary = results.finish();
    // The rows of the searches run now: a filtered run keeps the others' rows, which are not this run's to count.
    const searched = new Set(finished.map((search) => search.cell.cellId));
    const rows = summary.rows.filter((row) => searched.has(row.cellId));
    failed += rows.filter((row) => FAILED_STATUSES.has(row.status)).length;
    const where = summary.written === null ? `${resultsDir}/${spec.name}.capacity.csv unchanged` : `→ ${summary.written.csv}`;
    say(`mpx: ${spec.name}: ${rows.length}/${cells.length} searches done (${countStatuses(rows)}; ${summary.produced} runs new, ${summary.reused} reused) ${where}`);
  }
  return { failed };
}

function describeProbe(batchSize: number, outcome: ProbeOutcome, budgetBytes: number): string {
  if (outcome.bytes !== null) {
    const fits = outcome.bytes <= budgetBytes;
    return `batch ${batchSize} ${fits ? 'fits' : 'does not fit'}: ${formatByteSize(outcome.bytes)} ${fits ? '≤' : '>'} ${formatByteSize(budgetBytes)}`;
  }
  if (outcome.status === 'oom') return `batch ${batchSize} does not fit (${outcome.reason ?? 'oom'})`;
  return `batch ${batchSize}: ${outcome.status} (${outcome.reason ?? 'no reason given'})`;
}

function describeSearch({ cell, result, confirm }: FinishedSearch, reused: number): string {
  const label = formatCapacityLabel({ ...cell, requestedBackend: cell.backend });
  const probes = `${result.probes.length} probe(s)${reused > 0 ? `, ${reused} reused` : ''}`;
  if (result.maxMicroBatchSize === null) return `${label}: ${result.status}: ${result.reason ?? ''} (${probes})`;
  const max = result.maxMicroBatchSize * cell.accumulationSteps;
  const atLeast = result.isRangeLimited ? 'at least ' : '';
  const confirmed = confirm === null ? '' : confirm.status === 'ok' ? `, trains at ${Math.round(confirm.measurements!.samplesPerSecond)} samples/s` : `, confirmation ${confirm.status}`;
  return `${label}: largest batch ${atLeast}${max} (${probes}${confirmed})`;
}

function countStatuses(rows: readonly CapacityRow[]): string {
  const counts = new Map<string, number>();
  for (const row of rows) counts.set(row.status, (counts.get(row.status) ?? 0) + 1);
  return [...counts].map(([status, n]) => `${n} ${status}`).join(', ') || 'none';
}
