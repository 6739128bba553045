/**
 * An exact ledger of live tensor buffers, with a role for each. It wraps the active backend's data storage
 * (`dataIdMap` on wasm, `data` on cpu, `tensorMap` on tfjs-node), so every buffer is counted once however many
 * tensors alias it (reshape, identity) — unlike `tf.profile`'s peak, which sums tensors and so double-counts
 * aliases — and kernel temporaries that never become tensors are counted too.
 *
 * During a measurement window (one training update on the fp32 graph) every allocation, free and role change is
 * logged; closing the window replays the log to find the measured peak and its breakdown by role, and the peak of
 * the policy's memory model: activations of 16-bit layers at 2 bytes per element, plus the 16-bit working copies
 * of weights and inputs that Keras keeps from a layer's forward to its backward (virtual: no tfjs buffer exists).
 */
import { tf } from './tfjs.js';

export const MEMORY_ROLES = ['parameters', 'gradients', 'optimizer', 'accumulators', 'activations', 'other'] as const;
export type MemoryRole = (typeof MEMORY_ROLES)[number];
export type RoleBytes = Record<MemoryRole, number>;

/** What a new buffer is, decided by who allocates it (the training loop sets it around each phase). */
export interface AllocationContext {
  role: MemoryRole;
  /** Keras would hold this tensor in 16 bits under the run's policy (activations of a 16-bit layer). */
  halfPrecision: boolean;
  /** Layer index for forward/backward buffers (the loss is layers.length); null elsewhere. */
  layer: number | null;
}

export interface MemoryReport {
  /** Live bytes when the window opened: the state kept between updates. */
  restingBytes: number;
  peakBytes: number;
  /** Bytes per role at the moment of `peakBytes`. */
  peakByRole: RoleBytes;
  /** The largest activation bytes at any moment of the window (activations and activation gradients). */
  activationsPeakBytes: number;
  /** Peak of the policy's memory model (equals peakBytes for float32). */
  peakModeledBytes: number;
  activationsPeakModeledBytes: number;
}

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
    super(`the policy's modelled memory reached ${reachedBytes} bytes, above the memory budget of ${limitBytes} bytes`);
  }
}

/** One buffer (or virtual 16-bit copy) seen during a window. */
interface BufferRecord {
  bytes: number;
  /** Role from the first event on; a retroactive retag (gradients) rewrites it. */
  role: MemoryRole;
  halfPrecision: boolean;
  /** Virtual records exist only in the model: they have modelled bytes and no measured bytes. */
  isVirtual: boolean;
  /** Role during replay. */
  replayRole: MemoryRole;
  /** What this record added to the online lower bound of modelled bytes. */
  lowerBound: number;
}

type LogEvent =
  | { kind: 'alloc'; record: BufferRecord }
  | { kind: 'free'; record: BufferRecord }
  | { kind: 'retag'; record: BufferRecord; role: MemoryRole };

const DEFAULT_CONTEXT: AllocationContext = { role: 'other', halfPrecision: false, layer: null };

/** The ledger counting each backend storage: the storage is wrapped once, the ledger can be swapped. */
const ledgerOfStorage = new WeakMap<DataStorageLike, TensorLedger>();

export class TensorLedger {
  private readonly bytesById = new Map<object, number>();
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
    lowerBoundModeled: number;
  } | null = null;
  private virtuals: Array<{ layer: number; record: BufferRecord }> = [];

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
        ledgerOfStorage.get(storage)?.onAllocate(dataId, bufferBytes(value as BufferInfo));
      };
      storage.delete = (dataId: object) => {
        const deleted = originalDelete(dataId);
        ledgerOfStorage.get(storage)?.onFree(dataId);
        return deleted;
      };
    }
    ledgerOfStorage.set(storage, this);
    installTapeHook(this);
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
      records.set(dataId, { bytes, role, halfPrecision: false, isVirtual: false, replayRole: role, lowerBound: bytes });
    }
    this.window = { records, initial: [...records.values()], log: [], restingBytes: this.liveBytes, lowerBoundModeled: this.liveBytes };
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
      role: 'activations',
      halfPrecision: false,
      isVirtual: true,
      replayRole: 'activations',
      lowerBound: 0,
    };
    this.virtuals.push({ layer, record });
    this.window.log.push({ kind: 'alloc', record });
    this.addLowerBound(record, modeledBytes);
  }

  /** The backward pass has reached `layer`: working copies of the layers above it are gone. */
  enterBackward(context: AllocationContext): void {
    this.context = context;
    if (!this.window || context.layer === null) return;
    const layer = context.layer;
    this.virtuals = this.virtuals.filter((v) => {
      if (v.layer <= layer) return true;
      this.window!.log.push({ kind: 'free', record: v.record });
      this.window!.lowerBoundModeled -= v.record.bytes;
      return false;
    });
  }

  /** The backward pass is over: the 16-bit working copies of every layer are gone. */
  endBackward(): void {
    if (!this.window) return;
    for (const v of this.virtuals) {
      this.window.log.push({ kind: 'free', record: v.record });
      this.window.lowerBoundModeled -= v.record.bytes;
    }
    this.virtuals = [];
  }

  /** Closes the window and replays its log into the report. */
  closeWindow(): MemoryReport {
    const window = this.window;
    if (!window) throw new Error('closeWindow() without openWindow()');
    for (const v of this.virtuals) window.log.push({ kind: 'free', record: v.record });
    this.window = null;
    this.virtuals = [];
    return replay(window.initial, window.log, window.restingBytes);
  }

  /** Throws MemoryBudgetExceeded if the policy's modelled memory of the last window passed the budget. */
  checkBudget(report: MemoryReport): void {
    if (this.limitBytes !== null && report.peakModeledBytes > this.limitBytes) {
      throw new MemoryBudgetExceeded(report.peakModeledBytes, this.limitBytes);
    }
  }

  /** @internal called by the storage wrapper */
  onAllocate(dataId: object, bytes: number): void {
    const previous = this.bytesById.get(dataId);
    if (previous !== undefined) this.onFree(dataId); // storage.set on an existing id replaces it
    this.bytesById.set(dataId, bytes);
    this.liveBytes += bytes;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    if (this.window) {
      const { role, halfPrecision } = this.context;
      const record: BufferRecord = { bytes, role, halfPrecision, isVirtual: false, replayRole: role, lowerBound: 0 };
      this.window.records.set(dataId, record);
      this.window.log.push({ kind: 'alloc', record });
      this.addLowerBound(record, halfPrecision && role === 'activations' ? bytes / 2 : bytes);
    }
  }

  /** @internal called by the storage wrapper */
  onFree(dataId: object): void {
    const bytes = this.bytesById.get(dataId);
    if (bytes === undefined) return;
    this.bytesById.delete(dataId);
    this.liveBytes -= bytes;
    const record = this.window?.records.get(dataId);
    if (record) {
      this.window!.log.push({ kind: 'free', record });
      this.window!.records.delete(dataId);
      this.window!.lowerBoundModeled -= record.lowerBound;
    }
  }

  /**
   * Stops a run as soon as even a lower bound of its modelled memory is over the budget (weight gradients still
   * count at 2 bytes then), so a far-too-large cell does not first take the machine's memory. Throwing from inside
   * a kernel's allocation is safe here: the run is abandoned and its process exits.
   */
  private addLowerBound(record: BufferRecord, bytes: number): void {
    const window = this.window!;
    record.lowerBound = bytes;
    window.lowerBoundModeled += bytes;
    if (this.limitBytes !== null && window.lowerBoundModeled > this.limitBytes) {
      throw new MemoryBudgetExceeded(Math.round(window.lowerBoundModeled), this.limitBytes);
    }
  }
}

function modeledBytes(record: BufferRecord, role: MemoryRole): number {
  if (record.isVirtual) return record.bytes;
  return role === 'activations' && record.halfPrecision ? record.bytes / 2 : record.bytes;
}

function emptyRoles(): RoleBytes {
  return { parameters: 0, gradients: 0, optimizer: 0, accumulators: 0, activations: 0, other: 0 };
}

/** Replays a window's log in order: measured and modelled totals, their peaks, and the roles at the peak. */
function replay(initial: BufferRecord[], log: LogEvent[], restingBytes: number): MemoryReport {
  const measured = emptyRoles();
  const modeled = emptyRoles();
  const apply = (record: BufferRecord, role: MemoryRole, sign: 1 | -1) => {
    if (!record.isVirtual) measured[role] += sign * record.bytes;
    modeled[role] += sign * modeledBytes(record, role);
  };
  // Buffers alive when the window opened start in their (possibly retroactively corrected) role.
  for (const record of initial) {
    record.replayRole = record.role;
    apply(record, record.role, 1);
  }
  const sum = (bytes: RoleBytes) => MEMORY_ROLES.reduce((total, role) => total + bytes[role], 0);
  let peakBytes = sum(measured);
  let peakByRole = { ...measured };
  let peakModeledBytes = sum(modeled);
  let activationsPeakBytes = measured.activations;
  let activationsPeakModeledBytes = modeled.activations;
  for (const event of log) {
    const { record } = event;
    if (event.kind === 'alloc') {
      record.replayRole = record.role;
      apply(record, record.role, 1);
    } else if (event.kind === 'free') {
      apply(record, record.replayRole, -1);
    } else {
      apply(record, record.replayRole, -1);
      record.replayRole = event.role;
      apply(record, event.role, 1);
    }
    const total = sum(measured);
    if (total > peakBytes) {
      peakBytes = total;
      peakByRole = { ...measured };
    }
    peakModeledBytes = Math.max(peakModeledBytes, sum(modeled));
    activationsPeakBytes = Math.max(activationsPeakBytes, measured.activations);
    activationsPeakModeledBytes = Math.max(activationsPeakModeledBytes, modeled.activations);
  }
  return {
    restingBytes,
    peakBytes,
    peakByRole,
    activationsPeakBytes,
    peakModeledBytes: Math.round(peakModeledBytes),
    activationsPeakModeledBytes: Math.round(activationsPeakModeledBytes),
  };
}

/**
 * tfjs runs a recorded op's gradient long after the op, from its tape node. Wrapping each node's gradient function
 * makes the buffers of the backward pass inherit the context (layer, 16-bit or not) of the forward op they belong to.
 */
let tapeLedger: TensorLedger | null = null;
function installTapeHook(ledger: TensorLedger): void {
  const engine = tf.engine() as unknown as {
    addTapeNode: (...args: unknown[]) => void;
    state: { activeTape: Array<{ gradient?: (dys: tf.Tensor[]) => Record<string, () => tf.Tensor> }> | null };
    mpxTapeHook?: boolean;
  };
  tapeLedger = ledger;
  if (engine.mpxTapeHook) return;
  engine.mpxTapeHook = true;
  const original = engine.addTapeNode.bind(engine);
  engine.addTapeNode = (...args: unknown[]) => {
    original(...args);
    const ledgerNow = tapeLedger;
    const tape = engine.state.activeTape;
    const node = tape?.[tape.length - 1];
    if (!ledgerNow?.isMeasuring || !node?.gradient) return;
    const forwardContext = ledgerNow.context;
    const gradient = node.gradient;
    const inContext = <T>(fn: () => T): T => {
      const previous = ledgerNow.context;
      ledgerNow.enterBackward(forwardContext);
      try {
        return fn();
      } finally {
        ledgerNow.context = previous;
      }
    };
    node.gradient = (dys) => {
      const thunks = inContext(() => gradient(dys));
      const wrapped: Record<string, () => tf.Tensor> = {};
      for (const [name, thunk] of Object.entries(thunks)) wrapped[name] = () => inContext(thunk);
      return wrapped;
    };
  };
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

/**
 * A real allocation failure: TensorFlow's "OOM when allocating tensor" / ResourceExhaustedError (GPU or host), the
 * wasm heap failing to grow past its 4 GiB limit, or a JS typed array that cannot be allocated.
 */
export function isOutOfMemoryError(message: string): boolean {
  return /OOM when allocating|ResourceExhausted|out of memory|Cannot enlarge memory|Aborted\(OOM\)|Array buffer allocation failed|Maximum memory size exceeded/i.test(
    message,
  );
}

/** Peak resident set size of this process so far (getrusage maxrss, reported in KiB on Linux). */
export function readRssPeakBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/** Size of the wasm linear memory: it only grows, so it is the heap's high-water mark. null off wasm. */
export function readWasmHeapBytes(backend: tf.KernelBackend = tf.backend()): number | null {
  const wasm = (backend as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm;
  return wasm?.HEAPU8 ? wasm.HEAPU8.buffer.byteLength : null;
}

export { DEFAULT_CONTEXT };
