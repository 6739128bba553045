/** What the worker can read about its own process memory, and how it recognises a real allocation failure. */
import { tf } from '../tfjs.js';

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
