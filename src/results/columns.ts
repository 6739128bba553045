/**
 * THE one definition of the result columns, in output order. The CSV exporter, the results-table reader (`table.ts`,
 * for `mpx diff` and reports), the diff's noise bands and the README's column reference all read this list, so a
 * column cannot exist in one and drift in another (hyperfine keeps its CSV columns apart from its JSON model and warns
 * in a NOTE that they drift).
 */
import { RECORDED_STATUSES, type RunMeasurements } from '../runner/protocol.js';
import { BACKEND_CHOICES, BACKEND_NAMES, POLICIES, type BackendChoice, type BackendName, type Policy } from '../spec/types.js';
import type { ResultRow } from './aggregate.js';

/**
 * - `axis`: identifies the cell (a matrix axis, or derived from axes only);
 * - `measured`: observed while the runs trained; varies between repeats and machines;
 * - `modeled`: computed from measurements by a documented model rather than observed (the policy's 16-bit bytes);
 * - `derived`: found from a row's own figures by a documented procedure (a capacity search, a fit, a ratio): measured
 *   or modeled as its source figure is, which the row says (`metric_kind` in a capacity CSV);
 * - `info`: bookkeeping and context (ids, status, backend, counts).
 */
export type ColumnKind = 'axis' | 'measured' | 'modeled' | 'derived' | 'info';

/**
 * How `mpx diff` sets a metric's noise band:
 * - `timing`: wall-clock times and rates — scheduler and machine noise;
 * - `process-memory`: bytes of a whole process or sampled from a device — the allocator and runtime add noise;
 * - `bytes`: tensor bytes from mpx's ledger or its memory model — exact, the same on every rerun;
 * - `count`: steps, parameters — exact;
 * - `value`: losses, accuracies, loss scales — deterministic for a backend and machine, so only a last-printed-digit
 *   tolerance.
 */
export type NoiseKind = 'timing' | 'process-memory' | 'bytes' | 'count' | 'value';
export const NOISE_KINDS: readonly NoiseKind[] = ['timing', 'process-memory', 'bytes', 'count', 'value'];

/** One column of a results table whose rows are `R` (a run matrix's `ResultRow`, or a capacity search's row). */
export interface Column<R = ResultRow> {
  /** snake_case header. */
  name: string;
  /** Unit of the value; '' when it has none (names, ids, ratios such as a loss). */
  unit: string;
  kind: ColumnKind;
  description: string;
  /** For measured and modeled numbers: how `mpx diff` tells a change from noise. null for axes, info and spreads. */
  noise: NoiseKind | null;
  /** For a metric: the column holding the spread of its repeats (it widens the noise band). */
  spread: string | null;
  /** The typed value; null = does not exist. */
  value(row: R): string | number | null;
  /** The value as text, deterministic: no locale, no exponent; '' when the value does not exist. */
  format(row: R): string;
  /** The inverse of `format`: reads the text back into `row`. Throws ColumnParseError on text format never writes. */
  parse(text: string, row: R): void;
}

/** A cell of a results CSV that mpx would never have written. */
export class ColumnParseError extends Error {
  constructor(
    readonly column: string,
    readonly text: string,
    expected: string,
  ) {
    super(`column ${column} holds "${text}", not ${expected}`);
  }
}

/** How a number is written: a whole number, or this many significant digits. */
export type NumberStyle = 'integer' | { significantDigits: number };

export const INTEGER: NumberStyle = 'integer';
/** Times and rates: run-to-run noise is well above the 4th digit. */
export const TIME: NumberStyle = { significantDigits: 4 };
/** Losses: mixed-precision effects show up in small differences. */
const LOSS: NumberStyle = { significantDigits: 6 };
export const RATIO: NumberStyle = { significantDigits: 4 };

/** The fields of `R` that hold a number (or null). */
export type NumberField<R> = { [K in keyof R]: R[K] extends number | null ? K : never }[keyof R];
export type ColumnDescription = Pick<Column, 'name' | 'unit' | 'kind' | 'description'>;

function formatNumber(value: number, style: NumberStyle): string {
  return style === 'integer' ? formatInteger(value) : formatSignificant(value, style.significantDigits);
}

/** A numeric column read from and written to one field of the row. */
export function numeric<R = ResultRow>(
  describe: ColumnDescription,
  field: NumberField<R>,
  options: { style?: NumberStyle; noise?: NoiseKind; spread?: string; isRequired?: boolean } = {},
): Column<R> {
  const style = options.style ?? INTEGER;
  return {
    ...describe,
    noise: options.noise ?? null,
    spread: options.spread ?? null,
    value: (row) => row[field] as number | null,
    format(row) {
      const v = row[field] as number | null;
      return v === null ? '' : formatNumber(v, style);
    },
    parse(text, row) {
      const value = parseNumber(text, describe.name);
      if (value === null && options.isRequired) throw new ColumnParseError(describe.name, text, 'a number');
      (row as Record<NumberField<R>, number | null>)[field] = value;
    },
  };
}

/** A text column; `set` turns the text back into the row's value (null for ''). */
export function textual<R = ResultRow>(describe: ColumnDescription, get: (row: R) => string | null, set: (row: R, text: string | null) => void): Column<R> {
  return {
    ...describe,
    noise: null,
    spread: null,
    value: get,
    format: (row) => get(row) ?? '',
    parse: (text, row) => set(row, text === '' ? null : text),
  };
}

export function oneOf<T extends string>(column: string, values: readonly T[], text: string): T {
  if ((values as readonly string[]).includes(text)) return text as T;
  throw new ColumnParseError(column, text, `one of ${values.join(', ')}`);
}

export function required(column: string, text: string | null): string {
  if (text === null) throw new ColumnParseError(column, '', 'a value');
  return text;
}

const PRECISIONS: ReadonlyArray<RunMeasurements['precision']> = ['native', 'emulated'];
const joined = (values: readonly string[]): string | null => (values.length === 0 ? null : values.join('|'));
const split = <T extends string>(column: string, values: readonly T[], text: string | null): T[] =>
  text === null ? [] : text.split('|').map((part) => oneOf(column, values, part));

export const COLUMNS: readonly Column[] = [
  numeric({ name: 'cell', unit: '', kind: 'info', description: '0-based position of the cell in matrix order (rows follow it).' }, 'cellIndex', { isRequired: true }),
  textual(
    { name: 'cell_id', unit: '', kind: 'info', description: 'Content hash of the resolved cell; stable when the matrix is reordered.' },
    (r) => r.cellId,
    (r, t) => (r.cellId = required('cell_id', t)),
  ),
  textual(
    { name: 'model', unit: '', kind: 'axis', description: 'Model name (key under `models:`).' },
    (r) => r.model,
    (r, t) => (r.model = required('model', t)),
  ),
  numeric({ name: 'batch_size', unit: 'samples', kind: 'axis', description: 'Effective batch per optimizer update.' }, 'batchSize', { isRequired: true }),
  numeric({ name: 'micro_batch_size', unit: 'samples', kind: 'axis', description: 'Samples per forward/backward pass: batch_size / accumulation_steps.' }, 'microBatchSize', { isRequired: true }),
  textual(
    { name: 'policy', unit: '', kind: 'axis', description: 'Precision policy: float32, mixed_float16 or mixed_bfloat16.' },
    (r) => r.policy,
    (r, t) => (r.policy = oneOf<Policy>('policy', POLICIES, required('policy', t))),
  ),
  numeric({ name: 'accumulation_steps', unit: 'micro-batches', kind: 'axis', description: 'Micro-batches whose gradients are summed per optimizer update.' }, 'accumulationSteps', { isRequired: true }),
  textual(
    {
      name: 'requested_backend',
      unit: '',
      kind: 'axis',
      description: 'The engine the cell asks for: the spec\'s `backend`, or its value on the `backend` matrix axis (`auto`, `wasm`, `cpu`, `tensorflow`, `torch`).',
    },
    (r) => r.requestedBackend,
    (r, t) => (r.requestedBackend = oneOf<BackendChoice>('requested_backend', BACKEND_CHOICES, required('requested_backend', t))),
  ),
  textual(
    { name: 'backend', unit: '', kind: 'info', description: 'The backend that actually ran (what `auto` resolved to); differing repeats are joined with `|`.' },
    (r) => joined(r.backends),
    (r, t) => (r.backends = split<BackendName>('backend', BACKEND_NAMES, t)),
  ),
  textual(
    { name: 'precision', unit: '', kind: 'info', description: '`native` (real 16-bit dtypes, as on torch, or float32 anywhere) or `emulated` (tfjs: fp32 values rounded onto the 16-bit grid), from the ok repeats.' },
    (r) => joined(r.precisions),
    (r, t) => (r.precisions = split('precision', PRECISIONS, t)),
  ),
  textual(
    {
      name: 'device',
      unit: '',
      kind: 'info',
      description: 'Where the tensors lived: `cpu`, or `cuda (<GPU>)`; empty when the engine does not say (tfjs-node decides inside TensorFlow).',
    },
    (r) => joined(r.devices),
    (r, t) => (r.devices = t === null ? [] : t.split('|')),
  ),
  textual(
    { name: 'status', unit: '', kind: 'info', description: '`ok` if every recorded repeat is ok, else the worst of them: crashed > timeout > failed > unsupported > oom (a crash explains least; unsupported says the engine cannot run the policy on its device; oom is itself an answer).' },
    (r) => r.status,
    (r, t) => (r.status = oneOf('status', RECORDED_STATUSES, required('status', t))),
  ),
  textual(
    { name: 'runs_ok', unit: 'runs', kind: 'info', description: 'Ok repeats / planned repeats, e.g. `3/3`; an `ok` row below n/n is still running or was interrupted.' },
    (r) => `${r.runsOk}/${r.runsPlanned}`,
    (r, t) => {
      const match = /^(\d+)\/(\d+)$/.exec(t ?? '');
      if (match === null) throw new ColumnParseError('runs_ok', t ?? '', 'ok/planned, e.g. 3/3');
      r.runsOk = Number(match[1]);
      r.runsPlanned = Number(match[2]);
    },
  ),
  textual(
    { name: 'reason', unit: '', kind: 'info', description: "Why the first repeat with the row's status was not ok (first line, shortened; full text in runs.jsonl); empty when ok." },
    (r) => r.reason,
    (r, t) => (r.reason = t),
  ),
  numeric({ name: 'params', unit: 'parameters', kind: 'info', description: 'Trainable parameters of the model (weights and biases).' }, 'paramCount'),
  numeric(
    { name: 'step_ms', unit: 'ms', kind: 'measured', description: "Median over ok repeats of each run's median wall time per optimizer update (all its micro-batches), warm-up excluded." },
    'stepMs',
    { style: TIME, noise: 'timing', spread: 'step_ms_spread' },
  ),
  numeric({ name: 'step_ms_spread', unit: 'ms', kind: 'measured', description: 'max − min of step_ms over ok repeats; empty with fewer than two.' }, 'stepMsSpread', { style: TIME }),
  numeric({ name: 'samples_per_s', unit: 'samples/s', kind: 'measured', description: 'Training throughput, median over ok repeats.' }, 'samplesPerSecond', { style: TIME, noise: 'timing' }),
  numeric(
    { name: 'initial_loss', unit: '', kind: 'measured', description: "Mean training loss of the first update's micro-batches (the initial weights), median over ok repeats." },
    'initialLoss',
    { style: LOSS, noise: 'value' },
  ),
  numeric(
    { name: 'final_loss', unit: '', kind: 'measured', description: "Mean training loss of the last update's micro-batches (computed before it is applied), median over ok repeats; `nan` if any repeat diverged." },
    'finalLoss',
    { style: LOSS, noise: 'value', spread: 'final_loss_spread' },
  ),
  numeric({ name: 'final_loss_spread', unit: '', kind: 'measured', description: 'max − min of final_loss over ok repeats; empty with fewer than two.' }, 'finalLossSpread', { style: LOSS }),
  numeric({ name: 'eval_accuracy', unit: 'fraction', kind: 'measured', description: 'Accuracy on the held-out split (0..1), median over ok repeats.' }, 'evalAccuracy', { style: RATIO, noise: 'value' }),
  numeric(
    { name: 'loss_scale_final', unit: '', kind: 'measured', description: 'Loss-scale factor at the end of training, median over ok repeats; empty when the policy uses no loss scaling.' },
    'lossScaleFinal',
    { style: LOSS, noise: 'value' },
  ),
  numeric(
    { name: 'skipped_steps', unit: 'steps', kind: 'measured', description: 'Updates skipped because gradients were not finite (dynamic loss scaling), median over ok repeats.' },
    'skippedSteps',
    { noise: 'count' },
  ),
  numeric(
    { name: 'params_bytes', unit: 'bytes', kind: 'measured', description: 'Parameter buffers at the moment of peak_bytes; 4 bytes per parameter under every policy (Keras keeps fp32 master weights). Empty where the engine cannot attribute bytes exactly.' },
    'paramsBytes',
    { noise: 'bytes' },
  ),
  numeric({ name: 'grads_bytes', unit: 'bytes', kind: 'measured', description: 'Weight-gradient buffers at the moment of peak_bytes (fp32 on every engine: gradients of fp32 variables). Empty where the engine cannot attribute bytes exactly.' }, 'gradsBytes', { noise: 'bytes' }),
  numeric(
    { name: 'optimizer_bytes', unit: 'bytes', kind: 'measured', description: 'Optimizer slots (Adam and AdamW m and v, momentum velocity, RMSprop velocity, momentum and mean gradient) at the moment of peak_bytes (fp32). Empty where the engine cannot attribute bytes exactly.' },
    'optimizerBytes',
    { noise: 'bytes' },
  ),
  numeric(
    { name: 'accumulator_bytes', unit: 'bytes', kind: 'measured', description: 'fp32 gradient accumulators (only with accumulation_steps > 1) at the moment of peak_bytes. Empty where the engine cannot attribute bytes exactly.' },
    'accumulatorBytes',
    { noise: 'bytes' },
  ),
  numeric(
    { name: 'activations_peak_bytes', unit: 'bytes', kind: 'measured', description: 'Largest bytes of activations and activation gradients at any moment of the update (tfjs: fp32 graph; torch: real dtypes). Empty where the engine cannot attribute bytes exactly.' },
    'activationsPeakBytes',
    { noise: 'bytes' },
  ),
  numeric(
    {
      name: 'peak_bytes',
      unit: 'bytes',
      kind: 'measured',
      description:
        'Peak live tensor bytes during one training update, median over ok repeats. tfjs: every buffer counted once, on the fp32 graph under every policy (emulation keeps fp32 tensors, so this is not what the policy would hold: see peak_modeled_bytes). torch: the runtime\'s own peak under the policy\'s real dtypes (CUDA: max_memory_allocated; CPU: see the README).',
    },
    'peakBytes',
    { noise: 'bytes' },
  ),
  numeric(
    { name: 'resting_bytes', unit: 'bytes', kind: 'measured', description: 'Live tensor bytes between updates (parameters, optimizer slots, accumulators).' },
    'restingBytes',
    { noise: 'bytes' },
  ),
  numeric(
    {
      name: 'peak_modeled_bytes',
      unit: 'bytes',
      kind: 'modeled',
      description:
        "tfjs: the peak the policy would hold, replayed from the same update: 16-bit activations, activation gradients and the 16-bit copies of weights and inputs (kept from a layer's forward to its backward) at 2 bytes; fp32 weights, gradients, optimizer slots, accumulators, float32 layers and the loss at 4. Equals peak_bytes for float32. Empty on torch rows: nothing there is modeled.",
    },
    'peakModeledBytes',
    { noise: 'bytes' },
  ),
  numeric(
    { name: 'activations_peak_modeled_bytes', unit: 'bytes', kind: 'modeled', description: 'Largest activation bytes under the policy (as peak_modeled_bytes counts them), at any moment of the update; empty on torch rows.' },
    'activationsPeakModeledBytes',
    { noise: 'bytes' },
  ),
  numeric(
    {
      name: 'peak_tf_modeled_bytes',
      unit: 'bytes',
      kind: 'modeled',
      description:
        'tfjs: what TensorFlow would hold under the policy: the same update replayed with the lifetimes TensorFlow gives its tensors (freed after the last forward consumer unless a gradient keeps them, then after that gradient; no kernel temporaries; variables updated in place) at the policy\'s sizes. The figure to plan GPU memory with (how far it is from a real runtime: the README\'s calibration table), and the one memoryLimit applies to on tfjs. Empty on torch rows (measured there).',
    },
    'peakTfModeledBytes',
    { noise: 'bytes' },
  ),
  numeric(
    {
      name: 'activations_peak_tf_modeled_bytes',
      unit: 'bytes',
      kind: 'modeled',
      description: 'Largest activation bytes (activations and activation gradients) under the policy with TensorFlow\'s lifetimes, at any moment of the update; empty on torch rows.',
    },
    'activationsPeakTfModeledBytes',
    { noise: 'bytes' },
  ),
  numeric(
    {
      name: 'peak_torch_modeled_bytes',
      unit: 'bytes',
      kind: 'modeled',
      description:
        "tfjs: the same replay as peak_tf_modeled_bytes with PyTorch's rules (max-pool keeps int64 indices, oneDNN convolutions a reorder buffer as large as their output): what the torch engine should measure on a CPU, to check the model against it. Empty on torch rows.",
    },
    'peakTorchModeledBytes',
    { noise: 'bytes' },
  ),
  numeric(
    {
      name: 'reserved_peak_bytes',
      unit: 'bytes',
      kind: 'measured',
      description:
        "torch on CUDA: the most the caching allocator reserved during the update (torch.cuda.max_memory_reserved), the figure nvidia-smi shows and 'excessive GPU memory' complaints see; empty elsewhere.",
    },
    'reservedPeakBytes',
    { noise: 'process-memory' },
  ),
  numeric(
    { name: 'rss_peak_bytes', unit: 'bytes', kind: 'measured', description: 'Peak resident set size of the worker process, median over ok repeats (includes the runtime, not just tensors).' },
    'rssPeakBytes',
    { noise: 'process-memory' },
  ),
  numeric(
    { name: 'wasm_heap_bytes', unit: 'bytes', kind: 'measured', description: 'Wasm linear memory at the end (its high-water mark: it never shrinks), median over ok repeats; empty when not on wasm.' },
    'wasmHeapBytes',
    { noise: 'process-memory' },
  ),
  numeric(
    {
      name: 'gpu_peak_bytes',
      unit: 'bytes',
      kind: 'measured',
      description:
        'Peak GPU memory of the worker process, sampled with nvidia-smi every 0.5 s (workers run with TF_FORCE_GPU_ALLOW_GROWTH=true); empty when no GPU was sampled.',
    },
    'gpuPeakBytes',
    { noise: 'process-memory' },
  ),
  numeric(
    {
      name: 'oom_reached_bytes',
      unit: 'bytes',
      kind: 'info',
      description:
        "For status oom: the bytes a run had reached when it stopped (for a memoryLimit budget: peak_tf_modeled_bytes's bytes on tfjs, measured bytes on torch; for a real allocation failure: measured bytes); empty otherwise.",
    },
    'oomReachedBytes',
  ),
];

/** The columns `mpx diff` compares as numbers: measured and modeled ones that are not a spread. */
export const METRIC_COLUMNS: readonly Column[] = COLUMNS.filter((c) => c.noise !== null);
export const AXIS_COLUMNS: readonly Column[] = COLUMNS.filter((c) => c.kind === 'axis');


/** The column reference for the README: a Markdown table generated from `COLUMNS` (or another table's columns). */
export function renderColumnReference(columns: readonly ColumnDescription[] = COLUMNS): string {
  const cell = (text: string): string => text.replace(/\|/g, '\\|');
  const lines = ['| column | unit | kind | description |', '| --- | --- | --- | --- |'];
  for (const c of columns) {
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

/** `nan`, `inf`, `-inf`: how every file mpx writes spells a non-finite number. */
export function formatNonFinite(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  return value > 0 ? 'inf' : '-inf';
}

/** `nan`, `inf`, `-inf` as the CSV writes them; '' = no value. Throws ColumnParseError on anything else. */
export function parseNumber(text: string, column: string): number | null {
  const t = text.trim();
  if (t === '') return null;
  if (t === 'nan') return Number.NaN;
  if (t === 'inf') return Number.POSITIVE_INFINITY;
  if (t === '-inf') return Number.NEGATIVE_INFINITY;
  const value = Number(t);
  if (Number.isNaN(value)) throw new ColumnParseError(column, text, 'a number');
  return value;
}
