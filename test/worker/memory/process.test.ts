import { describe, expect, it } from 'vitest';
import { isOutOfMemoryError } from '../../../src/worker/memory/process.js';

describe('isOutOfMemoryError', () => {
  it('recognises allocation failures of TensorFlow, the wasm heap and V8', () => {
    for (const message of [
      'OOM when allocating tensor with shape[8192,8192] and type float on /job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc',
      'ResourceExhaustedError: OOM when allocating tensor',
      'Cannot enlarge memory arrays to size 4294967296 bytes',
      'Aborted(OOM)',
      'RangeError: Array buffer allocation failed',
      'RangeError: WebAssembly.Memory.grow(): Maximum memory size exceeded',
    ]) {
      expect(isOutOfMemoryError(message), message).toBe(true);
    }
  });

  it('does not take other errors for out-of-memory', () => {
    expect(isOutOfMemoryError('Kernel "Conv2DBackpropFilter" not registered for backend wasm')).toBe(false);
    expect(isOutOfMemoryError('Error: shapes [2,3] and [4,5] are incompatible')).toBe(false);
  });
});
