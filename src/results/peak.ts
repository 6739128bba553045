/**
 * The one figure to show when a row's memory is summed up in one number: the most truthful peak column it has. The
 * progress line of `mpx run`, its summary, and the Markdown and HTML reports all ask this module, so they never
 * disagree on which column a number came from or whether it was measured or modeled.
 *
 * - torch rows: `peak_bytes`, measured by the runtime under the policy's real dtypes;
 * - tfjs rows (wasm, cpu, tensorflow): `peak_tf_modeled_bytes`, modeled — what TensorFlow would hold under the policy
 *   (tfjs's own `peak_bytes` is the fp32 graph with tfjs's lifetimes, 2–3× a real runtime on a CNN: README "Memory as
 *   a real runtime holds it").
 */
import type { BackendChoice, BackendName } from '../spec/types.js';
import type { ResultRow } from './aggregate.js';
import { COLUMNS, type Column } from './columns.js';

export type PeakKind = 'measured' | 'modeled';

/** Which column is a row's planning peak, and what kind of figure it is. */
export interface PeakSource {
  column: Column;
  kind: PeakKind;
  /** Short, for labels: `measured (torch)`, `modeled (TensorFlow)`. */
  label: string;
  /** One line for a legend: what the figure is. */
  explanation: string;
}

export interface PlanningPeak extends PeakSource {
  bytes: number;
}

/** What the choice needs from a row; a finished run's measurements fit too (see `planningPeakOfRun`). */
export type PeakInput = Pick<ResultRow, 'backends' | 'requestedBackend' | 'peakBytes' | 'peakTfModeledBytes'>;

const column = (name: string): Column => COLUMNS.find((c) => c.name === name)!;

const MEASURED: PeakSource = {
  column: column('peak_bytes'),
  kind: 'measured',
  label: 'measured (torch)',
  explanation: "PyTorch's own peak under the policy's real dtypes, on the torch engine",
};
const MODELED: PeakSource = {
  column: column('peak_tf_modeled_bytes'),
  kind: 'modeled',
  label: 'modeled (TensorFlow)',
  explanation: 'what TensorFlow would hold under the policy, on tfjs engines',
};

/** True for rows of the torch engine: the backend that ran, else the one the cell asks for (a row that never ran). */
export function isTorchRow(row: Pick<ResultRow, 'backends' | 'requestedBackend'>): boolean {
  return row.backends.length > 0 ? row.backends.includes('torch') : row.requestedBackend === 'torch';
}

/** The column a row's planning peak comes from (also for rows without a value: failed, oom). */
export function peakSourceOf(row: Pick<ResultRow, 'backends' | 'requestedBackend'>): PeakSource {
  return isTorchRow(row) ? MEASURED : MODELED;
}

/** The row's planning peak; null when the row has no value in that column (not ok, or an older CSV). */
export function planningPeak(row: PeakInput): PlanningPeak | null {
  const source = peakSourceOf(row);
  const bytes = source === MEASURED ? row.peakBytes : row.peakTfModeledBytes;
  return bytes === null || !Number.isFinite(bytes) ? null : { ...source, bytes };
}

/** The same choice for one finished run, from its measurements. */
export function planningPeakOfRun(
  measurements: { backend: BackendName; peakBytes: number; peakTfModeledBytes: number | null },
  requestedBackend: BackendChoice,
): PlanningPeak | null {
  return planningPeak({ backends: [measurements.backend], requestedBackend, peakBytes: measurements.peakBytes, peakTfModeledBytes: measurements.peakTfModeledBytes });
}

/** Decimal units, as the README's tables (MB = 10⁶ bytes). */
const BYTE_UNITS = ['B', 'kB', 'MB', 'GB', 'TB'] as const;

/** `29.88 MB`, `34.50 MB`, `532.7 MB`, `1.234 GB`, `880 B`: four significant digits, decimal units; deterministic. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  let unit = 0;
  let value = Math.abs(bytes);
  while (value >= 999.95 && unit < BYTE_UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  // value is in [1, 999.95) here, so toPrecision never switches to an exponent.
  const text = unit === 0 ? String(Math.round(value)) : value.toPrecision(4);
  return `${bytes < 0 ? '-' : ''}${text} ${BYTE_UNITS[unit]}`;
}
