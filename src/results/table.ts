/**
 * A results CSV read back into typed rows: each column parses its own text (`Column.parse`, the inverse of its
 * `format`), so `mpx diff`, reports and anything else that reads results see the same `ResultRow`s the run wrote.
 * Pure: the caller reads the files (from disk or through git) and hands over their text.
 */
import { parse } from 'csv-parse/sync';
import { MpxError } from '../errors.js';
import type { ResultRow } from './aggregate.js';
import { AXIS_COLUMNS, ColumnParseError, COLUMNS, type Column } from './columns.js';
import type { RunMetadata } from './metadata.js';

/** One results CSV, typed. */
export interface ResultTable {
  /** The spec name: the file name without `.csv`. */
  name: string;
  /** Where it came from, for people: `results/a.csv`, `main:results/a.csv`. */
  source: string;
  /** The header as written (a CSV from another mpx version may lack or add columns). */
  header: string[];
  /** The known columns the file has, in COLUMNS order. */
  columns: Column[];
  rows: ResultRow[];
  /** The `<name>.meta.json` beside it; null when absent or unreadable. */
  metadata: RunMetadata | null;
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

/** Parses a results CSV. Throws MpxError RESULTS_IO naming `source` (and the line) when it is not one. */
export function parseResultsCsv(text: string, name: string, source: string, metadata: RunMetadata | null = null): ResultTable {
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
  const axes = AXIS_COLUMNS.map((c) => c.name);
  if (header === undefined || !axes.some((a) => header.includes(a))) {
    throw new MpxError('RESULTS_IO', `${source} is not an mpx results CSV: its header has none of the columns ${axes.join(', ')}`, {
      hint: 'pass a results/<spec>.csv written by mpx run, a results directory or a git ref',
    });
  }
  const columns = COLUMNS.filter((c) => header.includes(c.name));
  const indexOf = new Map(columns.map((c) => [c, header.indexOf(c.name)]));
  const rows = body.map((values, i) => {
    const row = blankRow();
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
  return { name, source, header, columns, rows, metadata };
}
