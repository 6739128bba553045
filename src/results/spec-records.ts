/**
 * All the records of one spec in a results directory, wherever they are: `<name>.runs.jsonl` (merged) and the record
 * files under `<name>.records/` that runs and shards append to (`record-files.ts`). The one place that reads them, for
 * `mpx run` (resume), `mpx merge`, `mpx diff`, reports and the Slurm status; and the merge that folds the files into
 * `runs.jsonl` and rebuilds the CSV and meta.json from the records.
 *
 * Records are keyed by run id: a later record of a run replaces an earlier one (merged first, then record files by
 * their writer's start), so everything derived — rows, counts, metadata — is rebuilt from records, never patched.
 */
import { hostname } from 'node:os';
import { readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../matrix/types.js';
import { acquireResultsLock, isProcessAlive, type ResultsLock } from '../runner/lock.js';
import type { StoredRecord } from '../runner/protocol.js';
import { MpxError } from '../errors.js';
import { aggregateCells, sortRecords } from './aggregate.js';
import { CAPACITY_SUFFIX } from './capacity.js';
import { COLUMNS } from './columns.js';
import { csvExporter } from './export/index.js';
import { collectMetadata, parseRunMetadata, type MachineFacts, type RunMetadata } from './metadata.js';
import { readRecordFiles, recordsDir, type RecordFile, type RecordFileCell } from './record-files.js';
import { hasSameResults, readRunRecords, syncDirectory, writeResults, type ResultsBundle, type WrittenResults } from './store.js';
import { parseResultsCsv, RUNS_SCHEMA, type ResultTable } from './table.js';

export interface SpecRecords {
  /** The records of `<name>.runs.jsonl`. */
  merged: StoredRecord[];
  /** The record files, oldest writer first. */
  files: RecordFile[];
  /** Every record: merged first, then the record files' in order. A later record of a run replaces an earlier one. */
  all: StoredRecord[];
}

/**
 * Reads every record of a spec. The record files are read before `runs.jsonl`: a merge that runs meanwhile writes
 * `runs.jsonl` before it removes the files it folded, so no record can slip between the two reads.
 */
export function readSpecRecords(dir: string, specName: string): SpecRecords {
  const files = readRecordFiles(dir, specName);
  const merged = readRunRecords(dir, specName);
  return { merged, files, all: [...merged, ...files.flatMap((f) => f.records)] };
}

/** The latest record of each run id, in the order of `all`'s first appearance. */
export function latestByRunId(all: readonly StoredRecord[]): Map<string, StoredRecord> {
  const latest = new Map<string, StoredRecord>();
  for (const record of all) latest.set(record.runId, record);
  return latest;
}

export interface MergeOptions {
  /** The machine facts for meta.json; default: those of the newest record file's writer. */
  machine?: MachineFacts;
  /** Run ids recorded by the calling `mpx run` (meta.json counts the others as reused); default: records from record files are new. */
  produced?: ReadonlySet<string>;
  /** Whether a record file's writer is alive (same host only). @default isProcessAlive */
  isAlive?: (pid: number) => boolean;
  /** Longest wait for another merge of the same spec to finish. @default 120 s */
  lockTimeoutMs?: number;
}

export interface MergeOutcome {
  /** Files written; null when they already held exactly these records (or there was nothing to merge). */
  written: WrittenResults | null;
  /** The current record of every planned run that has one, in matrix order. */
  records: StoredRecord[];
  /** Of `records`: taken from record files by this merge. */
  fromFiles: number;
  /** Record files folded and removed. */
  removed: string[];
  /** Record files folded but kept: their writer may still append (no footer, and alive or on another host). */
  kept: RecordFile[];
  /** Records of runs the spec no longer has, left out. */
  stale: number;
}

/**
 * Everything derived from a spec's records — the CSV rows and the metadata — for the files `writeResults` writes. The
 * one place that derives them, for the merge and for the rebuilds while runs finish: an output added later (another
 * file per spec) is derived here, from the records, and so stays right through shards, resume and merges.
 */
export function buildResultsBundle(
  plan: Plan,
  records: readonly StoredRecord[],
  facts: MachineFacts & { spec: { name: string; file: string; sha256: string }; reusedRuns: number },
): ResultsBundle {
  return {
    rows: aggregateCells(plan, records),
    records,
    metadata: collectMetadata({ ...facts, date: new Date(), plannedRuns: plan.runs.length, records }),
  };
}

/** How long a merge lock may be held before another host takes it over: a merge takes well under a second. */
const MERGE_LOCK_STALE_MS = 10 * 60_000;

/**
 * Folds the record files of a spec into `<name>.runs.jsonl`, rebuilds `<name>.csv` and `.meta.json` from every
 * record of `plan` (records of runs the plan no longer has are dropped), and removes the folded files whose writers
 * are done. Atomic (each file replaced by rename, runs.jsonl first; files removed only after) and idempotent (a
 * second merge, or one after a crash at any step, writes the same bytes). Merges of one spec take turns (a lock
 * file held for the merge alone); writers are never blocked. Throws MpxError RESULTS_IO / RESULTS_LOCKED.
 */
export async function mergeSpecRecords(
  dir: string,
  spec: { name: string; file: string; sha256: string },
  plan: Plan,
  options: MergeOptions = {},
): Promise<MergeOutcome> {
  const lock = await acquireMergeLock(dir, spec.name, options.lockTimeoutMs ?? 120_000);
  try {
    return foldRecords(dir, spec, plan, options);
  } finally {
    lock.release();
  }
}

function foldRecords(dir: string, spec: { name: string; file: string; sha256: string }, plan: Plan, options: MergeOptions): MergeOutcome {
  const { merged, files } = readSpecRecords(dir, spec.name);
  const planned = new Map(plan.runs.map((run) => [run.runId, run]));
  const current = new Map<string, StoredRecord>();
  const fromFile = new Set<string>();
  let stale = 0;
  const take = (record: StoredRecord, isFromFile: boolean) => {
    const run = planned.get(record.runId);
    if (run === undefined) {
      stale += 1;
      return;
    }
    current.set(record.runId, record.cellIndex === run.cellIndex ? record : { ...record, cellIndex: run.cellIndex });
    if (isFromFile) fromFile.add(record.runId);
    else fromFile.delete(record.runId);
  };
  for (const record of merged) take(record, false);
  for (const file of files) for (const record of file.records) take(record, true);

  const records = sortRecords([...current.values()]);
  const machine = options.machine ?? newestMachine(files);
  let written: WrittenResults | null = null;
  if (machine !== undefined && (records.length > 0 || stale > 0)) {
    const produced = options.produced;
    const reused = produced === undefined ? records.length - fromFile.size : records.filter((r) => !produced.has(r.runId)).length;
    const bundle = buildResultsBundle(plan, records, { ...machine, spec, reusedRuns: reused });
    if (!hasSameResults(dir, spec.name, bundle)) written = writeResults(dir, spec.name, bundle);
  }

  // Only now, with runs.jsonl holding their records, may files go.
  const isAlive = options.isAlive ?? isProcessAlive;
  const here = hostname();
  const removed: string[] = [];
  const kept: RecordFile[] = [];
  for (const file of files) {
    const writer = file.header?.writer;
    const isDone = file.isClosed || writer === undefined || (writer.host === here && !isAlive(writer.pid));
    if (!isDone) {
      kept.push(file);
      continue;
    }
    rmSync(file.path, { force: true });
    removed.push(file.path);
  }
  if (removed.length > 0) {
    try {
      rmdirSync(recordsDir(dir, spec.name)); // only when empty
    } catch {
      // other writers' files are still there
    }
    syncDirectory(dir);
  }
  return { written, records, fromFiles: fromFile.size, removed, kept, stale };
}

function newestMachine(files: readonly RecordFile[]): MachineFacts | undefined {
  for (let i = files.length - 1; i >= 0; i--) {
    const header = files[i]!.header;
    if (header !== null) return header.machine;
  }
  return undefined;
}

async function acquireMergeLock(dir: string, specName: string, timeoutMs: number): Promise<ResultsLock> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return acquireResultsLock(dir, isProcessAlive, { file: `.${specName}.merge.lock`, staleAfterMs: MERGE_LOCK_STALE_MS });
    } catch (error) {
      if (!(error instanceof MpxError) || error.code !== 'RESULTS_LOCKED' || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * A results table as it stands with the record files not merged yet: the rows of cells that have records in record
 * files are rebuilt from all their records (merged and new), with the cell descriptions the files carry; other rows
 * stay as the CSV has them. `table` null: there is no CSV yet (only shards' records). Pure.
 */
export function overlayRecordFiles(
  table: ResultTable | null,
  name: string,
  source: string,
  merged: readonly StoredRecord[],
  files: readonly RecordFile[],
): ResultTable | null {
  const cells = new Map<string, RecordFileCell>();
  const touched = new Set<string>();
  for (const file of files) {
    for (const cell of file.header?.cells ?? []) cells.set(cell.cellId, cell);
    for (const record of file.records) touched.add(record.cellId);
  }
  for (const cellId of touched) if (!cells.has(cellId)) touched.delete(cellId);
  if (touched.size === 0) return table;

  const latest = latestByRunId([...merged, ...files.flatMap((f) => f.records)]);
  const records = [...latest.values()].filter((r) => touched.has(r.cellId));
  const outlineCells = [...touched].map((cellId) => cells.get(cellId)!);
  const aggregated = aggregateCells({ cells: outlineCells, runs: records }, records).map((row) => ({
    ...row,
    runsPlanned: cells.get(row.cellId)!.runsPlanned,
  }));
  // Through the CSV's text and back, so rebuilt rows hold exactly what the merged CSV will (numbers as formatted).
  const rebuilt = parseResultsCsv(csvExporter.render(aggregated, COLUMNS), name, source).rows;
  const kept = (table?.rows ?? []).filter((row) => !touched.has(row.cellId));
  const rows = [...kept, ...rebuilt].sort((a, b) => a.cellIndex - b.cellIndex);
  return {
    name,
    source,
    header: table?.header ?? COLUMNS.map((c) => c.name),
    columns: table?.columns ?? [...COLUMNS],
    rows,
    metadata: table?.metadata ?? newestMetadata(files),
    schema: RUNS_SCHEMA,
  };
}

/** Metadata for a spec that has only record files so far: their newest writer's machine. */
function newestMetadata(files: readonly RecordFile[]): RunMetadata | null {
  const header = [...files].reverse().find((f) => f.header !== null)?.header;
  if (!header) return null;
  const records = files.flatMap((f) => f.records);
  return collectMetadata({ ...header.machine, spec: header.spec, date: new Date(header.writer.startedAt), plannedRuns: header.plannedRuns, records, reusedRuns: 0 });
}

/**
 * Every spec's run-matrix table in a results directory as it stands: each `<name>.csv`, with the rows its unmerged
 * record files change rebuilt (`overlayRecordFiles`), and specs that have only record files so far. `label` names the
 * directory in sources (`results` → `results/<name>.csv`). What `mpx diff` and reports read. Throws MpxError
 * RESULTS_IO.
 */
export function readResultTables(dir: string, label: string): ResultTable[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    throw new MpxError('RESULTS_IO', `cannot read ${label}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const specs = new Set<string>();
  for (const name of names) {
    // Capacity searches (`<spec>.capacity.csv`) are tables of another kind, read by their own parser.
    if (name.startsWith('.') || name.endsWith(`${CAPACITY_SUFFIX}.csv`)) continue;
    if (name.endsWith('.csv')) specs.add(name.slice(0, -'.csv'.length));
    else if (name.endsWith('.records')) specs.add(name.slice(0, -'.records'.length));
  }
  const tables: ResultTable[] = [];
  for (const spec of [...specs].sort()) {
    const table = readSpecTable(dir, spec, join(label, `${spec}.csv`));
    if (table !== null) tables.push(table);
  }
  return tables;
}

/** One spec's table (see `readResultTables`); null when it has neither a CSV nor a record. */
export function readSpecTable(dir: string, specName: string, source: string): ResultTable | null {
  const read = (name: string): string | null => {
    try {
      return readFileSync(join(dir, name), 'utf8');
    } catch {
      return null;
    }
  };
  const csv = read(`${specName}.csv`);
  const meta = read(`${specName}.meta.json`);
  const table = csv === null ? null : parseResultsCsv(csv, specName, source, meta === null ? null : parseRunMetadata(meta));
  const { merged, files } = readSpecRecords(dir, specName);
  return overlayRecordFiles(table, specName, source, merged, files);
}
