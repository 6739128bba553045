/**
 * The capacity result of a spec (`results/<name>.capacity.csv`: the largest batch that fits a memory budget, per
 * model × policy), as the reports show it. Data-driven on purpose: the table shows the columns of
 * `CAPACITY_REPORT_COLUMNS` that the file has, in that order (all of its columns when it has none of them), so the
 * capacity CSV can gain or rename columns without touching the renderers. Pure.
 */
import { parse } from 'csv-parse/sync';
import { MpxError } from '../../errors.js';
import { formatBytes } from '../peak.js';

export interface CapacityTable {
  /** For people: `results/a.capacity.csv`. */
  source: string;
  header: string[];
  /** One record per row, by column name. */
  records: Array<Record<string, string>>;
}

/** The columns a report shows, in this order, when the capacity CSV has them. */
export const CAPACITY_REPORT_COLUMNS: readonly string[] = [
  'model',
  'policy',
  'accumulation_steps',
  'requested_backend',
  'backend',
  'budget',
  'budget_bytes',
  'metric',
  'max_batch_size',
  'recommended_batch_size',
  'max_batch_ratio_to_float32',
  'peak_at_max_bytes',
  'peak_at_next_bytes',
  'fixed_bytes',
  'per_sample_bytes',
  'samples_per_s',
  'probes',
  'status',
  'reason',
];

/** The value the capacity chart plots per model × policy, when the file has it. */
export const CAPACITY_CHART_COLUMN = 'max_batch_size';

/** `results/a.csv` → `results/a.capacity.csv`: where a spec's capacity result sits beside its results. */
export function capacityPath(resultsCsvPath: string): string {
  return resultsCsvPath.replace(/\.csv$/, '.capacity.csv');
}

/** Whether a file name is a capacity CSV rather than a results CSV. */
export function isCapacityCsv(name: string): boolean {
  return name.endsWith('.capacity.csv');
}

export function parseCapacityCsv(text: string, source: string): CapacityTable {
  let records: string[][];
  try {
    records = parse(text, { relax_column_count: false, skip_empty_lines: true, bom: true });
  } catch (error) {
    throw new MpxError('RESULTS_IO', `${source} is not a valid CSV: ${error instanceof Error ? error.message : String(error)}`, {
      hint: 'restore it from git, or re-run mpx run to write it again',
      cause: error,
    });
  }
  const [header = [], ...body] = records;
  return { source, header, records: body.map((values) => Object.fromEntries(header.map((name, i) => [name, values[i] ?? '']))) };
}

export interface CapacityView {
  columns: string[];
  /** Cells as shown: byte columns in decimal units, everything else as written. */
  rows: string[][];
}

export function capacityView(table: CapacityTable): CapacityView {
  const known = CAPACITY_REPORT_COLUMNS.filter((c) => table.header.includes(c));
  const columns = known.length > 0 ? known : table.header;
  return { columns, rows: table.records.map((record) => columns.map((c) => formatCapacityCell(c, record[c] ?? ''))) };
}

function formatCapacityCell(column: string, text: string): string {
  const isBytes = column.endsWith('_bytes') || column === 'budget';
  const value = Number(text);
  return isBytes && text.trim() !== '' && Number.isFinite(value) ? formatBytes(value) : text;
}
