/**
 * The module that writes whole results files (`record-files.ts` appends to the per-writer record files). Each file
 * is replaced atomically (temp file in the same directory, fsync, rename), so an interrupted run leaves the previous
 * complete file, never half of one (hyperfine exports after each benchmark "because we would risk losing them if a
 * later benchmark fails").
 *
 * Synchronous on purpose: the runner calls this as cells finish, possibly from overlapping completions; sync writes
 * cannot interleave, so an older snapshot can never be renamed over a newer one.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { MpxError } from '../errors.js';
import { isRecordedStatus, MEASUREMENT_KEYS, reviveNonFinite, reviveNumber, type StoredRecord } from '../runner/protocol.js';
import { type ResultRow, sortRecords } from './aggregate.js';
import { CAPACITY_COLUMNS, CAPACITY_SUFFIX, type CapacityRow } from './capacity.js';
import { COLUMNS, formatNonFinite } from './columns.js';
import { csvExporter } from './export/index.js';
import type { RunMetadata } from './metadata.js';

export interface ResultsBundle {
  rows: readonly ResultRow[];
  /** Every record so far; written in matrix order (cell index, then repeat). */
  records: readonly StoredRecord[];
  metadata: RunMetadata;
}

/** The paths written. */
export interface WrittenResults {
  csv: string;
  meta: string;
  runs: string;
}

export function resultPaths(dir: string, specName: string): WrittenResults {
  if (specName === '' || specName === '.' || specName === '..' || /[/\\]/.test(specName)) {
    throw new Error(`spec name ${JSON.stringify(specName)} is not a plain file name; this is a bug (the schema should reject it)`);
  }
  return {
    csv: join(dir, `${specName}.${csvExporter.extension}`),
    meta: join(dir, `${specName}.meta.json`),
    runs: join(dir, `${specName}.runs.jsonl`),
  };
}

/**
 * Writes `<dir>/<specName>.csv`, `.meta.json` and `.runs.jsonl`, creating `dir` if needed. The raw records go first,
 * so the file a resume reads is never older than the summaries. Throws MpxError `RESULTS_IO` naming the path.
 */
export function writeResults(dir: string, specName: string, bundle: ResultsBundle): WrittenResults {
  const paths = resultPaths(dir, specName);
  createResultsDir(dir);
  const text = renderResults(bundle);
  writeFileAtomic(paths.runs, text.runs);
  writeFileAtomic(paths.csv, text.csv);
  writeFileAtomic(paths.meta, text.meta);
  syncDirectory(dir);
  return paths;
}

/**
 * Writes a report of one spec, `<dir>/<specName>.<extension>` (`md`, `html`), atomically like the results, creating
 * `dir` if needed; returns the path. Throws MpxError `RESULTS_IO` naming the path.
 */
export function writeReport(dir: string, specName: string, extension: string, content: string): string {
  const path = join(dir, `${basename(resultPaths(dir, specName).csv, '.csv')}.${extension}`);
  createResultsDir(dir);
  writeFileAtomic(path, content);
  syncDirectory(dir);
  return path;
}

/**
 * Rewrites only the files derived from the records, `<name>.csv` and `.meta.json` (the records themselves are safe in
 * record files): what `mpx run` does every few seconds while runs finish.
 */
export function writeDerivedResults(dir: string, specName: string, bundle: Omit<ResultsBundle, 'records'>): WrittenResults {
  const paths = resultPaths(dir, specName);
  createResultsDir(dir);
  writeFileAtomic(paths.csv, csvExporter.render(bundle.rows, COLUMNS));
  writeFileAtomic(paths.meta, `${stableJson(bundle.metadata, 2)}\n`);
  return paths;
}

/** One record as a line of `runs.jsonl` or of a record file: the same bytes in both. */
export function renderRecordLine(record: StoredRecord): string {
  return `${stableJson(record)}\n`;
}

/** The bytes `writeResults` writes for each file. */
export function renderResults(bundle: ResultsBundle): { csv: string; meta: string; runs: string } {
  return {
    runs: sortRecords(bundle.records).map(renderRecordLine).join(''),
    csv: csvExporter.render(bundle.rows, COLUMNS),
    meta: `${stableJson(bundle.metadata, 2)}\n`,
  };
}

/**
 * True when `<dir>/<specName>.csv` and `.runs.jsonl` already hold exactly what `bundle` would write (the metadata is
 * not compared: its date always differs). A resumed `mpx run` with nothing to run uses this to leave committed files
 * untouched, so it creates no diff.
 */
export function hasSameResults(dir: string, specName: string, bundle: ResultsBundle): boolean {
  const paths = resultPaths(dir, specName);
  const text = renderResults(bundle);
  const read = (path: string): string | null => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return null;
    }
  };
  return read(paths.runs) === text.runs && read(paths.csv) === text.csv && read(paths.meta) !== null;
}

/** A capacity spec's files: its searches (`<name>.capacity.csv`), its probe records and its metadata. */
export interface CapacityBundle {
  rows: readonly CapacityRow[];
  records: readonly StoredRecord[];
  metadata: RunMetadata;
}

export function capacityPaths(dir: string, specName: string): WrittenResults {
  const paths = resultPaths(dir, specName);
  return { ...paths, csv: join(dir, `${specName}${CAPACITY_SUFFIX}.${csvExporter.extension}`) };
}

/** The bytes `writeCapacityResults` writes for each file. */
export function renderCapacityResults(bundle: CapacityBundle): { csv: string; meta: string; runs: string } {
  return {
    runs: sortRecords(bundle.records).map((r) => `${stableJson(r)}\n`).join(''),
    csv: csvExporter.render(bundle.rows, CAPACITY_COLUMNS),
    meta: `${stableJson(bundle.metadata, 2)}\n`,
  };
}

/** As `writeResults`, for a capacity spec: `<name>.capacity.csv` instead of `<name>.csv`. */
export function writeCapacityResults(dir: string, specName: string, bundle: CapacityBundle): WrittenResults {
  const paths = capacityPaths(dir, specName);
  createResultsDir(dir);
  const text = renderCapacityResults(bundle);
  writeFileAtomic(paths.runs, text.runs);
  writeFileAtomic(paths.csv, text.csv);
  writeFileAtomic(paths.meta, text.meta);
  syncDirectory(dir);
  return paths;
}

/** True when the capacity CSV and the records already hold exactly what `bundle` would write, and meta.json exists. */
export function hasSameCapacityResults(dir: string, specName: string, bundle: CapacityBundle): boolean {
  const paths = capacityPaths(dir, specName);
  const text = renderCapacityResults(bundle);
  try {
    return readFileSync(paths.csv, 'utf8') === text.csv && readFileSync(paths.runs, 'utf8') === text.runs && existsSync(paths.meta);
  } catch {
    return false;
  }
}

/**
 * The records of `<dir>/<specName>.runs.jsonl`, in file order; [] when the file does not exist yet.
 * Non-finite numbers come back as numbers (see `stableJson`). `ok` records from an older mpx that lack a measurement
 * are left out, so their runs are run again rather than shown with empty columns.
 */
export function readRunRecords(dir: string, specName: string): StoredRecord[] {
  const path = resultPaths(dir, specName).runs;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw resultsIoError('read', path, dir, error);
  }
  return parseRunRecords(text, path).records;
}

/**
 * The run records in the text of a `runs.jsonl` or a record file, in file order. Lines that are not records but
 * carry `isExtraLine` (a record file's header and footer) are handed back apart. `tornTail`: a last line without its
 * newline — what a writer killed in the middle of an append leaves — is skipped (its run was never acknowledged, so it
 * runs again) instead of reported as corrupt. Throws MpxError RESULTS_IO naming the file and line.
 */
export function parseRunRecords(
  text: string,
  path: string,
  options: { tornTail?: boolean; isExtraLine?: (value: Record<string, unknown>) => boolean } = {},
): { records: StoredRecord[]; extra: Array<{ value: Record<string, unknown>; line: number }>; isTorn: boolean } {
  const records: StoredRecord[] = [];
  const extra: Array<{ value: Record<string, unknown>; line: number }> = [];
  const lines = text.split('\n');
  const isTorn = options.tornTail === true && lines.length > 0 && lines[lines.length - 1] !== '';
  if (isTorn) lines.pop();
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw corruptLine(path, i + 1, 'is not valid JSON', error);
    }
    if (options.isExtraLine !== undefined && typeof value === 'object' && value !== null && options.isExtraLine(value as Record<string, unknown>)) {
      extra.push({ value: value as Record<string, unknown>, line: i + 1 });
      continue;
    }
    if (!isRunRecordShape(value)) throw corruptLine(path, i + 1, 'is not a run record');
    const record = reviveRecord(value);
    if (isCompleteRecord(record)) records.push(record);
  }
  return { records, extra, isTorn };
}

/** `writeFileAtomic`'s temp files: `.<file name>.<pid>.<8 hex>.tmp`. */
const TEMP_FILE = /^\.(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/;
const RESULT_FILE = /\.(?:csv|meta\.json|runs\.jsonl|md|html)$/;

/**
 * Removes the temp files of results files that a killed mpx (SIGKILL, power loss between write and rename) left in
 * `dir`; the results files themselves are intact (the rename never happened). Only files of processes that are gone
 * are touched, so a live writer is never disturbed. Returns the names removed. Best effort: never throws.
 */
export function removeStaleTempFiles(dir: string, isAlive: (pid: number) => boolean): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const match = TEMP_FILE.exec(name);
    if (!match || !RESULT_FILE.test(match[1]!)) continue;
    const pid = Number(match[2]);
    if (pid === process.pid || isAlive(pid)) continue;
    try {
      rmSync(join(dir, name), { force: true });
      removed.push(name);
    } catch {
      // cannot remove it: harmless, it is never read
    }
  }
  return removed;
}

/** Replaces `path` with `content` atomically (temp file in the same directory, fsync, rename). */
export function writeFileAtomic(path: string, content: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx');
    const bytes = Buffer.from(content, 'utf8');
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (error) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    try {
      rmSync(tmp, { force: true });
    } catch {
      // nothing to clean up, or cannot: the original error is the one to report
    }
    throw resultsIoError('write', path, dirname(path), error);
  }
}

/**
 * Checks before any run starts that `dir` can hold results (creating it if needed, then writing and removing a probe
 * file), so a bad `--results-dir` costs no training. Throws MpxError `RESULTS_IO`.
 */
export function assertResultsDirWritable(dir: string): void {
  const probe = join(dir, `.mpx-probe-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(probe, '');
  } catch (error) {
    // Name the directory, not the probe's random (and by now removed) file name.
    throw resultsIoError('write', dir, dir, error instanceof MpxError && error.cause !== undefined ? error.cause : error);
  } finally {
    try {
      rmSync(probe, { force: true });
    } catch {
      // the probe was never created (dir is not a directory): the error above is the one to report
    }
  }
}

/** Makes the renames durable across a power loss. Best effort: some platforms cannot open a directory. */
export function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // not supported here (e.g. Windows); the data itself is already fsynced
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function resultsIoError(action: 'read' | 'write', path: string, dir: string, error: unknown): MpxError {
  const code = errnoCode(error);
  const detail = error instanceof Error ? error.message : String(error);
  return new MpxError('RESULTS_IO', `cannot ${action} results: ${detail}`, {
    file: path,
    hint: hintFor(code, dir),
    cause: error,
  });
}

function hintFor(code: string | undefined, dir: string): string {
  switch (code) {
    case 'ENOTDIR':
    case 'EEXIST':
      return `part of ${dir} is a file, not a directory; move that file or choose another results directory`;
    case 'EACCES':
    case 'EPERM':
      return `${dir} is not writable by this user; fix its permissions or choose another results directory`;
    case 'EROFS':
      return `${dir} is on a read-only file system; choose another results directory`;
    case 'ENOSPC':
    case 'EDQUOT':
      return `the disk holding ${dir} is full (or over quota); free some space and run again`;
    case 'EISDIR':
      return `a directory is in the way of a results file in ${dir}; remove or rename it`;
    default:
      return `make sure ${dir} is a writable directory`;
  }
}

function corruptLine(path: string, line: number, problem: string, cause?: unknown): MpxError {
  return new MpxError('RESULTS_IO', `this line ${problem}`, {
    file: path,
    line,
    hint: 'fix or delete that line (or the file, to start the runs over); mpx itself writes the file atomically',
    cause,
  });
}

export function errnoCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * JSON with object keys sorted (stable bytes whatever order objects were built in). JSON has no NaN or Infinity, and a
 * NaN loss is a result worth keeping, so non-finite numbers are written as the strings "nan", "inf", "-inf" — the
 * spelling of the CSV and of `mpx diff --format json`.
 */
export function stableJson(value: unknown, indent?: number): string {
  return JSON.stringify(sortKeys(value), (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? formatNonFinite(v) : v), indent);
}


function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(entries.map(([k, v]) => [k, sortKeys(v)]));
}


function isRunRecordShape(value: unknown): value is StoredRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.runId === 'string' &&
    typeof r.cellId === 'string' &&
    typeof r.cellIndex === 'number' &&
    typeof r.repeat === 'number' &&
    isRecordedStatus(r.status) &&
    (typeof r.measurements === 'object' || r.measurements === undefined)
  );
}

/**
 * Turns the strings `stableJson` wrote for non-finite numbers back into numbers (only where numbers belong); the
 * spelling of files written before it matched the CSV's ("NaN", "Infinity") is read too.
 */
function reviveRecord(record: StoredRecord): StoredRecord {
  const { measurements } = reviveNonFinite({ measurements: record.measurements ?? null });
  // Records written before a field existed get its "unknown" value.
  return {
    ...record,
    wallMs: reviveNumber(record.wallMs) as number,
    measurements,
    reachedBytes: record.reachedBytes ?? null,
    gpuPeakBytes: record.gpuPeakBytes ?? null,
    attempts: record.attempts ?? 1,
  };
}

/**
 * Whether a stored record can stand for its run today: an `ok` record from an older mpx that measured fewer things
 * cannot (its row would have empty columns), so it is run again instead of reused.
 */
export function isCompleteRecord(record: StoredRecord): boolean {
  if (record.status !== 'ok') return true;
  const measurements = record.measurements as Record<string, unknown> | null;
  return measurements !== null && MEASUREMENT_KEYS.every((key) => key in measurements);
}

/** Creates the results directory if needed; throws MpxError `RESULTS_IO` naming it. */
function createResultsDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw resultsIoError('write', dir, dir, error);
  }
}
