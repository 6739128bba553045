/**
 * An exact ledger of live tensor buffers. It wraps the active backend's data storage (`dataIdMap` on wasm,
 * `data` on cpu, `tensorMap` on tfjs-node), so every buffer is counted once however many tensors alias it
 * (reshape, identity) — unlike `tf.profile`'s peak, which sums tensors and so double-counts aliases — and kernel
 * temporaries that never become tensors are counted too.
 */
import * as tf from '@tensorflow/tfjs';

interface DataStorageLike {
  set(dataId: object, value: unknown): void;
  delete(dataId: object): boolean;
  has(dataId: object): boolean;
}

interface BufferInfo {
  shape?: number[];
  dtype?: string;
  values?: ArrayBufferView | null;
}

/** Thrown by the training loop once the ledger passes the run's memory budget. */
export class MemoryBudgetExceeded extends Error {
  constructor(readonly reachedBytes: number, readonly limitBytes: number) {
    super(`live tensor bytes reached ${reachedBytes}, above the memory budget of ${limitBytes}`);
  }
}

export class TensorLedger {
  private readonly bytesById = new Map<object, number>();
  liveBytes = 0;
  peakBytes = 0;
  /** Set when liveBytes first passes `limitBytes`; the training loop checks it between steps. */
  exceededAtBytes: number | null = null;

  constructor(private readonly limitBytes: number | null = null) {}

  /** Starts counting buffers of the current backend; buffers that already exist are counted as live. */
  attach(backend: tf.KernelBackend = tf.backend()): void {
    const storage = findStorage(backend);
    const ledger = this;
    const originalSet = storage.set.bind(storage);
    const originalDelete = storage.delete.bind(storage);
    storage.set = (dataId: object, value: unknown) => {
      originalSet(dataId, value);
      ledger.onAllocate(dataId, bufferBytes(value as BufferInfo));
    };
    storage.delete = (dataId: object) => {
      const deleted = originalDelete(dataId);
      ledger.onFree(dataId);
      return deleted;
    };
  }

  /** Starts a new peak window at the current live size. */
  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }

  private onAllocate(dataId: object, bytes: number): void {
    const previous = this.bytesById.get(dataId);
    if (previous !== undefined) this.liveBytes -= previous; // storage.set on an existing id replaces it
    this.bytesById.set(dataId, bytes);
    this.liveBytes += bytes;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    if (this.limitBytes !== null && this.exceededAtBytes === null && this.liveBytes > this.limitBytes) {
      this.exceededAtBytes = this.liveBytes;
    }
  }

  private onFree(dataId: object): void {
    const bytes = this.bytesById.get(dataId);
    if (bytes === undefined) return;
    this.bytesById.delete(dataId);
    this.liveBytes -= bytes;
  }

  /** Throws MemoryBudgetExceeded if the budget was passed since the run started. */
  checkBudget(): void {
    if (this.exceededAtBytes !== null && this.limitBytes !== null) {
      throw new MemoryBudgetExceeded(this.exceededAtBytes, this.limitBytes);
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

/** Peak resident set size of this process so far (getrusage maxrss, reported in KiB on Linux). */
export function readRssPeakBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/** Size of the wasm linear memory: it only grows, so it is the heap's high-water mark. null off wasm. */
export function readWasmHeapBytes(backend: tf.KernelBackend = tf.backend()): number | null {
  const wasm = (backend as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm;
  return wasm?.HEAPU8 ? wasm.HEAPU8.buffer.byteLength : null;
}
