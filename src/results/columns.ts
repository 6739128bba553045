/**
 * THE one definition of the result columns, in output order. The CSV, Markdown and JSON exporters and the README's
 * column reference all read this list, so a column cannot exist in one and drift in another (hyperfine keeps its CSV
 * columns apart from its JSON model and warns in a NOTE that they drift).
 */
import type { ResultRow } from './aggregate.js';

/**
 * - `axis`: identifies the cell (a matrix axis, or derived from axes only);
 * - `measured`: observed while the runs trained; varies between repeats and machines;
 * - `modelled`: computed by a formula rather than observed (none yet; kept for estimates such as 16-bit bytes);
 * - `info`: bookkeeping and context (ids, status, backend, counts).
 */
export type ColumnKind = 'axis' | 'measured' | 'modelled' | 'info';

export interface Column {
  /** snake_case header. */
  name: string;
  /** Unit of the value; '' when it has none (names, ids, ratios such as a loss). */
  unit: string;
  kind: ColumnKind;
  description: string;
  /** The typed value, for exporters that keep numbers (JSON); null = does not exist. */
  value(row: ResultRow): string | number | null;
  /** The value as text, deterministic: no locale, no exponent; '' when the value does not exist. */
  format(row: ResultRow): string;
}

/** How a number is written: a whole number, or this many significant digits. */
type NumberStyle = 'integer' | { significantDigits: number };

const INTEGER: NumberStyle = 'integer';
/** Times and rates: run-to-run noise is well above the 4th digit. */
const TIME: NumberStyle = { significantDigits: 4 };
/** Losses: mixed-precision effects show up in small differences. */
const LOSS: NumberStyle = { significantDigits: 6 };
const RATIO: NumberStyle = { significantDigits: 4 };

function column(
  name: string,
  unit: string,
  kind: ColumnKind,
  description: string,
  value: (row: ResultRow) => string | number | null,
  style: NumberStyle = INTEGER,
): Column {
  return {
    name,
    unit,
    kind,
    description,
    value,
    format(row) {
      const v = value(row);
      if (v === null) return '';
      if (typeof v === 'string') return v;
      return style === 'integer' ? formatInteger(v) : formatSignificant(v, style.significantDigits);
    },
  };
}

const joined = (values: readonly string[]): string | null => (values.length === 0 ? null : values.join('|'));

export const COLUMNS: readonly Column[] = [
  column('cell', '', 'info', '0-based position of the cell in matrix order (rows follow it).', (r) => r.cellIndex),
  column('cell_id', '', 'info', 'Content hash of the resolved cell; stable when the matrix is reordered.', (r) => r.cellId),
  column('model', '', 'axis', 'Model name (key under `models:`).', (r) => r.model),
  column('batch_size', 'samples', 'axis', 'Effective batch per optimizer update.', (r) => r.batchSize),
  column('micro_batch_size', 'samples', 'axis', 'Samples per forward/backward pass: batch_size / accumulation_steps.', (r) => r.microBatchSize),
  column('policy', '', 'axis', 'Precision policy: float32, mixed_float16 or mixed_bfloat16.', (r) => r.policy),
  column('accumulation_steps', 'micro-batches', 'axis', 'Micro-batches whose gradients are summed per optimizer update.', (r) => r.accumulationSteps),
  column('backend', '', 'info', 'tfjs backend that actually ran (what `auto` resolved to); differing repeats are joined with `|`.', (r) => joined(r.backends)),
  column('precision', '', 'info', '`native` (real 16-bit dtypes) or `emulated` (fp32 values rounded onto the 16-bit grid), from the ok repeats.', (r) => joined(r.precisions)),
  column('status', '', 'info', '`ok` if every recorded repeat is ok, else the worst of them: crashed > timeout > failed > oom (a crash explains least; oom is itself an answer).', (r) => r.status),
  column('runs_ok', 'runs', 'info', 'Ok repeats / planned repeats, e.g. `3/3`; an `ok` row below n/n is still running or was interrupted.', (r) => `${r.runsOk}/${r.runsPlanned}`),
  column('reason', '', 'info', 'Why the first repeat with the row\'s status was not ok (first line, shortened; full text in runs.jsonl); empty when ok.', (r) => r.reason),
  column('params', 'parameters', 'info', 'Trainable parameters of the model (weights and biases).', (r) => r.paramCount),
  column('step_ms', 'ms', 'measured', 'Median over ok repeats of each run\'s median wall time per optimizer update (all its micro-batches), warm-up excluded.', (r) => r.stepMs, TIME),
  column('step_ms_spread', 'ms', 'measured', 'max − min of step_ms over ok repeats; empty with fewer than two.', (r) => r.stepMsSpread, TIME),
  column('samples_per_s', 'samples/s', 'measured', 'Training throughput, median over ok repeats.', (r) => r.samplesPerSecond, TIME),
  column('initial_loss', '', 'measured', 'Mean training loss of the first update\'s micro-batches (the initial weights), median over ok repeats.', (r) => r.initialLoss, LOSS),
  column('final_loss', '', 'measured', 'Mean training loss of the last update\'s micro-batches (computed before it is applied), median over ok repeats; `nan` if any repeat diverged.', (r) => r.finalLoss, LOSS),
  column('final_loss_spread', '', 'measured', 'max − min of final_loss over ok repeats; empty with fewer than two.', (r) => r.finalLossSpread, LOSS),
  column('eval_accuracy', 'fraction', 'measured', 'Accuracy on the held-out split (0..1), median over ok repeats.', (r) => r.evalAccuracy, RATIO),
  column('loss_scale_final', '', 'measured', 'Loss-scale factor at the end of training, median over ok repeats; empty when the policy uses no loss scaling.', (r) => r.lossScaleFinal, LOSS),
  column('skipped_steps', 'steps', 'measured', 'Updates skipped because gradients were not finite (dynamic loss scaling), median over ok repeats.', (r) => r.skippedSteps),
  column('peak_bytes', 'bytes', 'measured', 'Peak live tensor bytes (deduplicated by buffer) during one training update, median over ok repeats. Measured on the fp32 graph: an emulated 16-bit policy keeps fp32 tensors, so this is not what native 16-bit tensors would take.', (r) => r.peakBytes),
  column('resting_bytes', 'bytes', 'measured', 'Live tensor bytes between updates (parameters, optimizer state, accumulators), median over ok repeats; fp32 graph as for peak_bytes.', (r) => r.restingBytes),
  column('rss_peak_bytes', 'bytes', 'measured', 'Peak resident set size of the worker process, median over ok repeats (includes the runtime, not just tensors).', (r) => r.rssPeakBytes),
  column('wasm_heap_bytes', 'bytes', 'measured', 'Wasm linear memory at the end (its high-water mark: it never shrinks), median over ok repeats; empty when not on wasm.', (r) => r.wasmHeapBytes),
];

/** The column reference for the README: a Markdown table generated from `COLUMNS`. */
export function renderColumnReference(): string {
  const cell = (text: string): string => text.replace(/\|/g, '\\|');
  const lines = ['| column | unit | kind | description |', '| --- | --- | --- | --- |'];
  for (const c of COLUMNS) {
    lines.push(`| \`${c.name}\` | ${cell(c.unit)} | ${c.kind} | ${cell(c.description)} |`);
  }
  return `${lines.join('\n')}\n`;
}

/** A whole number in plain digits (rounded if needed; never `1e+21`); `nan`, `inf`, `-inf` for non-finite values. */
export function formatInteger(value: number): string {
  if (!Number.isFinite(value)) return formatNonFinite(value);
  const rounded = Math.round(value);
  return rounded === 0 ? '0' : BigInt(rounded).toString();
}

/**
 * `value` rounded to `digits` significant digits, in positional notation (never an exponent), trailing fractional
 * zeros dropped: 0.000012345678 → `0.00001235`, 123456.7 → `123500`, 2.5 → `2.5`, -0 → `0`.
 */
export function formatSignificant(value: number, digits: number): string {
  if (!Number.isFinite(value)) return formatNonFinite(value);
  if (value === 0) return '0';
  // toExponential gives exactly `digits` significant digits with correct rounding: "d.ddde±x".
  const [mantissa = '0', exponentText = '0'] = Math.abs(value).toExponential(digits - 1).split('e');
  const significand = mantissa.replace('.', '');
  const exponent = Number(exponentText);
  let text: string;
  if (exponent >= significand.length - 1) {
    text = significand + '0'.repeat(exponent - (significand.length - 1));
  } else if (exponent >= 0) {
    text = `${significand.slice(0, exponent + 1)}.${significand.slice(exponent + 1)}`;
  } else {
    text = `0.${'0'.repeat(-exponent - 1)}${significand}`;
  }
  if (text.includes('.')) text = text.replace(/0+$/, '').replace(/\.$/, '');
  return value < 0 ? `-${text}` : text;
}

function formatNonFinite(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  return value > 0 ? 'inf' : '-inf';
}
