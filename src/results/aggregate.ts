/**
 * Turns run records into one result row per matrix cell: repeats are summarised by their median and spread
 * (max − min), the way hyperfine summarises a benchmark's runs. Pure: no files, no clock. Formatting to text is the
 * columns' job (`columns.ts`); rows keep numbers so every exporter (CSV, Markdown, JSON) starts from the same values.
 */
import type { Plan, RunConfig } from '../matrix/types.js';
import { RECORDED_STATUSES, type RecordedStatus, type RunMeasurements, type StoredRecord } from '../runner/protocol.js';
import type { BackendChoice, BackendName, Policy } from '../spec/types.js';
import { median, range } from '../util/stats.js';

/** Longest `reason` kept in a row; the full text stays in `runs.jsonl`. */
export const REASON_MAX_CHARS = 120;

/** One matrix cell's aggregated outcome. `null` = the value does not exist (no ok repeat, no loss scale, not wasm). */
export interface ResultRow {
  /** 0-based position in matrix order. */
  cellIndex: number;
  cellId: string;
  model: string;
  batchSize: number;
  microBatchSize: number;
  policy: Policy;
  accumulationSteps: number;
  /** The engine the cell asks for (`auto`, or one by name). */
  requestedBackend: BackendChoice;
  /** Backends that ran any recorded repeat, unique, sorted. */
  backends: BackendName[];
  /** Precision modes of the ok repeats, unique, sorted. */
  precisions: Array<RunMeasurements['precision']>;
  /** Where the ok repeats' tensors lived (`cpu`, `cuda (<GPU>)`), unique, sorted; empty when the engine does not say. */
  devices: string[];
  /** `ok` when every recorded repeat is ok, else the worst of them (`RECORDED_STATUSES` is worst first). */
  status: RecordedStatus;
  runsOk: number;
  /** Repeats the plan has for this cell. */
  runsPlanned: number;
  /** Shortened reason of the first repeat (by repeat index) whose status is the row's status; null when ok. */
  reason: string | null;
  paramCount: number | null;
  stepMs: number | null;
  /** null with fewer than two ok repeats: a spread of one sample would claim a reproducibility never measured. */
  stepMsSpread: number | null;
  samplesPerSecond: number | null;
  initialLoss: number | null;
  finalLoss: number | null;
  finalLossSpread: number | null;
  evalAccuracy: number | null;
  lossScaleFinal: number | null;
  skippedSteps: number | null;
  paramsBytes: number | null;
  gradsBytes: number | null;
  optimizerBytes: number | null;
  accumulatorBytes: number | null;
  activationsPeakBytes: number | null;
  peakBytes: number | null;
  restingBytes: number | null;
  peakModeledBytes: number | null;
  activationsPeakModeledBytes: number | null;
  peakTfModeledBytes: number | null;
  activationsPeakTfModeledBytes: number | null;
  peakTorchModeledBytes: number | null;
  reservedPeakBytes: number | null;
  rssPeakBytes: number | null;
  wasmHeapBytes: number | null;
  /** Median over ok repeats of the sampled GPU peak; null when no GPU was sampled. */
  gpuPeakBytes: number | null;
  /** Median over oom repeats of the bytes reached when they stopped; null when no repeat ran out of memory. */
  oomReachedBytes: number | null;
}

/** What aggregation needs of a plan: its cells and which run belongs to which cell. */
export type PlanOutline = Pick<Plan, 'cells'> & { runs: ReadonlyArray<Pick<RunConfig, 'runId' | 'cellId'>> };

/**
 * One row per cell of `plan`, in matrix order; cells without any record yet are left out.
 * Only records whose `runId` is in `plan.runs` count (stale records from an older spec are ignored); a later record
 * for the same `runId` replaces an earlier one (a rerun). Otherwise the input order does not matter.
 */
export function aggregateCells(plan: PlanOutline, records: readonly StoredRecord[]): ResultRow[] {
  const plannedPerCell = new Map<string, number>();
  const plannedRunIds = new Set<string>();
  for (const run of plan.runs) {
    plannedRunIds.add(run.runId);
    plannedPerCell.set(run.cellId, (plannedPerCell.get(run.cellId) ?? 0) + 1);
  }

  const latestByRunId = new Map<string, StoredRecord>();
  for (const record of records) {
    if (plannedRunIds.has(record.runId)) latestByRunId.set(record.runId, record);
  }
  const recordsByCell = new Map<string, StoredRecord[]>();
  for (const record of latestByRunId.values()) {
    const list = recordsByCell.get(record.cellId);
    if (list) list.push(record);
    else recordsByCell.set(record.cellId, [record]);
  }

  const rows: ResultRow[] = [];
  for (const cell of [...plan.cells].sort((a, b) => a.index - b.index)) {
    const cellRecords = recordsByCell.get(cell.cellId);
    if (!cellRecords || cellRecords.length === 0) continue;
    cellRecords.sort(compareRecords);

    const status = worstStatus(cellRecords.map((r) => r.status));
    const ok = cellRecords.flatMap((r) => (r.status === 'ok' && r.measurements ? [r.measurements] : []));
    const pick = (key: NumericMeasurement): number | null => median(ok.flatMap((m) => nonNull(m[key])));
    const spread = (key: NumericMeasurement): number | null =>
      ok.length < 2 ? null : range(ok.flatMap((m) => nonNull(m[key])));
    const reasonRecord = status === 'ok' ? undefined : cellRecords.find((r) => r.status === status);

    rows.push({
      cellIndex: cell.index,
      cellId: cell.cellId,
      model: cell.model,
      batchSize: cell.batchSize,
      microBatchSize: cell.microBatchSize,
      policy: cell.policy,
      accumulationSteps: cell.accumulationSteps,
      requestedBackend: cell.backend,
      backends: uniqueSorted(cellRecords.flatMap((r) => nonNull(r.backend))),
      precisions: uniqueSorted(ok.map((m) => m.precision)),
      devices: uniqueSorted(ok.flatMap((m) => nonNull(deviceOf(m)))),
      status,
      runsOk: cellRecords.filter((r) => r.status === 'ok').length,
      runsPlanned: plannedPerCell.get(cell.cellId) ?? cellRecords.length,
      reason: reasonRecord?.reason ? shortenReason(reasonRecord.reason) : null,
      paramCount: pick('paramCount'),
      stepMs: pick('stepMsMedian'),
      stepMsSpread: spread('stepMsMedian'),
      samplesPerSecond: pick('samplesPerSecond'),
      initialLoss: pick('initialLoss'),
      finalLoss: pick('finalLoss'),
      finalLossSpread: spread('finalLoss'),
      evalAccuracy: pick('evalAccuracy'),
      lossScaleFinal: pick('lossScaleFinal'),
      skippedSteps: pick('skippedSteps'),
      paramsBytes: pick('paramsBytes'),
      gradsBytes: pick('gradsBytes'),
      optimizerBytes: pick('optimizerBytes'),
      accumulatorBytes: pick('accumulatorBytes'),
      activationsPeakBytes: pick('activationsPeakBytes'),
      peakBytes: pick('peakBytes'),
      restingBytes: pick('restingBytes'),
      peakModeledBytes: pick('peakModeledBytes'),
      activationsPeakModeledBytes: pick('activationsPeakModeledBytes'),
      peakTfModeledBytes: pick('peakTfModeledBytes'),
      activationsPeakTfModeledBytes: pick('activationsPeakTfModeledBytes'),
      peakTorchModeledBytes: pick('peakTorchModeledBytes'),
      reservedPeakBytes: pick('reservedPeakBytes'),
      rssPeakBytes: pick('rssPeakBytes'),
      wasmHeapBytes: pick('wasmHeapBytes'),
      gpuPeakBytes: median(cellRecords.flatMap((r) => (r.status === 'ok' ? nonNull(r.gpuPeakBytes ?? null) : []))),
      oomReachedBytes: median(cellRecords.flatMap((r) => (r.status === 'oom' ? nonNull(r.reachedBytes ?? null) : []))),
    });
  }
  return rows;
}

/**
 * Records in matrix order: by cell index, then repeat, then run id (a total order, so any input order gives the
 * same output). What `runs.jsonl` is written in.
 */
export function sortRecords(records: readonly StoredRecord[]): StoredRecord[] {
  return [...records].sort(
    (a, b) => a.cellIndex - b.cellIndex || compareRecords(a, b),
  );
}

/** First non-empty line, whitespace collapsed, cut to `REASON_MAX_CHARS` with `...`. */
export function shortenReason(reason: string): string {
  const line = reason
    .split(/\r?\n/)
    .map((l) => l.replace(/\s+/g, ' ').trim())
    .find((l) => l !== '') ?? '';
  return line.length <= REASON_MAX_CHARS ? line : `${line.slice(0, REASON_MAX_CHARS - 3).trimEnd()}...`;
}

type NumericMeasurement = {
  [K in keyof RunMeasurements]: RunMeasurements[K] extends number | null ? K : never;
}[keyof RunMeasurements];

/** `cpu`, or `cuda (NVIDIA H200)`; null when the engine does not say (tfjs-node, or a record from before engines said). */
function deviceOf(m: RunMeasurements): string | null {
  const engine = m.engine as RunMeasurements['engine'] | undefined;
  if (engine?.device === 'cuda') return engine.deviceName ? `cuda (${engine.deviceName})` : 'cuda';
  return engine?.device ?? null;
}

function worstStatus(statuses: readonly RecordedStatus[]): RecordedStatus {
  let worst = RECORDED_STATUSES.length - 1;
  for (const status of statuses) worst = Math.min(worst, RECORDED_STATUSES.indexOf(status));
  return RECORDED_STATUSES[worst] ?? 'crashed';
}

function compareRecords(a: StoredRecord, b: StoredRecord): number {
  return a.repeat - b.repeat || (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0);
}

function nonNull<T>(value: T | null): T[] {
  return value === null ? [] : [value];
}

function uniqueSorted<T extends string>(values: readonly T[]): T[] {
  return [...new Set(values)].sort();
}
