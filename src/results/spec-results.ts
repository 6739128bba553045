/**
 * The results of one spec during an `mpx run`: the records stored by earlier runs plus the ones this run produces,
 * written to `<dir>/<name>.*` after every new record (so an interrupt or a crash of mpx itself never loses finished
 * work, and a partial run never drops rows). One object owns this state; the run command only feeds it records.
 */
import type { Plan } from '../matrix/types.js';
import { FAILED_STATUSES, type StoredRecord } from '../runner/protocol.js';
import { aggregateCells, type ResultRow } from './aggregate.js';
import { collectMetadata, type MetadataInput } from './metadata.js';
import { hasSameResults, type ResultsBundle, writeResults, type WrittenResults } from './store.js';

/** What the metadata says about the machine and the installation: gathered once per `mpx run`. */
export type MachineFacts = Omit<MetadataInput, 'spec' | 'date' | 'plannedRuns' | 'records' | 'reusedRuns'>;

export interface SpecSummary {
  /** Files written at the end; null when nothing changed and the files were left as they were. */
  written: WrittenResults | null;
  ok: number;
  planned: number;
  /** Records made by this run. */
  produced: number;
  reused: number;
  /** Runs in `isCounted` whose current record failed, timed out or crashed. */
  failed: number;
  /** Of `failed`: records an earlier `mpx run` made (they wait for --retry-failed). */
  failedEarlier: number;
}

export class SpecResults {
  /** run id → latest record: the stored ones, replaced by new ones as they finish. */
  private readonly current: Map<string, StoredRecord>;
  /** Run ids recorded by this run. */
  private readonly produced = new Set<string>();

  constructor(
    readonly name: string,
    readonly spec: { file: string; sha256: string },
    readonly plan: Plan,
    stored: readonly StoredRecord[],
    private readonly dir: string,
    private readonly machine: MachineFacts,
  ) {
    this.current = new Map(stored.map((r) => [r.runId, r]));
  }

  /** Takes a new record and rewrites the files at once. */
  add(record: StoredRecord): void {
    this.current.set(record.runId, record);
    this.produced.add(record.runId);
    writeResults(this.dir, this.name, this.bundle());
  }

  /**
   * Writes the final files, unless nothing is new and they already hold exactly these records (committed results
   * stay byte for byte as they were), and counts the outcome. `isCounted` limits the failure count (to --filter).
   * `hadStale`: stored records of runs the spec no longer has, which the rewrite drops. null when there is nothing
   * to write or say: no record at all.
   */
  finish(isCounted: (runId: string) => boolean, hadStale: boolean): SpecSummary | null {
    const records = [...this.current.values()];
    if (records.length === 0 && !hadStale) return null;
    const bundle = this.bundle();
    const isUnchanged = this.produced.size === 0 && hasSameResults(this.dir, this.name, bundle);
    const written = isUnchanged ? null : writeResults(this.dir, this.name, bundle);
    let failed = 0;
    let failedEarlier = 0;
    for (const run of this.plan.runs) {
      const record = this.current.get(run.runId);
      if (record === undefined || !FAILED_STATUSES.has(record.status) || !isCounted(run.runId)) continue;
      failed += 1;
      if (!this.produced.has(run.runId)) failedEarlier += 1;
    }
    return {
      written,
      ok: records.filter((r) => r.status === 'ok').length,
      planned: this.plan.runs.length,
      produced: this.produced.size,
      reused: records.length - this.produced.size,
      failed,
      failedEarlier,
    };
  }

  /** The rows the CSV holds right now (every current record, old and new), for the summary after the run. */
  rows(): ResultRow[] {
    return aggregateCells(this.plan, [...this.current.values()]);
  }

  /** Everything the files hold right now: all current records of the plan, old and new. */
  private bundle(): ResultsBundle {
    const records = [...this.current.values()];
    return {
      rows: aggregateCells(this.plan, records),
      records,
      metadata: collectMetadata({
        ...this.machine,
        spec: { name: this.name, file: this.spec.file, sha256: this.spec.sha256 },
        date: new Date(),
        plannedRuns: this.plan.runs.length,
        records,
        reusedRuns: records.length - this.produced.size,
      }),
    };
  }
}
