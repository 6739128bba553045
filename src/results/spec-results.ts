/**
 * The results of one spec during an `mpx run`: the records stored earlier plus the ones this run produces. Each new
 * record is appended to this run's record file at once (one write and fsync, constant work whatever the matrix's
 * size, so an interrupt or a crash of mpx never loses a finished run); the CSV and meta.json are rebuilt from the
 * records at most every few seconds, and at the end the record files are merged into `<name>.runs.jsonl`. A shard
 * (`--shard`) only appends: shards on many hosts share one results directory, and `mpx merge` (or any later whole
 * `mpx run`) folds their files. One object owns this state; the run command only feeds it records.
 */
import type { Shard } from '../matrix/shard.js';
import type { Plan, RunConfig } from '../matrix/types.js';
import { FAILED_STATUSES, type StoredRecord } from '../runner/protocol.js';
import { aggregateCells, type ResultRow } from './aggregate.js';
import type { MachineFacts } from './metadata.js';
import { openRecordFile, type RecordFileCell, type RecordFileWriter } from './record-files.js';
import { buildResultsBundle, mergeSpecRecords } from './spec-records.js';
import { writeDerivedResults, type WrittenResults } from './store.js';

export type { MachineFacts } from './metadata.js';

/** How often, at most, the CSV and meta.json are rebuilt while runs finish (and never more than 5% of the time). */
export const REBUILD_INTERVAL_MS = 5_000;

export interface SpecResultsOptions {
  /** This process's shard; null for a whole run (which also merges at the end). */
  shard: Shard | null;
  /** Stamped on every new record. */
  host: string;
  /** The runs this process will start: their cells go in the record file's header. */
  toRun: readonly RunConfig[];
  /** `SLURM_JOB_ID`-style id of the scheduler's job, for the record file's header; null outside one. */
  schedulerJob: string | null;
  /** Milliseconds clock (tests). @default performance.now */
  now?: () => number;
  /** Least time between two rebuilds of the CSV and meta.json while runs finish. @default REBUILD_INTERVAL_MS */
  rebuildIntervalMs?: number;
}

export interface FinishScope {
  /** Runs the summary is about: every planned run for a whole run, the shard's for a shard. */
  isInScope: (runId: string) => boolean;
  /** Of those, the runs whose failures and ooms count (the --filter). */
  isCounted: (runId: string) => boolean;
  /** Stored records of runs the spec no longer has, which the merge drops. */
  hadStale: boolean;
  /** Record files were there when the run started (a whole run merges them even when it ran nothing). */
  hasRecordFiles: boolean;
}

export interface SpecSummary {
  /** Files written at the end (for a shard: its record file alone); null when nothing changed and nothing was written. */
  written: WrittenResults | { records: string } | null;
  /** Of the runs in scope: those with an `ok` record, those with any record, all of them. */
  ok: number;
  recorded: number;
  planned: number;
  /** Records made by this run. */
  produced: number;
  reused: number;
  /** Runs in `isCounted` whose current record failed, timed out or crashed. */
  failed: number;
  /** Of `failed`: records an earlier `mpx run` made (they wait for --retry-failed). */
  failedEarlier: number;
  /** Runs in `isCounted` whose current record is `oom`. */
  oom: number;
  /** A whole run's merge kept record files that other writers still append to. */
  keptFiles: number;
}

export class SpecResults {
  /** run id → latest record: the stored ones, replaced by new ones as they finish. */
  private readonly current: Map<string, StoredRecord>;
  /** Run ids recorded by this run. */
  private readonly produced = new Set<string>();
  private writer: RecordFileWriter | null = null;
  private readonly now: () => number;
  private readonly startedAt = new Date().toISOString();
  private lastRebuildAt: number;
  private lastRebuildMs = 0;

  constructor(
    readonly name: string,
    readonly spec: { file: string; sha256: string },
    readonly plan: Plan,
    stored: readonly StoredRecord[],
    private readonly dir: string,
    private readonly machine: MachineFacts,
    private readonly options: SpecResultsOptions,
  ) {
    this.current = new Map(stored.map((r) => [r.runId, r]));
    this.now = options.now ?? (() => performance.now());
    this.lastRebuildAt = this.now();
  }

  /** Takes a new record: appended to this run's record file at once; the CSV and meta follow within seconds. */
  add(record: StoredRecord): void {
    const stamped: StoredRecord = { ...record, host: this.options.host };
    this.writer ??= this.openWriter();
    this.writer.append(stamped);
    this.current.set(stamped.runId, stamped);
    this.produced.add(stamped.runId);
    if (this.options.shard !== null) return;
    // At most every REBUILD_INTERVAL_MS, and spaced so that rebuilding never takes more than 5% of the time.
    const interval = Math.max(this.options.rebuildIntervalMs ?? REBUILD_INTERVAL_MS, 20 * this.lastRebuildMs);
    if (this.now() - this.lastRebuildAt < interval) return;
    const started = this.now();
    this.rebuild();
    this.lastRebuildAt = this.now();
    this.lastRebuildMs = this.lastRebuildAt - started;
  }

  /**
   * Closes the record file; a whole run then merges every record file of the spec (its own and any left by shards
   * or by an earlier run that died) into the results files, which stay byte for byte as they were when nothing is
   * new. Counts the outcome; null when there is nothing to write or say: no record at all.
   */
  async finish(scope: FinishScope): Promise<SpecSummary | null> {
    this.writer?.close();
    let written: SpecSummary['written'] = null;
    let keptFiles = 0;
    if (this.options.shard !== null) {
      if (this.writer !== null) written = { records: this.writer.path };
    } else if (this.current.size > 0 || scope.hadStale || scope.hasRecordFiles) {
      const merge = await mergeSpecRecords(this.dir, { name: this.name, ...this.spec }, this.plan, { machine: this.machine, produced: this.produced });
      written = merge.written;
      keptFiles = merge.kept.length;
      // Records of other writers (shards still running, files this run had not read) count too.
      for (const record of merge.records) if (!this.current.has(record.runId)) this.current.set(record.runId, record);
    }
    if (this.current.size === 0 && !scope.hadStale) return null;
    let failed = 0;
    let failedEarlier = 0;
    let ok = 0;
    let oom = 0;
    let recorded = 0;
    let planned = 0;
    for (const run of this.plan.runs) {
      if (!scope.isInScope(run.runId)) continue;
      planned += 1;
      const record = this.current.get(run.runId);
      if (record === undefined) continue;
      recorded += 1;
      if (record.status === 'ok') ok += 1;
      if (!scope.isCounted(run.runId)) continue;
      if (record.status === 'oom') oom += 1;
      if (!FAILED_STATUSES.has(record.status)) continue;
      failed += 1;
      if (!this.produced.has(run.runId)) failedEarlier += 1;
    }
    return { written, ok, recorded, planned, produced: this.produced.size, reused: recorded - this.produced.size, failed, failedEarlier, oom, keptFiles };
  }

  /** The rows the CSV holds right now (every current record, old and new), for the summary after the run. */
  rows(): ResultRow[] {
    return aggregateCells(this.plan, [...this.current.values()]);
  }

  private openWriter(): RecordFileWriter {
    const cells = new Map<string, RecordFileCell>();
    const runsPerCell = new Map<string, number>();
    for (const run of this.plan.runs) runsPerCell.set(run.cellId, (runsPerCell.get(run.cellId) ?? 0) + 1);
    for (const run of this.options.toRun) {
      const cell = this.plan.cells[run.cellIndex]!;
      cells.set(cell.cellId, { ...cell, runsPlanned: runsPerCell.get(cell.cellId) ?? 1 });
    }
    return openRecordFile(this.dir, this.name, {
      writer: { host: this.options.host, pid: process.pid, shard: this.options.shard, startedAt: this.startedAt, slurmJob: this.options.schedulerJob },
      spec: { name: this.name, file: this.spec.file, sha256: this.spec.sha256 },
      plannedRuns: this.plan.runs.length,
      cells: [...cells.values()].sort((a, b) => a.index - b.index),
      machine: { ...this.machine, cpus: this.machine.cpus.map((c) => ({ model: c.model })) },
    });
  }

  /** The CSV and meta.json from every current record (the records themselves are in the record file already). */
  private rebuild(): void {
    const records = [...this.current.values()];
    const spec = { name: this.name, file: this.spec.file, sha256: this.spec.sha256 };
    writeDerivedResults(this.dir, this.name, buildResultsBundle(this.plan, records, { ...this.machine, spec, reusedRuns: records.length - this.produced.size }));
  }
}
