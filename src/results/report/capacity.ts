/**
 * A spec's capacity result (`results/<name>.capacity.csv`, read by `results/capacity.ts`: the largest batch that fits
 * a budget, per model × policy × accumulation × engine) as the reports show it. The table shows the columns of
 * `CAPACITY_REPORT_COLUMNS` the file has, formatted by their own definitions (bytes in decimal units). Pure.
 */
import { formatCapacityLabel, type CapacityRow } from '../capacity.js';
import { formatBytes } from '../peak.js';
import type { ResultTable } from '../table.js';

export type CapacityTable = ResultTable<CapacityRow>;

/** The columns a report shows, in this order (the CSV has them all). */
export const CAPACITY_REPORT_COLUMNS: readonly string[] = [
  'model',
  'policy',
  'accumulation_steps',
  'requested_backend',
  'status',
  'max_batch_size',
  'batch_ratio_to_float32',
  'recommended_batch_size',
  'budget_bytes',
  'metric_kind',
  'peak_at_max_bytes',
  'fixed_bytes',
  'bytes_per_sample',
  'probes',
  'samples_per_s',
  'reason',
];

export interface CapacityView {
  columns: string[];
  /** Cells as shown: byte columns in decimal units, everything else as the CSV writes it. */
  rows: string[][];
}

export function capacityView(table: CapacityTable): CapacityView {
  const columns = CAPACITY_REPORT_COLUMNS.map((name) => table.columns.find((c) => c.name === name)).filter((c) => c !== undefined);
  return {
    columns: columns.map((c) => c.name),
    rows: table.rows.map((row) =>
      columns.map((c) => {
        const value = c.value(row);
        return c.unit === 'bytes' && typeof value === 'number' ? formatBytes(value) : c.format(row);
      }),
    ),
  };
}

/**
 * One line per search: `cnn mixed_bfloat16 acc=1 wasm: 963 (2.00× float32), recommended 914`, or its status and
 * reason. The figures are of the kind the search compared (`metric_kind`).
 */
export function capacitySentences(table: CapacityTable): string[] {
  return table.rows.map((row) => {
    const label = formatCapacityLabel(row);
    if (row.maxBatchSize === null) return `${label}: ${row.status}${row.reason ? ` (${row.reason})` : ''}`;
    const atLeast = row.isRangeLimited ? 'at least ' : '';
    const ratio = row.policy !== 'float32' && row.batchRatioToFloat32 !== null ? ` (${row.batchRatioToFloat32.toFixed(2)}× float32)` : '';
    const recommended = row.recommendedBatchSize !== null ? `, recommended ${row.recommendedBatchSize}` : '';
    return `${label}: ${atLeast}${row.maxBatchSize}${ratio}${recommended}`;
  });
}

/** What the searches compared with their budget, for a caption: `modeled peak_tf_modeled_bytes, budget 150.0 MB`. */
export function capacityBasis(table: CapacityTable): string {
  const metrics = [...new Set(table.rows.map((r) => `${r.metricKind ?? 'unknown'} ${r.metric}`))];
  const budgets = [...new Set(table.rows.map((r) => formatBytes(r.budgetBytes)))];
  return `${metrics.join(' / ')}, budget ${budgets.join(' / ')}`;
}
