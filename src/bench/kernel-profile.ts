/**
 * Per-kernel time and call counts on one backend, by wrapping every registered kernel function of that backend
 * (and restoring them afterwards). Used only in a separate profiling pass: the wrapper costs a few µs per call.
 */
import * as tf from '@tensorflow/tfjs';

export interface KernelStat {
  calls: number;
  /** Inclusive time: a kernel that runs other kernels (mpx's BatchMatMul runs Transpose) includes theirs. */
  ms: number;
}

export interface KernelProfile {
  byKernel: Map<string, KernelStat>;
  /** Time in kernels called from outside any other kernel (no double counting). */
  topLevelMs: number;
}

/** Runs `fn` with every kernel of `backendName` timed; the original kernel configs are back afterwards. */
export function profileKernels(backendName: string, fn: () => void): KernelProfile {
  const byKernel = new Map<string, KernelStat>();
  let depth = 0;
  let topLevelMs = 0;
  const originals = tf.getKernelsForBackend(backendName);
  for (const config of originals) {
    const inner = config.kernelFunc;
    const timed: tf.KernelFunc = (params) => {
      const started = performance.now();
      depth++;
      try {
        return inner(params);
      } finally {
        depth--;
        const ms = performance.now() - started;
        if (depth === 0) topLevelMs += ms;
        const stat = byKernel.get(config.kernelName) ?? { calls: 0, ms: 0 };
        stat.calls++;
        stat.ms += ms;
        byKernel.set(config.kernelName, stat);
      }
    };
    tf.unregisterKernel(config.kernelName, backendName);
    // A copy keeps setupFunc/disposeFunc and any marker properties (mpx's registration checks one).
    tf.registerKernel({ ...config, kernelFunc: timed });
  }
  try {
    fn();
  } finally {
    for (const config of originals) {
      tf.unregisterKernel(config.kernelName, backendName);
      tf.registerKernel(config);
    }
  }
  return { byKernel, topLevelMs };
}
