/**
 * The results of one capacity spec during an `mpx run`: the probe records stored before plus the new ones, and the
 * searches finished so far; `<name>.runs.jsonl`, `.capacity.csv` and `.meta.json` are rewritten after every new
 * record and every finished search, so an interrupt loses no probe (the next run replays the searches from them).
 */
import type { CapacityPlan } from '../matrix/capacity.js';
import type { StoredRecord } from '../runner/protocol.js';
import { readFileSync } from 'node:fs';
import { aggregateCapacity, CAPACITY_SUFFIX, parseCapacityCsv, type CapacityRow, type FinishedSearch } from './capacity.js';
import { collectMetadata } from './metadata.js';
import type { MachineFacts } from './spec-results.js';
import { type CapacityBundle, capacityPaths, hasSameCapacityResults, renderCapacityResults, writeCapacityResults, type WrittenResults } from './store.js';

export interface CapacitySummary {
  /** Files written at the end; null when nothing changed. */
  written: WrittenResults | null;
  rows: CapacityRow[];
  /** Probe and confirmation runs made by this `mpx run` / reused from earlier ones. */
  produced: number;
  reused: number;
}

export class CapacityResults {
  private readonly current: Map<string, StoredRecord>;
  private readonly produced = new Set<string>();
  private readonly searches = new Map<number, FinishedSearch>();
  /** Rows of the CSV as an earlier run left it, for searches of the plan; kept for searches not run now (--filter). */
  private readonly earlierRows: CapacityRow[];
  /** The files as they were before this run, to tell at the end whether anything changed. */
  private readonly before: { csv: string; runs: string } | null;

  constructor(
    readonly spec: { name: string; file: string; sha256: string },
    readonly plan: CapacityPlan,
    stored: readonly StoredRecord[],
    private readonly dir: string,
    private readonly machine: MachineFacts,
  ) {
    this.current = new Map(stored.map((r) => [r.runId, r]));
    this.before = readCapacityFiles(dir, spec.name);
    const cellIds = new Set(plan.cells.map((c) => c.cellId));
    this.earlierRows = this.before === null ? [] : readCapacityRows(this.before.csv, spec.name, dir).filter((r) => cellIds.has(r.cellId));
  }

  /** The stored record of a run, if any (a search replays from these before it starts a worker). */
  recordOf(runId: string): StoredRecord | undefined {
    return this.current.get(runId);
  }

  add(record: StoredRecord): void {
    this.current.set(record.runId, record);
    this.produced.add(record.runId);
    this.save();
  }

  finishSearch(search: FinishedSearch): void {
    this.searches.set(search.cell.index, search);
    this.save();
  }

  /** Rewrites the files unless the CSV and the records are already what they hold (a replayed search changes nothing, not even meta.json's date). */
  private save(): void {
    const bundle = this.bundle();
    if (!hasSameCapacityResults(this.dir, this.spec.name, bundle)) writeCapacityResults(this.dir, this.spec.name, bundle);
  }

  /** Writes the final files (unless they hold exactly what they held before this run) and sums up. */
  finish(): CapacitySummary {
    const bundle = this.bundle();
    const text = renderCapacityResults(bundle);
    const isUnchanged = this.before !== null && this.before.csv === text.csv && this.before.runs === text.runs;
    // The files always end as the bundle says (an interrupted or filtered run's last write may be a partial one).
    const paths = hasSameCapacityResults(this.dir, this.spec.name, bundle) ? capacityPaths(this.dir, this.spec.name) : writeCapacityResults(this.dir, this.spec.name, bundle);
    // Records of the searches run now only: those of searches not selected were not reused by this run.
    const searched = [...this.searches.values()].flatMap((s) => [...s.probeRecords, ...(s.confirm === null ? [] : [s.confirm])]);
    return {
      written: isUnchanged ? null : paths,
      rows: [...bundle.rows],
      produced: this.produced.size,
      reused: new Set(searched.filter((r) => !this.produced.has(r.runId)).map((r) => r.runId)).size,
    };
  }

  /** The records the finished searches used: a stale probe of an older search (another budget) is dropped. */
  private usedRecords(): StoredRecord[] {
    const used = new Set<StoredRecord>();
    for (const search of this.searches.values()) {
      for (const record of search.probeRecords) used.add(record);
      if (search.confirm !== null) used.add(search.confirm);
    }
    // Searches not finished now (interrupted, or not selected) keep every record of theirs: the next run resumes from them.
    const finishedCells = new Set([...this.searches.values()].map((s) => s.cell.cellId));
    const planCells = new Set(this.plan.cells.map((c) => c.cellId));
    for (const record of this.current.values()) if (!finishedCells.has(record.cellId) && planCells.has(record.cellId)) used.add(record);
    return [...used];
  }

  private bundle(): CapacityBundle {
    const records = this.usedRecords();
    return {
      rows: aggregateCapacity(this.plan.capacity, [...this.searches.values()], this.earlierRows),
      records,
      metadata: collectMetadata({
        ...this.machine,
        spec: this.spec,
        date: new Date(),
        plannedRuns: records.length,
        records,
        reusedRuns: records.filter((r) => !this.produced.has(r.runId)).length,
      }),
    };
  }
}

function readCapacityFiles(dir: string, specName: string): { csv: string; runs: string } | null {
  const paths = capacityPaths(dir, specName);
  try {
    return { csv: readFileSync(paths.csv, 'utf8'), runs: readFileSync(paths.runs, 'utf8') };
  } catch {
    return null;
  }
}

function readCapacityRows(csv: string, specName: string, dir: string): CapacityRow[] {
  return parseCapacityCsv(csv, `${specName}${CAPACITY_SUFFIX}`, capacityPaths(dir, specName).csv).rows;
}
