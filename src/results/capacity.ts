/**
 * `results/<name>.capacity.csv`: one row per capacity search (model × policy × accumulation × backend), from the
 * search's outcome and the records of its probes. Pure: searches and records in, rows and text out. The columns are
 * defined once here (as `columns.ts` does for run matrices) and feed the CSV, its reader (`mpx diff`) and the README.
 */
import { microBatchRange, type CapacityCell } from '../matrix/capacity.js';
import type { CapacitySearchResult } from '../runner/capacity-search.js';
import { RECORDED_STATUSES, type RecordedStatus, type StoredRecord } from '../runner/protocol.js';
import { BACKEND_CHOICES, BACKEND_NAMES, POLICIES, type BackendChoice, type BackendName, type CapacityDef, type CapacityMetric, type Policy } from '../spec/types.js';
import { INTEGER, numeric, oneOf, RATIO, required, textual, TIME, type Column } from './columns.js';
import type { RunMetadata } from './metadata.js';
import { parseTableCsv, type ResultTable, type TableSchema } from './table.js';

/** The figure a search compared with its budget, by results column; and whether the engine measured or modeled it. */
export type SearchMetric = 'peak_bytes' | 'peak_modeled_bytes' | 'peak_tf_modeled_bytes';
export type MetricKind = 'measured' | 'modeled';

export interface CapacityRow {
  cellIndex: number;
  cellId: string;
  model: string;
  policy: Policy;
  accumulationSteps: number;
  requestedBackend: BackendChoice;
  /** Backends that ran the probes, unique, sorted. */
  backends: BackendName[];
  status: RecordedStatus;
  reason: string | null;
  budgetBytes: number;
  metric: SearchMetric;
  metricKind: MetricKind | null;
  /** Effective batch: the largest micro batch that fits × accumulation steps. */
  maxBatchSize: number | null;
  maxMicroBatchSize: number | null;
  peakAtMaxBytes: number | null;
  peakAboveMaxBytes: number | null;
  fixedBytes: number | null;
  bytesPerSample: number | null;
  probes: number;
  recommendedBatchSize: number | null;
  /** max_batch_size ÷ the float32 row's (same model, accumulation and backend). */
  batchRatioToFloat32: number | null;
  samplesPerSecond: number | null;
  stepMs: number | null;
  isRangeLimited: boolean | null;
  isMonotonic: boolean | null;
}

/** The column a cell's search compares: `auto` is what the engine knows best (measured on torch, TensorFlow's lifetimes on tfjs). */
export function searchMetric(metric: CapacityMetric, backend: BackendChoice): SearchMetric {
  if (metric !== 'auto') return metric;
  return backend === 'torch' ? 'peak_bytes' : 'peak_tf_modeled_bytes';
}

export function metricKind(metric: SearchMetric): MetricKind {
  return metric === 'peak_bytes' ? 'measured' : 'modeled';
}

/** The figure `metric` of a probe's record; null when it measured none (not ok, or an engine without that figure). */
export function metricValue(record: StoredRecord, metric: SearchMetric): number | null {
  const m = record.measurements;
  if (record.status !== 'ok' || m === null) return null;
  switch (metric) {
    case 'peak_bytes':
      return m.peakBytes;
    case 'peak_modeled_bytes':
      return m.peakModeledBytes;
    case 'peak_tf_modeled_bytes':
      return m.peakTfModeledBytes;
  }
}

/** What one finished search left: its outcome, the records of its probes, and its confirmation run's record. */
export interface FinishedSearch {
  cell: CapacityCell;
  result: CapacitySearchResult;
  probeRecords: readonly StoredRecord[];
  confirm: StoredRecord | null;
}

/**
 * The rows of a capacity CSV in cell order. `recommended_batch_size` is the largest batch whose fitted peak leaves
 * `margin` of the budget free (the fit through the probes nearest the boundary), never above the maximum found, below
 * every probe measured over that line, nor below the range searched.
 */
export function aggregateCapacity(capacity: CapacityDef, searches: readonly FinishedSearch[], earlierRows: readonly CapacityRow[] = []): CapacityRow[] {
  const rows = searches.map((search) => capacityRow(capacity, search));
  // Searches not run this time (--filter) keep the rows an earlier run wrote.
  const searched = new Set(rows.map((r) => r.cellId));
  rows.push(...earlierRows.filter((r) => !searched.has(r.cellId)).map((r) => ({ ...r })));
  rows.sort((a, b) => a.cellIndex - b.cellIndex);
  for (const row of rows) {
    const float32 = rows.find((r) => r.policy === 'float32' && r.model === row.model && r.accumulationSteps === row.accumulationSteps && r.requestedBackend === row.requestedBackend);
    row.batchRatioToFloat32 = float32?.maxBatchSize && row.maxBatchSize !== null ? row.maxBatchSize / float32.maxBatchSize : null;
  }
  return rows;
}

function capacityRow(capacity: CapacityDef, { cell, result, probeRecords, confirm }: FinishedSearch): CapacityRow {
  const metric = searchMetric(capacity.metric, cell.backend);
  const k = cell.accumulationSteps;
  const max = result.maxMicroBatchSize;
  let status = result.status;
  let reason = result.reason;
  if (status === 'ok' && confirm !== null && confirm.status !== 'ok') {
    status = confirm.status;
    reason = `the confirmation run at batch ${(max ?? 0) * k} ended ${confirm.status}: ${confirm.reason ?? 'no reason given'}`;
  }
  if (status === 'ok' && result.monotonicityViolations.length > 0) {
    reason = `memory is not monotonic in the batch size: ${result.monotonicityViolations.join('; ')}`;
  }
  if (status === 'ok' && reason === null && result.isRangeLimited) {
    reason = `the whole range fits: the largest batch is at least ${capacity.maxBatchSize} (raise capacity.batchSize.max)`;
  }
  const fit = result.fit;
  let recommended: number | null = null;
  if (max !== null) {
    const target = capacity.budgetBytes * (1 - capacity.margin);
    const atMax = result.peakAtMaxBytes;
    // Without a rising line (one probe fits, or memory is flat there) only the peak at the max says anything.
    const fitted = fit !== null && fit.bytesPerSample > 0 ? Math.floor((target - fit.fixedBytes) / fit.bytesPerSample) : atMax !== null && atMax <= target ? max : 0;
    // The line runs through the largest probes; below them memory can be flat (an optimizer-bound peak) and above the
    // line, so a smaller probe already over the target bounds the recommendation too.
    const overTarget = result.probes.filter((p) => p.outcome.bytes !== null && p.outcome.bytes > target).map((p) => p.microBatchSize - 1);
    const micro = Math.min(max, fitted, ...overTarget);
    // Below the range searched nothing was asked for (or measured): no recommendation then.
    recommended = micro >= microBatchRange(capacity, k).min ? micro * k : null;
  }
  const backends = [...new Set(probeRecords.map((r) => r.backend).filter((b): b is BackendName => b !== null))].sort();
  const confirmed = confirm?.status === 'ok' ? confirm.measurements : null;
  return {
    cellIndex: cell.index,
    cellId: cell.cellId,
    model: cell.model,
    policy: cell.policy,
    accumulationSteps: k,
    requestedBackend: cell.backend,
    backends,
    status,
    reason,
    budgetBytes: capacity.budgetBytes,
    metric,
    metricKind: metricKind(metric),
    maxBatchSize: max === null ? null : max * k,
    maxMicroBatchSize: max,
    peakAtMaxBytes: result.peakAtMaxBytes,
    peakAboveMaxBytes: result.peakAboveMaxBytes,
    fixedBytes: fit === null ? null : Math.round(fit.fixedBytes),
    bytesPerSample: fit?.bytesPerSample ?? null,
    probes: result.probes.length,
    recommendedBatchSize: recommended,
    batchRatioToFloat32: null,
    samplesPerSecond: confirmed?.samplesPerSecond ?? null,
    stepMs: confirmed?.stepMsMedian ?? null,
    isRangeLimited: max === null ? null : result.isRangeLimited,
    isMonotonic: result.monotonicityViolations.length === 0,
  };
}

const SEARCH_METRICS: readonly SearchMetric[] = ['peak_bytes', 'peak_modeled_bytes', 'peak_tf_modeled_bytes'];
const METRIC_KINDS: readonly MetricKind[] = ['measured', 'modeled'];
const yesNo = (value: boolean | null): string | null => (value === null ? null : value ? 'yes' : 'no');
const parseYesNo = (column: string, text: string | null): boolean | null => (text === null ? null : oneOf(column, ['yes', 'no'], text) === 'yes');

export const CAPACITY_COLUMNS: readonly Column<CapacityRow>[] = [
  numeric<CapacityRow>({ name: 'cell', unit: '', kind: 'info', description: '0-based position of the search in matrix order (rows follow it).' }, 'cellIndex', { isRequired: true }),
  textual<CapacityRow>(
    { name: 'cell_id', unit: '', kind: 'info', description: 'Content hash of the search: the cell without its batch size, plus the capacity settings.' },
    (r) => r.cellId,
    (r, t) => (r.cellId = required('cell_id', t)),
  ),
  textual<CapacityRow>({ name: 'model', unit: '', kind: 'axis', description: 'Model name (key under `models:`).' }, (r) => r.model, (r, t) => (r.model = required('model', t))),
  textual<CapacityRow>(
    { name: 'policy', unit: '', kind: 'axis', description: 'Precision policy.' },
    (r) => r.policy,
    (r, t) => (r.policy = oneOf('policy', POLICIES, required('policy', t))),
  ),
  numeric<CapacityRow>({ name: 'accumulation_steps', unit: 'micro-batches', kind: 'axis', description: 'Micro-batches per optimizer update; the search bounds the micro batch.' }, 'accumulationSteps', { isRequired: true }),
  textual<CapacityRow>(
    { name: 'requested_backend', unit: '', kind: 'axis', description: 'The engine the search asks for.' },
    (r) => r.requestedBackend,
    (r, t) => (r.requestedBackend = oneOf('requested_backend', BACKEND_CHOICES, required('requested_backend', t))),
  ),
  textual<CapacityRow>(
    { name: 'backend', unit: '', kind: 'info', description: 'The backends that ran its probes, joined with `|`.' },
    (r) => (r.backends.length === 0 ? null : r.backends.join('|')),
    (r, t) => (r.backends = t === null ? [] : t.split('|').map((b) => oneOf('backend', BACKEND_NAMES, b))),
  ),
  textual<CapacityRow>(
    { name: 'status', unit: '', kind: 'info', description: '`ok` when the boundary (or the whole range) was found; `oom` when not even the smallest batch fits; else the status of the probe or confirmation run that failed.' },
    (r) => r.status,
    (r, t) => (r.status = oneOf('status', RECORDED_STATUSES, required('status', t))),
  ),
  textual<CapacityRow>(
    { name: 'reason', unit: '', kind: 'info', description: 'Why a search is not plainly ok (a failed probe, a range that all fits, non-monotonic memory); empty otherwise.' },
    (r) => r.reason,
    (r, t) => (r.reason = t),
  ),
  numeric<CapacityRow>({ name: 'budget_bytes', unit: 'bytes', kind: 'info', description: 'capacity.budget: the memory the peak must fit in.' }, 'budgetBytes', { isRequired: true }),
  textual<CapacityRow>(
    { name: 'metric', unit: '', kind: 'info', description: 'The results column compared with the budget (`auto`: peak_bytes on torch, peak_tf_modeled_bytes on tfjs).' },
    (r) => r.metric,
    (r, t) => (r.metric = oneOf('metric', SEARCH_METRICS, required('metric', t))),
  ),
  textual<CapacityRow>(
    { name: 'metric_kind', unit: '', kind: 'info', description: 'Whether the engine `measured` that figure (peak_bytes) or mpx `modeled` it (TensorFlow\'s or tfjs\'s lifetimes at the policy\'s sizes): every derived figure of the row is of that kind.' },
    (r) => r.metricKind,
    (r, t) => (r.metricKind = t === null ? null : oneOf('metric_kind', METRIC_KINDS, t)),
  ),
  numeric<CapacityRow>({ name: 'max_batch_size', unit: 'samples', kind: 'derived', description: 'The largest effective batch whose peak fits the budget (max_micro_batch_size × accumulation_steps); empty when none does.' }, 'maxBatchSize', { noise: 'count' }),
  numeric<CapacityRow>({ name: 'max_micro_batch_size', unit: 'samples', kind: 'derived', description: 'The largest micro batch that fits: the boundary the search found exactly.' }, 'maxMicroBatchSize', { noise: 'count' }),
  numeric<CapacityRow>({ name: 'peak_at_max_bytes', unit: 'bytes', kind: 'derived', description: 'The metric at max_micro_batch_size (the probe\'s figure).' }, 'peakAtMaxBytes', { noise: 'bytes' }),
  numeric<CapacityRow>({ name: 'peak_above_max_bytes', unit: 'bytes', kind: 'derived', description: 'The metric one micro batch up, which does not fit; empty when the range ends at the max.' }, 'peakAboveMaxBytes', { noise: 'bytes' }),
  numeric<CapacityRow>({ name: 'fixed_bytes', unit: 'bytes', kind: 'derived', description: 'The fit peak = fixed_bytes + bytes_per_sample × micro batch through the two largest probes that fit: the part that does not grow with the batch (weights, gradients, optimizer state, accumulators, weight copies).' }, 'fixedBytes', { noise: 'bytes' }),
  numeric<CapacityRow>({ name: 'bytes_per_sample', unit: 'bytes', kind: 'derived', description: 'The fit\'s slope: peak bytes per sample of the micro batch (activations and their gradients).' }, 'bytesPerSample', { style: RATIO, noise: 'bytes' }),
  numeric<CapacityRow>({ name: 'probes', unit: 'runs', kind: 'info', description: 'Probe runs the search used (each a fresh worker measuring one update).' }, 'probes', { isRequired: true, style: INTEGER }),
  numeric<CapacityRow>({ name: 'recommended_batch_size', unit: 'samples', kind: 'derived', description: 'The largest effective batch whose fitted peak leaves capacity.margin of the budget free (allocator fragmentation, other processes).' }, 'recommendedBatchSize', { noise: 'count' }),
  numeric<CapacityRow>({ name: 'batch_ratio_to_float32', unit: '', kind: 'derived', description: 'max_batch_size ÷ the float32 row\'s (same model, accumulation and backend): how much larger a batch the policy fits.' }, 'batchRatioToFloat32', { style: RATIO, noise: 'value' }),
  numeric<CapacityRow>({ name: 'samples_per_s', unit: 'samples/s', kind: 'measured', description: 'Training throughput of the confirmation run at max_batch_size (capacity.confirmSteps steps); empty without one.' }, 'samplesPerSecond', { style: TIME, noise: 'timing' }),
  numeric<CapacityRow>({ name: 'step_ms', unit: 'ms', kind: 'measured', description: 'Median wall time per optimizer update of the confirmation run.' }, 'stepMs', { style: TIME, noise: 'timing' }),
  textual<CapacityRow>(
    { name: 'is_range_limited', unit: '', kind: 'info', description: '`yes` when every batch of capacity.batchSize fits (the true maximum is at least max_batch_size).' },
    (r) => yesNo(r.isRangeLimited),
    (r, t) => (r.isRangeLimited = parseYesNo('is_range_limited', t)),
  ),
  textual<CapacityRow>(
    { name: 'is_monotonic', unit: '', kind: 'info', description: '`no` when a larger probe peaked lower than a smaller one (the reason names them): the boundary then holds for the probes made, not for every batch.' },
    (r) => yesNo(r.isMonotonic),
    (r, t) => (r.isMonotonic = parseYesNo('is_monotonic', t)),
  ),
];

/** A capacity row with nothing known yet: what a capacity CSV's cells are parsed into. */
export function blankCapacityRow(): CapacityRow {
  return {
    cellIndex: 0,
    cellId: '',
    model: '',
    policy: 'float32',
    accumulationSteps: 1,
    requestedBackend: 'auto',
    backends: [],
    status: 'ok',
    reason: null,
    budgetBytes: 0,
    metric: 'peak_bytes',
    metricKind: null,
    maxBatchSize: null,
    maxMicroBatchSize: null,
    peakAtMaxBytes: null,
    peakAboveMaxBytes: null,
    fixedBytes: null,
    bytesPerSample: null,
    probes: 0,
    recommendedBatchSize: null,
    batchRatioToFloat32: null,
    samplesPerSecond: null,
    stepMs: null,
    isRangeLimited: null,
    isMonotonic: null,
  };
}

export const CAPACITY_SCHEMA: TableSchema<CapacityRow> = {
  kind: 'capacity',
  columns: CAPACITY_COLUMNS,
  blankRow: blankCapacityRow,
  label: (row) => formatCapacityLabel(row),
  cellId: (row) => row.cellId,
  status: (row) => row.status,
  reason: (row) => row.reason,
};

/** `cnn mixed_bfloat16 acc=4 wasm`: a search for people (no batch size: it is what was searched). */
export function formatCapacityLabel(row: Pick<CapacityRow, 'model' | 'policy' | 'accumulationSteps' | 'requestedBackend'>): string {
  return `${row.model} ${row.policy} acc=${row.accumulationSteps}${row.requestedBackend === 'auto' ? '' : ` ${row.requestedBackend}`}`;
}

/** The file name of a spec's capacity CSV, without the directory: `<spec>.capacity.csv`. */
export const CAPACITY_SUFFIX = '.capacity';

/** Parses a capacity CSV; `name` is its file name without `.csv` (`<spec>.capacity`). */
export function parseCapacityCsv(text: string, name: string, source: string, metadata: RunMetadata | null = null): ResultTable<CapacityRow> {
  return parseTableCsv(text, name, source, CAPACITY_SCHEMA, metadata);
}
