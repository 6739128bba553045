/**
 * `MpxCast`: a copy that stands for one of the dtype casts Keras makes under a mixed policy — a layer normalisation
 * computing from a float32 copy of its 16-bit input, an embedding casting its float32 rows to the compute dtype, an
 * attention softmax run in float32. Memory is measured on the fp32 graph, where no cast exists, so a cast's tensor
 * cannot be read off a tfjs buffer; during the measured update the model inserts this kernel wherever Keras casts
 * inside a layer. The ledger reads its `toHalf` attribute as the copy's precision under the policy, and counts the
 * copy as the same buffer as its source for tfjs's measured bytes (the fp32 graph holds one buffer there), while the
 * modeled replays count it as the separate tensor the policy's graph holds. Its gradient is the cast back (TensorFlow's
 * `_CastGrad`), again a copy; it keeps nothing for the backward pass.
 */
import { tf } from '../tfjs.js';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export const CAST_KERNEL = 'MpxCast';

function inputOf(inputs: tf.NamedTensorInfoMap): tf.TensorInfo {
  const x = inputs['x'];
  if (x === undefined || x.dtype !== 'float32') throw new Error(`${CAST_KERNEL}: input x must be a float32 tensor`);
  return x;
}

const cpuKernel: tf.KernelFunc = ({ inputs, backend }) => {
  const x = inputOf(inputs);
  const cpu = backend as MathBackendCPU;
  const values = cpu.data.get(x.dataId).values as Float32Array;
  return cpu.makeTensorInfo(x.shape, 'float32', values.slice(0, tf.util.sizeFromShape(x.shape)));
};

const wasmKernel: tf.KernelFunc = ({ inputs, backend }) => {
  const x = inputOf(inputs);
  const wasm = backend as BackendWasm;
  const out = wasm.makeOutput(x.shape.slice(), 'float32');
  // Views after the allocation: growing the heap detaches earlier ones.
  (wasm.typedArrayFromHeap(out) as Float32Array).set(wasm.typedArrayFromHeap(x));
  return out;
};

const tensorflowKernel: tf.KernelFunc = ({ inputs }) => {
  const x = inputOf(inputs);
  return tf.tidy(() => tf.add(x instanceof tf.Tensor ? x : tf.engine().makeTensorFromTensorInfo(x), 0));
};

/** Registers the kernel for cpu and wasm, and for tensorflow when tfjs-node is loaded. Idempotent. */
export function registerCastKernels(): void {
  const add = (backendName: string, kernelFunc: tf.KernelFunc) => {
    if (tf.getKernel(CAST_KERNEL, backendName) === undefined) tf.registerKernel({ kernelName: CAST_KERNEL, backendName, kernelFunc });
  };
  add('cpu', cpuKernel);
  add('wasm', wasmKernel);
  if (tf.findBackendFactory('tensorflow') != null) add('tensorflow', tensorflowKernel);
  if (tf.getGradient(CAST_KERNEL) === undefined) {
    tf.registerGradient({
      kernelName: CAST_KERNEL,
      gradFunc: (dy, _saved, attrs) => ({ x: () => policyCast(dy as tf.Tensor, attrs?.['toHalf'] !== true) }),
    });
  }
}

/** A copy of `x` that the memory model reads as a cast to 16 bits (`toHalf`) or to float32. */
export function policyCast(x: tf.Tensor, toHalf: boolean): tf.Tensor {
  return tf.engine().runKernel<tf.Tensor>(CAST_KERNEL, { x }, { toHalf });
}
