/**
 * The `MpxQuantize` kernel: rounds a float32 tensor onto the float16 or bfloat16 grid (result stays
 * float32), which is how this project emulates Keras mixed precision on tfjs (no 16-bit dtypes).
 *
 * - `cpu` and `wasm`: direct loops over the backend's memory with the bit-exact rules of `round.ts`; on wasm the
 *   loop runs as WebAssembly SIMD inside the backend's memory (`src/worker/kernels/simd.ts`) where available.
 * - `tensorflow` (tfjs-node): tfjs-node's op API cannot cast to half/bfloat16 (its `cast` only knows the
 *   tfjs dtypes) and has no bitcast, so there the kernel is a composition of standard ops,
 *   {@link quantizeWithOps}, which is bit-exact with `round.ts` on every non-NaN input (tested on cpu and
 *   wasm); a NaN stays NaN but its payload and sign may differ.
 * - Any other backend (webgl, ...) has no registered kernel; {@link quantize} then falls back to
 *   {@link quantizeWithOps}. That is only exact where the backend computes IEEE float32 with
 *   round-to-nearest-even and exact division by powers of two (not guaranteed on webgl).
 */
import { tf } from '../tfjs.js';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { simdLoopsFor } from '../kernels/simd.js';
import { roundToBfloat16, roundToFloat16 } from './round.js';

export const QUANTIZE_KERNEL = 'MpxQuantize';

export type QuantizeFormat = 'float16' | 'bfloat16';

const ROUNDERS: Record<QuantizeFormat, (src: Float32Array, dst: Float32Array) => void> = {
  float16: roundToFloat16,
  bfloat16: roundToBfloat16,
};

function formatOf(attrs: tf.NamedAttrMap | undefined): QuantizeFormat {
  const format: unknown = attrs?.['format'];
  if (format !== 'float16' && format !== 'bfloat16') {
    throw new Error(`${QUANTIZE_KERNEL}: attr format must be 'float16' or 'bfloat16', got ${String(format)}`);
  }
  return format;
}

function inputOf(inputs: tf.NamedTensorInfoMap): tf.TensorInfo {
  const x = inputs['x'];
  if (x === undefined) throw new Error(`${QUANTIZE_KERNEL}: missing input x`);
  if (x.dtype !== 'float32') throw new Error(`${QUANTIZE_KERNEL}: input must be float32, got ${x.dtype}`);
  return x;
}

const cpuKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const x = inputOf(inputs);
  const round = ROUNDERS[formatOf(attrs)];
  const cpu = backend as MathBackendCPU;
  const src = cpu.data.get(x.dataId).values as Float32Array;
  const out = new Float32Array(tf.util.sizeFromShape(x.shape));
  round(src.length === out.length ? src : src.subarray(0, out.length), out);
  return cpu.makeTensorInfo(x.shape, 'float32', out);
};

const wasmKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const x = inputOf(inputs);
  const format = formatOf(attrs);
  const wasm = backend as BackendWasm;
  // Allocate first: growing the wasm heap detaches views taken earlier.
  const out = wasm.makeOutput(x.shape, 'float32');
  const size = tf.util.sizeFromShape(x.shape);
  if (size === 0) return out;
  // WHY: the same rule on 4 SIMD lanes inside the wasm memory is 8-20x faster than the JS loop (npm run bench).
  const simd = simdLoopsFor(wasm);
  if (simd !== null) {
    const offsetOf = (t: tf.TensorInfo): number => wasm.dataIdMap.get(t.dataId).memoryOffset;
    (format === 'float16' ? simd.roundFloat16 : simd.roundBfloat16)(offsetOf(x), offsetOf(out), size);
    return out;
  }
  const src = wasm.typedArrayFromHeap(x) as Float32Array;
  const dst = wasm.typedArrayFromHeap(out) as Float32Array;
  ROUNDERS[format](src, dst);
  return out;
};

/** tfjs-node: no half cast and no bitcast in its op API, so compose standard ops (see the file comment). */
const tensorflowKernel: tf.KernelFunc = ({ inputs, attrs }) => {
  const x = inputOf(inputs);
  const format = formatOf(attrs);
  return tf.tidy(() => {
    // The engine passes the caller's Tensors as inputs; wrap a bare TensorInfo just in case.
    const xt: tf.Tensor = x instanceof tf.Tensor ? (x as tf.Tensor) : tf.engine().makeTensorFromTensorInfo(x);
    return quantizeWithOps(xt, format);
  });
};

/**
 * Registers `MpxQuantize` for `cpu` and `wasm`, and for `tensorflow` if that backend has been registered
 * (i.e. tfjs-node was imported). Idempotent: call it again after loading tfjs-node to add that one.
 */
export function registerQuantizeKernels(): void {
  const add = (backendName: string, kernelFunc: tf.KernelFunc): void => {
    if (tf.getKernel(QUANTIZE_KERNEL, backendName) === undefined) {
      tf.registerKernel({ kernelName: QUANTIZE_KERNEL, backendName, kernelFunc });
    }
  };
  add('cpu', cpuKernel);
  add('wasm', wasmKernel);
  if (tf.findBackendFactory('tensorflow') != null) add('tensorflow', tensorflowKernel);
  if (tf.getGradient(QUANTIZE_KERNEL) === undefined) {
    // The gradient rule of the kernel itself (see `quantize`), so the engine records it like any op.
    tf.registerGradient({
      kernelName: QUANTIZE_KERNEL,
      gradFunc: (dy, _saved, attrs) => ({ x: () => forward(dy as tf.Tensor, formatOf(attrs)) }),
    });
  }
}

function hasKernel(): boolean {
  return tf.getKernel(QUANTIZE_KERNEL, tf.getBackend()) !== undefined;
}

function forward(x: tf.Tensor, format: QuantizeFormat): tf.Tensor {
  if (!hasKernel()) return quantizeWithOps(x, format);
  return tf.engine().runKernel<tf.Tensor>(QUANTIZE_KERNEL, { x }, { format });
}

/*
 * One op, with the rounding applied in both directions. Keras computes the backward pass of a 16-bit
 * layer in 16 bits, so a gradient crossing a cast lives on the 16-bit grid: at a float32 -> float16 cast
 * the incoming float16 gradient is already on it, at a float16 -> float32 cast the float32 gradient is
 * cast down to it. Rounding the upstream gradient of every quantize emulates both, and it is what lets
 * small gradients underflow to 0 (or overflow to Infinity) without loss scaling. There is deliberately no
 * variant with an identity gradient.
 */
const ops: Partial<Record<QuantizeFormat, (x: tf.Tensor) => tf.Tensor>> = {};

function opFor(format: QuantizeFormat): (x: tf.Tensor) => tf.Tensor {
  let op = ops[format];
  if (op === undefined) {
    // customGrad passes (x, save); save is not needed (the gradient does not depend on x).
    op = tf.customGrad((...args: unknown[]) => ({
      value: forward(args[0] as tf.Tensor, format),
      gradFunc: (dy: tf.Tensor) => forward(dy, format),
    }));
    ops[format] = op;
  }
  return op;
}

/**
 * Rounds `x` (float32) onto the `format` grid; the gradient is the upstream gradient rounded onto the same
 * grid. Call {@link registerQuantizeKernels} once after choosing the backend.
 *
 * Where the kernel exists it runs as a plain kernel with the registered gradient; WHY: `tf.customGrad` costs
 * ~15 µs more per rounding (forward and backward together), ~0.4 ms of a 20 ms MLP step with 25 roundings
 * (`npm run bench`). Elsewhere `quantizeWithOps` runs inside `tf.customGrad` with the same gradient.
 */
export function quantize(x: tf.Tensor, format: QuantizeFormat): tf.Tensor {
  if (x.dtype !== 'float32') throw new Error(`quantize: x must be float32, got ${x.dtype}`);
  if (format !== 'float16' && format !== 'bfloat16') {
    throw new Error(`quantize: format must be 'float16' or 'bfloat16', got ${String(format)}`);
  }
  if (hasKernel() && tf.getGradient(QUANTIZE_KERNEL) !== undefined) return forward(x, format);
  return opFor(format)(x);
}

const FORMAT_PARAMS: Record<QuantizeFormat, { mantissaBits: number; minExponent: number }> = {
  float16: { mantissaBits: 10, minExponent: -14 },
  bfloat16: { mantissaBits: 7, minExponent: -126 },
};

/** 1.5 * 2^23: adding and subtracting it rounds a float32 |r| < 2^22 to an integer, ties to even. */
const ROUND_MAGIC = 1.5 * 2 ** 23;

/**
 * The same rounding as the kernel, composed of standard tf ops (about 25 kernels; no gradient rule of its
 * own). Exact where the backend does IEEE float32 arithmetic with round-to-nearest-even (cpu: doubles
 * stored to float32, exact here because every intermediate sum fits in 53 bits; wasm; TensorFlow):
 *
 * 1. e = floor(log2|x|), estimated with log and then corrected by comparing |x| with 2^e and 2^(e+1)
 *    (exact comparisons), so log's rounding error cannot move it; clamped to [min normal exponent, 127].
 * 2. q = 2^(e - mantissaBits), the grid spacing at x (for subnormals the fixed 2^-24 / 2^-133).
 * 3. r = x / q is exact (a power-of-two scaling, |r| < 2^(mantissaBits+1)); (r + 1.5*2^23) - 1.5*2^23
 *    rounds it to an integer, ties to even; times q is exact, or overflows to +-Infinity exactly when
 *    the bfloat16 result overflows.
 * 4. Results of 0 take x's sign (x * 0); float16 results beyond 65504 become +-Infinity.
 *
 * NaN stays NaN, but unlike `round.ts` its sign and payload are whatever the backend produces.
 */
export function quantizeWithOps(x: tf.Tensor, format: QuantizeFormat): tf.Tensor {
  const { mantissaBits, minExponent } = FORMAT_PARAMS[format];
  return tf.tidy(() => {
    const ax = tf.abs(x);
    const estimate = tf.floor(tf.mul(tf.log(ax), 1 / Math.LN2));
    const p = tf.pow(tf.scalar(2), estimate);
    // At most one correction applies: p > |x| implies 2p > |x|.
    let e = tf.where(tf.greater(p, ax), tf.sub(estimate, 1), estimate);
    e = tf.where(tf.lessEqual(tf.mul(p, 2), ax), tf.add(e, 1), e);
    e = tf.clipByValue(e, minExponent, 127);
    const q = tf.pow(tf.scalar(2), tf.sub(e, mantissaBits));
    const r = tf.div(x, q);
    const rInt = tf.sub(tf.add(r, ROUND_MAGIC), ROUND_MAGIC);
    let y = tf.mul(rInt, q);
    y = tf.where(tf.equal(y, 0), tf.mul(x, 0), y);
    if (format === 'float16') {
      y = tf.where(tf.greater(tf.abs(y), 65504), tf.mul(tf.sign(x), Infinity), y);
    }
    return y;
  });
}
