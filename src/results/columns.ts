/**
 * THE one definition of the result columns, in output order. The CSV, Markdown and JSON exporters and the README's
 * column reference all read this list, so a column cannot exist in one and drift in another (hyperfine keeps its CSV
 * columns apart from its JSON model and warns in a NOTE that they drift).
 */
import type { ResultRow } from './aggregate.js';

/**
 * - `axis`: identifies the cell (a matrix axis, or derived from axes only);
 * - `measured`: observed while the runs trained; varies between repeats and machines;
 * - `modelled`: computed from measurements by a documented model rather than observed (the policy's 16-bit bytes);
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
  column('params_bytes', 'bytes', 'measured', 'Parameter buffers at the moment of peak_bytes (fp32 graph; 4 bytes per parameter under every policy: Keras keeps fp32 master weights).', (r) => r.paramsBytes),
  column('grads_bytes', 'bytes', 'measured', 'Weight-gradient buffers at the moment of peak_bytes (fp32 graph).', (r) => r.gradsBytes),
  column('optimizer_bytes', 'bytes', 'measured', 'Optimizer slots (Adam m and v, momentum velocity) at the moment of peak_bytes (fp32 graph).', (r) => r.optimizerBytes),
  column('accumulator_bytes', 'bytes', 'measured', 'fp32 gradient accumulators (only with accumulation_steps > 1) at the moment of peak_bytes.', (r) => r.accumulatorBytes),
  column('activations_peak_bytes', 'bytes', 'measured', 'Largest bytes of activations and activation gradients at any moment of the update (fp32 graph).', (r) => r.activationsPeakBytes),
  column('peak_bytes', 'bytes', 'measured', 'Peak live tensor bytes (deduplicated by buffer) during one training update, median over ok repeats. Measured on the fp32 graph under every policy: emulation keeps fp32 tensors, so this is not what the policy would hold (see peak_modeled_bytes).', (r) => r.peakBytes),
  column('resting_bytes', 'bytes', 'measured', 'Live tensor bytes between updates (parameters, optimizer slots, accumulators), fp32 graph.', (r) => r.restingBytes),
  column('peak_modeled_bytes', 'bytes', 'modelled', 'Peak the policy would hold, replayed from the same update: 16-bit activations, activation gradients and the 16-bit copies of weights and inputs (kept from a layer\'s forward to its backward) at 2 bytes; fp32 weights, gradients, optimizer slots, accumulators, float32 layers and the loss at 4. Equals peak_bytes for float32.', (r) => r.peakModeledBytes),
  column('activations_peak_modeled_bytes', 'bytes', 'modelled', 'Largest activation bytes under the policy (as peak_modeled_bytes counts them), at any moment of the update.', (r) => r.activationsPeakModeledBytes),
  column('rss_peak_bytes', 'bytes', 'measured', 'Peak resident set size of the worker process, median over ok repeats (includes the runtime, not just tensors).', (r) => r.rssPeakBytes),
  column('wasm_heap_bytes', 'bytes', 'measured', 'Wasm linear memory at the end (its high-water mark: it never shrinks), median over ok repeats; empty when not on wasm.', (r) => r.wasmHeapBytes),
  column('gpu_peak_bytes', 'bytes', 'measured', 'Peak GPU memory of the worker process, sampled with nvidia-smi every 0.5 s (workers run with TF_FORCE_GPU_ALLOW_GROWTH=true); empty when no GPU was sampled.', (r) => r.gpuPeakBytes),
  column('oom_reached_bytes', 'bytes', 'info', 'For status oom: the bytes a run had reached when it stopped (the policy\'s modelled bytes for a memoryLimit budget, measured bytes for a real allocation failure); empty otherwise.', (r) => r.oomReachedBytes),
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
