/**
 * An exact ledger of live tensor buffers, with a role for each. It wraps the active backend's data storage
 * (`dataIdMap` on wasm, `data` on cpu, `tensorMap` on tfjs-node), so every buffer is counted once however many
 * tensors alias it (reshape, identity) — unlike `tf.profile`'s peak, which sums tensors and so double-counts
 * aliases — and kernel temporaries that never become tensors are counted too.
 *
 * During a measurement window (one training update on the fp32 graph) every allocation, free and role change is
 * logged, with the ops that ran (engine-hooks.ts). Closing the window replays the log three ways: as tfjs held the
 * buffers (the measured peak and its breakdown by role); with the policy's sizes (activations of 16-bit layers at 2
 * bytes per element, plus the 16-bit working copies of weights and inputs that Keras keeps from a layer's forward to
 * its backward: virtual, no tfjs buffer exists); and with the policy's sizes and TensorFlow's lifetimes
 * (liveness.ts).
 */
import { tf } from '../tfjs.js';
import { installEngineHooks } from './engine-hooks.js';
import { modeledBytes, replay, type AllocationContext, type BufferRecord, type LogEvent, type MemoryReport, type MemoryRole } from './replay.js';
import { replayLiveness } from './liveness.js';
import { CAST_KERNEL } from './policy-cast.js';

interface DataStorageLike {
  set(dataId: object, value: unknown): void;
  delete(dataId: object): boolean;
}

interface BufferInfo {
  shape?: number[];
  dtype?: string;
  values?: ArrayBufferView | null;
}

/** Thrown when a run's memory passes its budget (the worker reports it as status `oom`). */
export class MemoryBudgetExceeded extends Error {
  constructor(
    readonly reachedBytes: number,
    readonly limitBytes: number,
  ) {
    super(`the memory TensorFlow would hold under the policy reached ${reachedBytes} bytes, above the memory budget of ${limitBytes} bytes`);
  }
}

export const DEFAULT_CONTEXT: AllocationContext = { role: 'other', halfPrecision: false, layer: null };

/** The ledger counting each backend storage: the storage is wrapped once, the ledger can be swapped. */
const ledgerOfStorage = new WeakMap<DataStorageLike, TensorLedger>();

export class TensorLedger {
  private readonly bytesById = new Map<object, number>();
  /** Live buffers holding float32 values (the others hold bool masks and int32 ids). */
  private readonly floatIds = new Set<object>();
  liveBytes = 0;
  peakBytes = 0;
  context: AllocationContext = DEFAULT_CONTEXT;

  private window: {
    /** Live buffers by data id, for retagging and frees. */
    records: Map<object, BufferRecord>;
    /** The buffers that were live when the window opened. */
    initial: BufferRecord[];
    log: LogEvent[];
    restingBytes: number;
    /** The backward pass has begun: new buffers are not forward values. */
    isBackward: boolean;
    /** Kernels running (nested: customGrad ops run kernels inside), and what was allocated since the outermost began. */
    kernelDepth: number;
    kernelAllocations: BufferRecord[];
    /**
     * The gradient of the tape node being backpropagated: what its function and thunks allocated, and the results
     * they returned (its tfjs bookkeeping between thunks, such as summing two gradients of one tensor, is not in it).
     */
    gradient: { allocations: BufferRecord[]; results: Set<BufferRecord>; isInside: boolean } | null;
  } | null = null;
  private virtuals: Array<{ layer: number; record: BufferRecord }> = [];
  /** Calls of fused ops so far (FusedOp.call). */
  private fusedCalls = 0;

  /** Runs `fn` as one call of the Keras-level op `name`, which a runtime may run as one kernel (see FusedOp). */
  asFusedOp<T>(name: string, fn: () => T): T {
    return this.withContext({ ...this.context, fused: { name, call: this.fusedCalls++ } }, fn);
  }

  constructor(private readonly limitBytes: number | null = null) {}

  /**
   * Makes this ledger the one that counts the current backend's buffers (replacing any ledger attached before;
   * buffers allocated before attaching are not counted), and tags backward-pass buffers with their layer.
   */
  attach(backend: tf.KernelBackend = tf.backend()): void {
    const storage = findStorage(backend);
    if (!ledgerOfStorage.has(storage)) {
      const originalSet = storage.set.bind(storage);
      const originalDelete = storage.delete.bind(storage);
      storage.set = (dataId: object, value: unknown) => {
        originalSet(dataId, value);
        ledgerOfStorage.get(storage)?.onAllocate(dataId, bufferBytes(value as BufferInfo), (value as BufferInfo).dtype !== 'bool' && (value as BufferInfo).dtype !== 'int32');
      };
      storage.delete = (dataId: object) => {
        const deleted = originalDelete(dataId);
        ledgerOfStorage.get(storage)?.onFree(dataId);
        return deleted;
      };
    }
    ledgerOfStorage.set(storage, this);
    installEngineHooks(this);
  }

  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }

  /** Runs `fn` with `context` as the role of new buffers. */
  withContext<T>(context: AllocationContext, fn: () => T): T {
    const previous = this.context;
    this.context = context;
    try {
      return fn();
    } finally {
      this.context = previous;
    }
  }

  /** Opens a measurement window: live buffers so far are the resting state, in the roles `roleOf` gives them. */
  openWindow(roleOf: ReadonlyMap<object, MemoryRole> = new Map()): void {
    const records = new Map<object, BufferRecord>();
    for (const [dataId, bytes] of this.bytesById) {
      const role = roleOf.get(dataId) ?? 'other';
      records.set(dataId, { bytes, isFloat: this.floatIds.has(dataId), role, halfPrecision: false, isVirtual: false, replayRole: role, isUpdate: false, isForward: true, isTemporary: false });
    }
    this.window = {
      records,
      initial: [...records.values()],
      log: [],
      restingBytes: this.liveBytes,
      isBackward: false,
      kernelDepth: 0,
      kernelAllocations: [],
      gradient: null,
    };
    this.virtuals = [];
  }

  get isMeasuring(): boolean {
    return this.window !== null;
  }

  /**
   * Gives the buffer behind `tensor` a role. Retroactive (for gradients, which are only known once the backward
   * pass returns them): the buffer has had the role since it was allocated. Otherwise from now on (a new parameter
   * value becomes a parameter when assigned, not when computed).
   */
  retag(tensor: tf.Tensor, role: MemoryRole, retroactive = false): void {
    const record = this.window?.records.get(tensor.dataId);
    if (!record) return;
    if (retroactive) {
      record.role = role;
      record.halfPrecision = false;
    } else {
      this.window!.log.push({ kind: 'retag', record, role });
    }
  }

  /** A 16-bit working copy that Keras would hold from layer `layer`'s forward to its backward. */
  addVirtual(layer: number, modeledBytes: number): void {
    if (!this.window || modeledBytes === 0) return;
    const record: BufferRecord = {
      bytes: modeledBytes,
      isFloat: true,
      role: 'activations',
      halfPrecision: false,
      isVirtual: true,
      replayRole: 'activations',
      isUpdate: false,
      isForward: true,
      isTemporary: false,
    };
    this.virtuals.push({ layer, record });
    this.window.log.push({ kind: 'alloc', record });
    this.checkLowerBound(modeledBytes);
  }

  /** The backward pass has reached `layer`: working copies of the layers above it are gone. */
  enterBackward(context: AllocationContext): void {
    this.context = context;
    if (!this.window || context.layer === null) return;
    const layer = context.layer;
    this.virtuals = this.virtuals.filter((v) => {
      if (v.layer <= layer) return true;
      this.window!.log.push({ kind: 'free', record: v.record });
      return false;
    });
  }

  /** The backward pass is over: the 16-bit working copies of every layer are gone. */
  endBackward(): void {
    if (!this.window) return;
    this.finishGradient();
    // With gradient accumulation the next micro-batch's forward pass follows.
    this.window.isBackward = false;
    this.window.log.push({ kind: 'backward-end' });
    for (const v of this.virtuals) this.window.log.push({ kind: 'free', record: v.record });
    this.virtuals = [];
  }

  /** Closes the window and replays its log into the report. */
  closeWindow(): MemoryReport {
    const window = this.window;
    if (!window) throw new Error('closeWindow() without openWindow()');
    for (const v of this.virtuals) window.log.push({ kind: 'free', record: v.record });
    this.window = null;
    this.virtuals = [];
    const tf = replayLiveness(window.initial, window.log, 'tensorflow');
    const torch = replayLiveness(window.initial, window.log, 'pytorch');
    return {
      ...replay(window.initial, window.log, window.restingBytes),
      peakTfModeledBytes: tf.peakBytes,
      activationsPeakTfModeledBytes: tf.activationsPeakBytes,
      peakTorchModeledBytes: torch.peakBytes,
    };
  }

  /** Throws MemoryBudgetExceeded if what TensorFlow would hold under the policy in the last window passed the budget. */
  checkBudget(report: MemoryReport): void {
    if (this.limitBytes !== null && report.peakTfModeledBytes > this.limitBytes) {
      throw new MemoryBudgetExceeded(report.peakTfModeledBytes, this.limitBytes);
    }
  }

  /** @internal engine hook: a kernel starts. */
  onKernelStart(): void {
    const window = this.window;
    if (!window) return;
    if (window.kernelDepth === 0) window.kernelAllocations = [];
    window.kernelDepth += 1;
  }

  /**
   * @internal engine hook: a kernel ended, having read `inputs` and made `outputs`. What the outermost kernel
   * allocated and already dropped, other than its outputs, was a temporary of the kernel.
   */
  onKernelEnd(kernelName: string | undefined, attrs: Readonly<Record<string, unknown>> | undefined, inputs: ReadonlyArray<{ dataId: object }>, outputs: ReadonlyArray<{ dataId: object }>): void {
    const window = this.window;
    if (!window) return;
    const reads = inputs.map((t) => window.records.get(t.dataId)).filter((r): r is BufferRecord => r !== undefined);
    window.log.push({ kind: 'kernel', reads });
    window.kernelDepth -= 1;
    const made = outputs.map((t) => window.records.get(t.dataId)).filter((r): r is BufferRecord => r !== undefined);
    if (kernelName === CAST_KERNEL) {
      // The policy's cast: its copy has the precision cast to, and is its source's buffer in tfjs's measured bytes.
      for (const record of made) {
        record.halfPrecision = attrs?.['toHalf'] === true;
        record.measuredAliasOf = reads[0];
      }
    }
    for (const record of made) if (!record.isUpdate) this.checkLowerBound(modeledBytes(record, record.role));
    if (window.kernelDepth > 0) return;
    const live = new Set(window.records.values());
    for (const record of window.kernelAllocations) {
      if (!live.has(record) && !made.includes(record)) record.isTemporary = true;
    }
    window.kernelAllocations = [];
  }

  /** @internal engine hook: an op was recorded on the tape (forward pass). */
  onTapeNode(
    id: number,
    kernelName: string,
    inputs: Record<string, { dataId: object; shape: number[] }>,
    outputs: ReadonlyArray<{ dataId: object }>,
    saved: ReadonlyArray<{ dataId: object }>,
    attrs: Readonly<Record<string, unknown>> = {},
  ): void {
    const window = this.window;
    if (!window) return;
    const recordOf = (t: { dataId: object } | undefined) => (t === undefined ? undefined : window.records.get(t.dataId));
    window.log.push({
      kind: 'node',
      node: {
        id,
        kernelName,
        layer: this.context.layer,
        isHalf: this.context.halfPrecision,
        inputs: Object.fromEntries(Object.entries(inputs).map(([name, t]) => [name, recordOf(t)])),
        outputs: outputs.map(recordOf),
        saved: saved.map(recordOf),
        attrs,
        inputShapes: Object.fromEntries(Object.entries(inputs).map(([name, t]) => [name, [...t.shape]])),
        ...(this.context.fused === undefined ? {} : { fused: this.context.fused }),
      },
    });
  }

  /** @internal engine hook: the gradient of a tape node begins (so the backward pass has); the previous one is over. */
  onGradientStart(nodeId: number): void {
    if (!this.window) return;
    this.finishGradient();
    this.window.isBackward = true;
    this.window.log.push({ kind: 'gradient-start', nodeId });
    this.window.gradient = { allocations: [], results: new Set(), isInside: false };
  }

  /** @internal engine hook: runs part of the current gradient (its function or a thunk), collecting what it allocates. */
  inGradientScope<T>(fn: () => T): T {
    const gradient = this.window?.gradient;
    if (!gradient) return fn();
    gradient.isInside = true;
    try {
      return fn();
    } finally {
      gradient.isInside = false;
    }
  }

  /** @internal engine hook: a thunk of the gradient of `nodeId` returned `dx` for its input `input` (the node's saved tensors were needed until now). */
  onGradientResult(nodeId: number, input: string, dx: { dataId: object }): void {
    const window = this.window;
    if (!window) return;
    const result = window.records.get(dx.dataId);
    if (result !== undefined) window.gradient?.results.add(result);
    window.log.push({ kind: 'gradient', nodeId, input, result });
  }

  /** What the gradient allocated and did not return were its temporaries. */
  private finishGradient(): void {
    const gradient = this.window?.gradient;
    if (!gradient) return;
    for (const record of gradient.allocations) if (!gradient.results.has(record)) record.isTemporary = true;
    this.window!.gradient = null;
  }

  /** @internal called by the storage wrapper */
  onAllocate(dataId: object, bytes: number, isFloat = true): void {
    const previous = this.bytesById.get(dataId);
    if (previous !== undefined) this.onFree(dataId); // storage.set on an existing id replaces it
    this.bytesById.set(dataId, bytes);
    if (isFloat) this.floatIds.add(dataId);
    this.liveBytes += bytes;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    const window = this.window;
    if (window) {
      const { role, halfPrecision, isUpdate = false, isTfjsOnly = false } = this.context;
      const record: BufferRecord = { bytes, isFloat, role, halfPrecision, isVirtual: false, replayRole: role, isUpdate, isForward: !window.isBackward, isTemporary: isTfjsOnly };
      window.records.set(dataId, record);
      window.log.push({ kind: 'alloc', record });
      if (window.kernelDepth > 0) window.kernelAllocations.push(record);
      if (window.gradient?.isInside) window.gradient.allocations.push(record);
      // The input batch is made outside any kernel; it exists in TensorFlow too.
      if (window.kernelDepth === 0 && !isUpdate) this.checkLowerBound(modeledBytes(record, role));
    }
  }

  /** @internal called by the storage wrapper */
  onFree(dataId: object): void {
    const bytes = this.bytesById.get(dataId);
    if (bytes === undefined) return;
    this.bytesById.delete(dataId);
    this.floatIds.delete(dataId);
    this.liveBytes -= bytes;
    const record = this.window?.records.get(dataId);
    if (record) {
      this.window!.log.push({ kind: 'free', record });
      this.window!.records.delete(dataId);
    }
  }

  /**
   * Stops a run as soon as even a lower bound of what TensorFlow would hold passes the budget, so a far-too-large cell
   * does not first take the machine's memory: the state kept between updates plus any one tensor of the update at the
   * policy's size (TensorFlow holds it at some moment too). Throwing from inside a kernel is safe here: the run is
   * abandoned and its process exits.
   */
  private checkLowerBound(tensorBytes: number): void {
    const window = this.window!;
    const bound = window.restingBytes + tensorBytes;
    if (this.limitBytes !== null && bound > this.limitBytes) {
      throw new MemoryBudgetExceeded(Math.round(bound), this.limitBytes);
    }
  }
}

function findStorage(backend: tf.KernelBackend): DataStorageLike {
  const holder = backend as unknown as Record<string, unknown>;
  for (const key of ['dataIdMap', 'data', 'tensorMap']) {
    const candidate = holder[key] as DataStorageLike | undefined;
    if (candidate && typeof candidate.set === 'function' && typeof candidate.delete === 'function') return candidate;
  }
  throw new Error('cannot find the backend data storage to measure tensor memory (tfjs internals changed?)');
}

function bufferBytes(info: BufferInfo): number {
  if (info.values && typeof info.values.byteLength === 'number') return info.values.byteLength;
  if (info.shape && info.dtype && info.dtype !== 'string') {
    return tf.util.sizeFromShape(info.shape) * tf.util.bytesPerElement(info.dtype as tf.DataType);
  }
  return 0;
}
