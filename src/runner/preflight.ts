/**
 * The pre-flight check every run passes before a worker is started: a static lower bound of the memory the run must
 * hold, from the shapes alone, against every ceiling that applies — the spec's budget, what the engine can address
 * (a wasm32 heap), and this worker's share of the machine. A run that cannot fit is an `oom` record at once, with the
 * bytes and the ceiling, and no process is started: a 17 GB model never gets to grow a worker to 17 GB first.
 */
import type { RunConfig } from '../matrix/types.js';
import { parameterTensorSizes, stateTensorSizes } from '../spec/model-shapes.js';
import { optimizerSlotsPerVariable } from '../spec/optimizer-slots.js';
import { formatByteSize } from '../spec/size.js';

/** tfjs-backend-wasm's heap cannot grow past this (its emscripten `getHeapMax()`: 4 GiB − 64 KiB, wasm32). */
export const WASM_HEAP_MAX_BYTES = 4_294_901_760;
const FLOAT32_BYTES = 4;

/**
 * What every engine holds at some moment of an update, at the least: the fp32 variables, their optimizer slots and
 * gradient accumulators (kept between updates), batch normalisation's fp32 moving statistics, plus either all weight gradients (they all exist when the optimizer
 * starts: Keras's apply_gradients, tfjs's variableGrads and PyTorch's .grad alike) or the input micro-batch (which
 * exists during the forward pass). Activations come on top; they are what the run measures.
 */
export interface StaticMemoryBound {
  /** max(restingBytes + gradientBytes, restingBytes + inputBytes). */
  bytes: number;
  parameterCount: number;
  /** Parameters, optimizer slots, accumulators and non-trainable state (moving statistics), fp32. */
  restingBytes: number;
  gradientBytes: number;
  inputBytes: number;
  /** The largest variable: no engine can split one buffer. */
  largestTensorBytes: number;
}

export function staticMemoryBound(run: RunConfig): StaticMemoryBound {
  const sizes = parameterTensorSizes(run.model);
  const parameterCount = sizes.reduce((sum, n) => sum + n, 0);
  const parameterBytes = parameterCount * FLOAT32_BYTES;
  const slots = optimizerSlotsPerVariable(run.train.optimizer);
  const accumulators = run.accumulationSteps > 1 ? 1 : 0;
  const stateSizes = stateTensorSizes(run.model);
  const stateBytes = stateSizes.reduce((sum, n) => sum + n, 0) * FLOAT32_BYTES;
  const restingBytes = parameterBytes * (1 + slots + accumulators) + stateBytes;
  const inputBytes = run.microBatchSize * run.model.input.reduce((product, n) => product * n, 1) * FLOAT32_BYTES;
  return {
    bytes: restingBytes + Math.max(parameterBytes, inputBytes),
    parameterCount,
    restingBytes,
    gradientBytes: parameterBytes,
    inputBytes,
    largestTensorBytes: Math.max(0, ...sizes, ...stateSizes) * FLOAT32_BYTES,
  };
}

export type CeilingKind = 'budget' | 'engine' | 'worker-share';

/** The ceilings a run is checked against; null = does not apply. */
export interface MemoryCeilings {
  /** The run's `memoryLimit`. */
  budgetBytes: number | null;
  /** What the run's engine can address at most, e.g. the wasm heap (`engineCeiling`). */
  engine: { limitBytes: number; what: string } | null;
  /**
   * The share of this machine's memory one worker may take (`--worker-memory`, else total ÷ jobs); null when the
   * run's tensors do not live in this machine's memory (a GPU).
   */
  workerShare: { limitBytes: number; source: string } | null;
}

/** The engine ceiling of a backend that ran: the wasm heap for wasm, none known for the others. */
export function engineCeiling(backend: RunConfig['backend']): MemoryCeilings['engine'] {
  return backend === 'wasm' ? { limitBytes: WASM_HEAP_MAX_BYTES, what: 'what the wasm backend can address (a wasm32 heap)' } : null;
}

export interface PreflightVerdict {
  ceiling: CeilingKind;
  /** The static lower bound that passed it. */
  reachedBytes: number;
  limitBytes: number;
  reason: string;
}

/** null when the run may start; otherwise why it cannot fit, for its `oom` record. */
export function preflight(run: RunConfig, ceilings: MemoryCeilings): PreflightVerdict | null {
  const bound = staticMemoryBound(run);
  const needs =
    `needs at least ${formatByteSize(bound.bytes)} before any activation (${bound.parameterCount.toLocaleString('en-US')} parameters: ` +
    `${formatByteSize(bound.restingBytes)} of fp32 weights, optimizer slots and accumulators, plus ` +
    `${bound.gradientBytes >= bound.inputBytes ? `${formatByteSize(bound.gradientBytes)} of gradients` : `a ${formatByteSize(bound.inputBytes)} input batch`})`;
  const verdict = (ceiling: CeilingKind, limitBytes: number, what: string, hint: string): PreflightVerdict => ({
    ceiling,
    reachedBytes: bound.bytes,
    limitBytes,
    reason: `pre-flight: ${needs}, above ${what}: ${formatByteSize(limitBytes)}; no worker was started. ${hint}`,
  });
  if (ceilings.engine !== null && Math.max(bound.bytes, bound.largestTensorBytes) > ceilings.engine.limitBytes) {
    return verdict('engine', ceilings.engine.limitBytes, ceilings.engine.what, 'Use backend: torch or tensorflow, or a smaller model.');
  }
  if (ceilings.budgetBytes !== null && bound.bytes > ceilings.budgetBytes) {
    // A capacity probe (steps 0) over its budget is an answer (this batch does not fit), not a setting to change.
    const hint = run.train.steps === 0 ? 'This batch does not fit capacity.budget.' : 'Raise memoryLimit, or use a smaller model or batch.';
    return verdict('budget', ceilings.budgetBytes, 'the memory budget', hint);
  }
  if (ceilings.workerShare !== null && bound.bytes > ceilings.workerShare.limitBytes) {
    return verdict(
      'worker-share',
      ceilings.workerShare.limitBytes,
      `this worker's share of the machine's memory (${ceilings.workerShare.source})`,
      'Use fewer --jobs, set --worker-memory, or use a smaller model or batch.',
    );
  }
  return null;
}
