/**
 * Record files: where `mpx run` puts each finished run the moment it finishes. Every writer (one `mpx run`, one
 * shard of one on some host) appends to a file of its own, `<dir>/<name>.records/<writer>.jsonl`, one line per run in
 * a single write followed by an fsync — constant work per run whatever the matrix's size, and no lock: writers never
 * share a file, so any number of hosts can record runs of one spec into a shared results directory at once.
 * Merging (`spec-records.ts`) folds the files into `<name>.runs.jsonl` and rebuilds the CSV and meta.json from them.
 *
 * A file is a header line (who writes, which spec, the cells it may record: enough to show their rows without the
 * spec), record lines byte for byte as `runs.jsonl` holds them, and a footer line once the writer is done. A file
 * without a footer is still being written, or its writer died. A last line without its newline is an append cut off
 * by a crash: readers skip it (that run was never acknowledged, so it runs again).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fdatasyncSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { MpxError } from '../errors.js';
import type { Cell } from '../matrix/types.js';
import type { Shard } from '../matrix/shard.js';
import type { StoredRecord } from '../runner/protocol.js';
import type { MachineFacts } from './metadata.js';
import { errnoCode, parseRunRecords, renderRecordLine, resultPaths, resultsIoError, stableJson } from './store.js';

/** The format of the header and footer lines; a reader refuses a newer one rather than misread it. */
export const RECORD_FILE_FORMAT = 1;

/** A cell a writer may record, with what its row needs besides the records. */
export interface RecordFileCell extends Omit<Cell, 'index'> {
  index: number;
  /** Runs the plan has for this cell (its repeats): the `runs_ok` denominator. */
  runsPlanned: number;
}

export interface RecordFileHeader {
  mpxRecords: typeof RECORD_FILE_FORMAT;
  kind: 'header';
  writer: {
    host: string;
    pid: number;
    /** `--shard`; null for a whole `mpx run`. */
    shard: Shard | null;
    /** ISO 8601: orders writers (a later writer's record of a run replaces an earlier one's). */
    startedAt: string;
    /** `SLURM_JOB_ID` and `SLURM_ARRAY_JOB_ID_SLURM_ARRAY_TASK_ID` when run by Slurm, else null. */
    slurmJob: string | null;
  };
  spec: { name: string; file: string; sha256: string };
  /** Runs the spec plans in all. */
  plannedRuns: number;
  cells: RecordFileCell[];
  /** The writer's machine and installation, for meta.json (the CPU list reduced to its models). */
  machine: MachineFacts;
}

export interface RecordFileFooter {
  mpxRecords: typeof RECORD_FILE_FORMAT;
  kind: 'end';
  endedAt: string;
  records: number;
}

/** One record file as read. */
export interface RecordFile {
  path: string;
  /** null: the file is empty or its header was cut off (a writer that died at once); it holds no record. */
  header: RecordFileHeader | null;
  records: StoredRecord[];
  /** The writer wrote its footer: it will append nothing more. */
  isClosed: boolean;
}

/** `<dir>/<name>.records`: the spec's record files. */
export function recordsDir(dir: string, specName: string): string {
  resultPaths(dir, specName); // checks that the name is a plain file name
  return join(dir, `${specName}.records`);
}

/** Appends one spec's records for one writer. Create with `openRecordFile`. */
export interface RecordFileWriter {
  readonly path: string;
  /** One line, one write, then fdatasync: when it returns, the record survives a crash of mpx or of the machine. */
  append(record: StoredRecord): void;
  /** Writes the footer and closes the file. Idempotent. */
  close(): void;
}

/**
 * Creates a new record file (never reusing a name: host, pid and random bytes) and writes its header. Throws MpxError
 * RESULTS_IO naming the path.
 */
export function openRecordFile(dir: string, specName: string, header: Omit<RecordFileHeader, 'mpxRecords' | 'kind'>): RecordFileWriter {
  const folder = recordsDir(dir, specName);
  const { shard, host, pid } = header.writer;
  const width = shard === null ? 0 : String(shard.count).length;
  const tag = shard === null ? 'run' : `shard-${String(shard.index).padStart(width, '0')}-of-${shard.count}`;
  const path = join(folder, `${tag}.${safeName(host)}.${pid}.${randomBytes(3).toString('hex')}.jsonl`);
  let fd: number;
  try {
    mkdirSync(folder, { recursive: true });
    fd = openSync(path, 'wx');
  } catch (error) {
    throw resultsIoError('write', path, dir, error);
  }
  let count = 0;
  let isClosed = false;
  const write = (text: string): void => {
    try {
      const bytes = Buffer.from(text, 'utf8');
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
      fdatasyncSync(fd);
    } catch (error) {
      throw resultsIoError('write', path, dir, error);
    }
  };
  try {
    write(`${stableJson({ mpxRecords: RECORD_FILE_FORMAT, kind: 'header', ...header })}\n`);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return {
    path,
    append(record) {
      if (isClosed) throw new Error(`record file ${path} is closed; this is a bug`);
      write(renderRecordLine(record));
      count += 1;
    },
    close() {
      if (isClosed) return;
      isClosed = true;
      try {
        const footer: RecordFileFooter = { mpxRecords: RECORD_FILE_FORMAT, kind: 'end', endedAt: new Date().toISOString(), records: count };
        write(`${stableJson(footer)}\n`);
      } finally {
        closeSync(fd);
      }
    },
  };
}

/** Parses one record file's text. Throws MpxError RESULTS_IO naming the file and line. */
export function parseRecordFile(text: string, path: string): RecordFile {
  const parsed = parseRunRecords(text, path, { tornTail: true, isExtraLine: (value) => 'mpxRecords' in value });
  let header: RecordFileHeader | null = null;
  let isClosed = false;
  for (const { value, line } of parsed.extra) {
    if (value.mpxRecords !== RECORD_FILE_FORMAT) {
      throw new MpxError('RESULTS_IO', `this record file has format ${JSON.stringify(value.mpxRecords)}, which this mpx cannot read`, {
        file: path,
        line,
        hint: 'merge it with the mpx that wrote it (mpx merge), or update mpx',
      });
    }
    if (value.kind === 'header' && line === 1) header = value as unknown as RecordFileHeader;
    else if (value.kind === 'end') isClosed = true;
    else throw new MpxError('RESULTS_IO', `this line is a misplaced ${String(value.kind)} line`, { file: path, line, hint: 'fix or delete the line; mpx writes the header first and the footer last' });
  }
  if (header === null && parsed.records.length > 0) {
    throw new MpxError('RESULTS_IO', 'this record file has records but no header line', { file: path, line: 1, hint: 'fix its first line, or move the file away' });
  }
  return { path, header, records: parsed.records, isClosed };
}

/**
 * Every record file of a spec, oldest writer first (by the header's start time, then name): the order in which a
 * later record of a run replaces an earlier one. [] when there are none.
 */
export function readRecordFiles(dir: string, specName: string): RecordFile[] {
  const folder = recordsDir(dir, specName);
  let names: string[];
  try {
    names = readdirSync(folder).filter((name) => name.endsWith('.jsonl') && !name.startsWith('.'));
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw resultsIoError('read', folder, dir, error);
  }
  const files: RecordFile[] = [];
  for (const name of names) {
    const path = join(folder, name);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') continue; // merged and removed since the listing
      throw resultsIoError('read', path, dir, error);
    }
    files.push(parseRecordFile(text, path));
  }
  return sortRecordFiles(files);
}

export function sortRecordFiles(files: readonly RecordFile[]): RecordFile[] {
  const startOf = (f: RecordFile) => f.header?.writer.startedAt ?? '';
  return [...files].sort((a, b) => (startOf(a) < startOf(b) ? -1 : startOf(a) > startOf(b) ? 1 : a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A host name as part of a file name: anything but letters, digits, `.`, `_` and `-` becomes `_`. */
function safeName(text: string): string {
  const safe = text.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
  return safe === '' ? 'host' : safe;
}
