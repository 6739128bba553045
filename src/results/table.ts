/**
 * A results CSV read back into typed rows: each column parses its own text (`Column.parse`, the inverse of its
 * `format`), so `mpx diff`, reports and anything else that reads results see the same `ResultRow`s the run wrote.
 * Pure: the caller reads the files (from disk or through git) and hands over their text.
 */
import { parse } from 'csv-parse/sync';
import { MpxError } from '../errors.js';
import type { ResultRow } from './aggregate.js';
import { formatCellLabel } from '../matrix/label.js';
import { ColumnParseError, COLUMNS, type Column } from './columns.js';
import type { RunMetadata } from './metadata.js';

/** What kind of table a results CSV holds, and how to read and label its rows (`mpx diff`, reports). */
export interface TableSchema<R> {
  /** `runs`: `<spec>.csv`, one row per matrix cell; `capacity`: `<spec>.capacity.csv`, one row per capacity search. */
  kind: 'runs' | 'capacity';
  /** Every column the kind has, in file order. */
  columns: readonly Column<R>[];
  blankRow(): R;
  /** The row for people, e.g. `mlp bs=64 mixed_float16 acc=4`. */
  label(row: R): string;
  cellId(row: R): string;
  status(row: R): string;
  reason(row: R): string | null;
}

/** One results CSV, typed. */
export interface ResultTable<R = ResultRow> {
  /** The spec name: the file name without `.csv` (a capacity table's name ends in `.capacity`). */
  name: string;
  /** Where it came from, for people: `results/a.csv`, `main:results/a.csv`. */
  source: string;
  /** The header as written (a CSV from another mpx version may lack or add columns). */
  header: string[];
  /** The known columns the file has, in schema order. */
  columns: Column<R>[];
  rows: R[];
  /** The `<name>.meta.json` beside it; null when absent or unreadable. */
  metadata: RunMetadata | null;
  schema: TableSchema<R>;
}

/** A row with nothing known yet: what a CSV's cells are parsed into (columns a file lacks stay empty). */
export function blankRow(): ResultRow {
  return {
    cellIndex: 0,
    cellId: '',
    model: '',
    batchSize: 0,
    microBatchSize: 0,
    policy: 'float32',
    accumulationSteps: 1,
    requestedBackend: 'auto',
    backends: [],
    precisions: [],
    devices: [],
    status: 'ok',
    runsOk: 0,
    runsPlanned: 0,
    reason: null,
    paramCount: null,
    stepMs: null,
    stepMsSpread: null,
    samplesPerSecond: null,
    initialLoss: null,
    finalLoss: null,
    finalLossSpread: null,
    evalAccuracy: null,
    lossScaleFinal: null,
    skippedSteps: null,
    paramsBytes: null,
    gradsBytes: null,
    optimizerBytes: null,
    accumulatorBytes: null,
    activationsPeakBytes: null,
    peakBytes: null,
    restingBytes: null,
    peakModeledBytes: null,
    activationsPeakModeledBytes: null,
    peakTfModeledBytes: null,
    activationsPeakTfModeledBytes: null,
    peakTorchModeledBytes: null,
    reservedPeakBytes: null,
    rssPeakBytes: null,
    wasmHeapBytes: null,
    gpuPeakBytes: null,
    oomReachedBytes: null,
  };
}

export const RUNS_SCHEMA: TableSchema<ResultRow> = {
  kind: 'runs',
  columns: COLUMNS,
  blankRow,
  label: (row) => formatCellLabel({ ...row, backend: row.requestedBackend }),
  cellId: (row) => row.cellId,
  status: (row) => row.status,
  reason: (row) => row.reason,
};

/** Parses a results CSV (`<spec>.csv`). Throws MpxError RESULTS_IO naming `source` (and the line) when it is not one. */
export function parseResultsCsv(text: string, name: string, source: string, metadata: RunMetadata | null = null): ResultTable {
  return parseTableCsv(text, name, source, RUNS_SCHEMA, metadata);
}

/** Parses a CSV of `schema`'s kind. Throws MpxError RESULTS_IO naming `source` (and the line) when it is not one. */
export function parseTableCsv<R>(text: string, name: string, source: string, schema: TableSchema<R>, metadata: RunMetadata | null = null): ResultTable<R> {
  let records: string[][];
  try {
    records = parse(text, { relax_column_count: false, skip_empty_lines: true, bom: true });
  } catch (error) {
    throw new MpxError('RESULTS_IO', `${source} is not a valid CSV: ${error instanceof Error ? error.message : String(error)}`, {
      hint: 'restore it from git, or re-run mpx run to write it again',
      cause: error,
    });
  }
  const [header, ...body] = records;
  const axes = schema.columns.filter((c) => c.kind === 'axis').map((c) => c.name);
  if (header === undefined || !axes.some((a) => header.includes(a))) {
    throw new MpxError('RESULTS_IO', `${source} is not an mpx ${schema.kind === 'runs' ? 'results' : 'capacity'} CSV: its header has none of the columns ${axes.join(', ')}`, {
      hint: 'pass a results/<spec>.csv written by mpx run, a results directory or a git ref',
    });
  }
  const columns = schema.columns.filter((c) => header.includes(c.name));
  const indexOf = new Map(columns.map((c) => [c, header.indexOf(c.name)]));
  const rows = body.map((values, i) => {
    const row = schema.blankRow();
    for (const column of columns) {
      try {
        column.parse(values[indexOf.get(column)!] ?? '', row);
      } catch (error) {
        if (!(error instanceof ColumnParseError)) throw error;
        // Line i + 2: the header is line 1.
        throw new MpxError('RESULTS_IO', `${source}: line ${i + 2}: ${error.message}`, {
          hint: 'restore the file from git, or re-run mpx run to write it again',
        });
      }
    }
    return row;
  });
  return { name, source, header, columns, rows, metadata, schema };
}
