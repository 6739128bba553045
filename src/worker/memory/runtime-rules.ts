/**
 * How a runtime holds the tensors of the ops mpx's layers use: which forward tensors an op's gradient keeps until the
 * backward pass reaches it, and what else the runtime holds for the op. `tensorflow` is the model mpx reports
 * (`peak_tf_modeled_bytes`); `pytorch` is the same replay with PyTorch's rules, to check the replay against the torch
 * engine's measurements (`peak_torch_modeled_bytes`).
 *
 * Both runtimes keep a forward tensor only for a gradient that is needed: TensorFlow's graph (Keras trains in a
 * tf.function) runs only the gradient ops that lead to the variables, and PyTorch's autograd saves a tensor only for
 * inputs that require grad. So the table says, per op and per input, what that input's gradient reads, and the
 * replay keeps it only when the input is on the path to a variable (mask × data keeps the mask, not the data;
 * x × 0.5 keeps nothing large). Sources: TensorFlow 2.x python/ops/{nn_grad,math_grad,array_grad}.py, PyTorch 1.13
 * tools/autograd/derivatives.yaml, and the torch engine's measurements (docs/torch-engine-notes.md):
 *
 * | tfjs kernel (inputs) | an input's gradient reads (both runtimes) | differs |
 * | --- | --- | --- |
 * | BatchMatMul, Multiply (a, b) | a's: b; b's: a (`_BatchMatMulV2Grad`, `_MulGrad`; `mm`, `mul`) | |
 * | RealDiv (a, b) | a's: b; b's: a and b (`_RealDivGrad`; `div.Tensor`) | |
 * | SquaredDifference (a, b) | both: a and b (`_SquaredDifferenceGrad`) | |
 * | Conv2D (x, filter) | x's: filter; filter's: x (`_Conv2DGrad`; `convolution_backward`) | PyTorch's CPU convolution (oneDNN) holds a reorder buffer as large as its output while the convolution and its gradient run; where TensorFlow's `same` padding is uneven the torch engine pads explicitly, and the convolution keeps that padded copy instead of x |
 * | Square, Erf, Log, ClipByValue (x) | x | |
 * | Relu, Softmax, Sigmoid, Tanh, Rsqrt, Sqrt, Exp | the output (`_ReluGrad`: `relu_grad(grad, op.outputs[0])`; `threshold_backward(grad, result)`, `_softmax_backward_data(grad, result)`) | |
 * | Select (condition, t, e) | t's and e's: condition (`_SelectGradV2`; `where`) | |
 * | GatherV2 (x, indices) | x's: indices (`_GatherV2Grad`; `embedding_dense_backward`) | TensorFlow's gradient is an IndexedSlices of the gathered rows (rows × (units + 1) × 4 bytes), PyTorch's a dense [vocab, units] table; PyTorch's ids are int64 (twice tfjs's int32) |
 * | MaxPool (x) | x and the output (`max_pool_grad(op.inputs[0], op.outputs[0], grad)`) | PyTorch keeps x and int64 indices, 8 bytes per output element (`max_pool2d_with_indices`) |
 * | AvgPool (x) | nothing (`_AvgPoolGrad`: the input's shape) | PyTorch keeps x (`avg_pool2d_backward(grad, self, …)`) |
 * | Add, Sub, Neg, Reshape, Transpose, Sum, Mean, Concat, Cast, MpxCast, BroadcastTo, … | nothing (shapes) | |
 * | gelu (Multiply, RealDiv, Erf, Add, Multiply: TensorFlow's `tf.nn.gelu` is these ops) | as above: ½x, x/√2 and 1 + erf(…) | PyTorch's `F.gelu` is one op that keeps only its input |
 * | layer / batch normalisation (`tf.nn.moments` and the normalisation's ops) | as above: the float32 input and small statistics | PyTorch's `F.layer_norm` / `native_batch_norm` are one op each: the same input kept, no full-size intermediates forward or backward |
 *
 * An op not in the table keeps what tfjs's gradient registration saves (`inputsToSave` / `outputsToSave`), which
 * follows TensorFlow's, whenever one of its inputs needs a gradient. TensorFlow's cuDNN workspaces are not modeled.
 */
import { modeledBytes, type BufferRecord, type TapeNodeInfo } from './replay.js';

export type Runtime = 'tensorflow' | 'pytorch';

/** Whether the gradient with respect to the node's input of that name is needed (the input leads to a variable). */
export type NeedsGradient = (input: string) => boolean;

export interface RuntimeRules {
  /** The forward tensors the gradient of `node` keeps, given which of its inputs need a gradient. */
  saved(node: TapeNodeInfo, needsGradient: NeedsGradient): Array<BufferRecord | undefined>;
  /** Bytes held from the op until its gradient has run, and bytes held only while the op (or its gradient) runs. */
  extra(node: TapeNodeInfo): { keptBytes: number; transientBytes: number };
  /** The bytes the runtime holds for a gradient's result when they are not the tensor's (a sparse gradient). */
  resultBytes(node: TapeNodeInfo, result: BufferRecord): number | undefined;
  /**
   * Keras-level ops the runtime runs as one kernel (FusedOp): their intermediates, forward and backward, are not
   * tensors there, and the kernel's gradient keeps the op's inputs.
   */
  fusedOps: ReadonlySet<string>;
}

type Reads = (node: TapeNodeInfo) => Record<string, Array<BufferRecord | undefined>>;

const NO_EXTRA = { keptBytes: 0, transientBytes: 0 };
/** Bytes of an int64 index per element of a float32 (or int32) buffer of the fp32 graph. */
const INT64_PER_FLOAT32 = 2;

const output: Reads = (node) => Object.fromEntries(Object.keys(node.inputs).map((name) => [name, [node.outputs[0]]]));
const ownInput: Reads = (node) => Object.fromEntries(Object.entries(node.inputs).map(([name, record]) => [name, [record]]));
const nothing: Reads = () => ({});
const crossed: Reads = ({ inputs: { a, b } }) => ({ a: [b], b: [a] });

/** What each input's gradient reads, per tfjs kernel; both runtimes (their differences are below). */
const GRADIENT_READS: Readonly<Record<string, Reads>> = {
  BatchMatMul: crossed,
  Multiply: crossed,
  RealDiv: ({ inputs: { a, b } }) => ({ a: [b], b: [a, b] }),
  SquaredDifference: ({ inputs: { a, b } }) => ({ a: [a, b], b: [a, b] }),
  Conv2D: ({ inputs: { x, filter } }) => ({ x: [filter], filter: [x] }),
  Square: ownInput,
  Erf: ownInput,
  Log: ownInput,
  ClipByValue: ownInput,
  Relu: output,
  Softmax: output,
  Sigmoid: output,
  Tanh: output,
  Rsqrt: output,
  Sqrt: output,
  Exp: output,
  Select: ({ inputs: { condition } }) => ({ t: [condition], e: [condition] }),
  GatherV2: ({ inputs: { indices } }) => ({ x: [indices] }),
  MaxPool: (node) => ({ x: [node.inputs.x, node.outputs[0]] }),
  AvgPool: nothing,
  Add: nothing,
  AddV2: nothing,
  AddN: nothing,
  Sub: nothing,
  Neg: nothing,
  Reshape: nothing,
  Transpose: nothing,
  Sum: nothing,
  Mean: nothing,
  Concat: nothing,
  Cast: nothing,
  MpxCast: nothing,
  Identity: nothing,
  BroadcastTo: nothing,
  ExpandDims: nothing,
  Squeeze: nothing,
};

/** The forward tensors kept for the gradients that are needed, by a table of what each input's gradient reads. */
function keptBy(table: Readonly<Record<string, Reads>>): RuntimeRules['saved'] {
  return (node, needsGradient) => {
    const reads = table[node.kernelName];
    const needed = Object.keys(node.inputs).filter(needsGradient);
    if (reads === undefined) return needed.length > 0 ? node.saved : [];
    const byInput = reads(node);
    return [...new Set(needed.flatMap((name) => byInput[name] ?? []))];
  };
}

const PYTORCH_READS: Readonly<Record<string, Reads>> = {
  ...GRADIENT_READS,
  MaxPool: (node) => ({ x: [node.inputs.x] }),
  AvgPool: ownInput,
  // With TensorFlow's uneven `same` padding the torch engine pads explicitly (F.pad): the convolution keeps the padded
  // copy (extra below), not x.
  Conv2D: (node) => {
    const { x, filter } = node.inputs;
    return paddedSize(node) === undefined ? { x: [filter], filter: [x] } : { x: [filter], filter: [] };
  },
};

/**
 * For a Conv2D with `same` padding that TensorFlow splits unevenly (an odd total: even kernels, strides > 1), the
 * elements of the padded input the torch engine makes (F.pad, mpx_torch/model.py); undefined when the padding is even.
 */
function paddedSize(node: TapeNodeInfo): number | undefined {
  const x = node.inputShapes.x;
  const filter = node.inputShapes.filter;
  if (node.attrs.pad !== 'same' || x === undefined || filter === undefined || x.length !== 4) return undefined;
  const strides = node.attrs.strides;
  const [sh, sw] = typeof strides === 'number' ? [strides, strides] : Array.isArray(strides) ? (strides as number[]) : [1, 1];
  const split = (size: number, window: number, stride: number) => {
    const total = Math.max((Math.ceil(size / stride) - 1) * stride + window - size, 0);
    return [Math.floor(total / 2), total - Math.floor(total / 2)] as const;
  };
  const [top, bottom] = split(x[1]!, filter[0]!, sh!);
  const [left, right] = split(x[2]!, filter[1]!, sw!);
  if (top === bottom && left === right) return undefined;
  return x[0]! * (x[1]! + top + bottom) * (x[2]! + left + right) * x[3]!;
}

export const RUNTIME_RULES: Readonly<Record<Runtime, RuntimeRules>> = {
  tensorflow: {
    saved: keptBy(GRADIENT_READS),
    extra: () => NO_EXTRA,
    fusedOps: new Set(),
    resultBytes: (node, result) => {
      // _GatherV2Grad returns IndexedSlices: the gathered rows' fp32 gradients (the forward output's size) and their ids.
      if (node.kernelName !== 'GatherV2' || result.role !== 'gradients') return undefined;
      return (node.outputs[0]?.bytes ?? 0) + (node.inputs.indices?.bytes ?? 0);
    },
  },
  pytorch: {
    saved: keptBy(PYTORCH_READS),
    extra: (node) => {
      const out = node.outputs[0];
      if (out === undefined) return NO_EXTRA;
      if (node.kernelName === 'MaxPool') return { keptBytes: out.bytes * INT64_PER_FLOAT32, transientBytes: 0 };
      if (node.kernelName === 'Conv2D') {
        const padded = paddedSize(node);
        const x = node.inputs.x;
        const keptBytes = padded === undefined || x === undefined ? 0 : (modeledBytes(x, x.role) / (x.bytes / 4)) * padded;
        return { keptBytes, transientBytes: modeledBytes(out, out.role) };
      }
      // The ids an embedding keeps are int64 in PyTorch: 4 more bytes per id than tfjs's int32.
      if (node.kernelName === 'GatherV2' && node.inputs.indices !== undefined) return { keptBytes: node.inputs.indices.bytes, transientBytes: 0 };
      return NO_EXTRA;
    },
    resultBytes: () => undefined,
    // F.gelu, F.layer_norm and native_batch_norm (what the torch engine runs; TensorFlow runs Keras's composites).
    fusedOps: new Set(['gelu', 'layerNormalization', 'batchNormalization']),
  },
};
