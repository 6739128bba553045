/**
 * How a runtime holds the tensors of the ops mpx's layers use: which forward tensors an op's gradient keeps until the
 * backward pass reaches it, and what else the runtime holds for the op. `tensorflow` is the model mpx reports
 * (`peak_tf_modeled_bytes`); `pytorch` is the same replay with PyTorch's rules, to check the replay against the torch
 * engine's measurements (`peak_torch_modeled_bytes`).
 *
 * tfjs registers its gradients after TensorFlow's (`inputsToSave` / `outputsToSave`, recorded on each tape node), and
 * that registration is the default; the rows below are where a runtime differs (TensorFlow 2.x:
 * tensorflow/python/ops/{nn_grad,math_grad,array_grad}.py; PyTorch 1.13: tools/autograd/derivatives.yaml, and what
 * the torch engine measured, docs/torch-engine-notes.md):
 *
 * | tfjs kernel | TensorFlow keeps | PyTorch keeps | tfjs keeps |
 * | --- | --- | --- | --- |
 * | Relu | the output (`_ReluGrad`: `relu_grad(grad, op.outputs[0])`) | the output (`threshold_backward(grad, result)`) | the input |
 * | Add, Sub (bias add) | nothing (`_AddGrad`, `_BiasAddGrad`: shapes) | nothing (the bias is fused into conv/addmm) | both inputs |
 * | Reshape, Sum, Mean | nothing (shapes) | nothing (shapes) | the input, for its shape |
 * | MaxPool | input and output (`max_pool_grad(op.inputs[0], op.outputs[0], grad)`) | the input and int64 indices, 8 bytes per output element (`max_pool2d_with_indices`) | input and output |
 * | BatchMatMul, Conv2D, Multiply, ClipByValue, Log | their inputs | their inputs | their inputs |
 * | Softmax, Sigmoid, Tanh | the output | the output | the output |
 *
 * And beyond tensors: PyTorch's CPU convolutions (oneDNN) compute into a blocked layout and reorder, holding a buffer as
 * large as the output while the convolution and its gradient run. TensorFlow's cuDNN workspaces are not modeled.
 */
import { modeledBytes, type BufferRecord, type TapeNodeInfo } from './replay.js';

export type Runtime = 'tensorflow' | 'pytorch';

export interface RuntimeRules {
  /** The forward tensors the gradient of `node` keeps. */
  saved(node: TapeNodeInfo): Array<BufferRecord | undefined>;
  /** Bytes held from the op until its gradient has run, and bytes held only while the op (or its gradient) runs. */
  extra(node: TapeNodeInfo): { keptBytes: number; transientBytes: number };
}

const NOTHING = (): BufferRecord[] => [];
const NO_EXTRA = { keptBytes: 0, transientBytes: 0 };
/** Bytes of an int64 index per element of a float32 buffer of the fp32 graph. */
const INT64_PER_FLOAT32 = 2;

/** Rules both runtimes share where they differ from tfjs. */
const SHAPES_ONLY: Readonly<Record<string, (node: TapeNodeInfo) => Array<BufferRecord | undefined>>> = {
  Relu: (node) => node.outputs,
  Add: NOTHING,
  AddV2: NOTHING,
  Sub: NOTHING,
  Reshape: NOTHING,
  Sum: NOTHING,
  Mean: NOTHING,
};

export const RUNTIME_RULES: Readonly<Record<Runtime, RuntimeRules>> = {
  tensorflow: {
    saved: (node) => (SHAPES_ONLY[node.kernelName] ?? ((n: TapeNodeInfo) => n.saved))(node),
    extra: () => NO_EXTRA,
  },
  pytorch: {
    saved: (node) => {
      if (node.kernelName === 'MaxPool') return [node.inputs.x];
      return (SHAPES_ONLY[node.kernelName] ?? ((n: TapeNodeInfo) => n.saved))(node);
    },
    extra: (node) => {
      const output = node.outputs[0];
      if (output === undefined) return NO_EXTRA;
      if (node.kernelName === 'MaxPool') return { keptBytes: output.bytes * INT64_PER_FLOAT32, transientBytes: 0 };
      if (node.kernelName === 'Conv2D') return { keptBytes: 0, transientBytes: modeledBytes(output, output.role) };
      return NO_EXTRA;
    },
  },
};
