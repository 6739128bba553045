/**
 * Builds a trainable model from a resolved ModelDef with plain tf ops (not tf.layers), so that mpx controls where
 * values are rounded onto the 16-bit grid and which buffers exist. Keras semantics under a mixed policy: variables
 * stay float32; a 16-bit layer casts its inputs and weights to the compute dtype and computes in it; a layer with
 * `dtype: float32` computes in fp32 (its fp16 inputs are cast up, exactly).
 */
import { tf } from './tfjs.js';
import type { Activation, LayerDef, ModelDef } from '../spec/types.js';
import { inferLayerShapes } from '../spec/model-shapes.js';
import type { TensorLedger } from './memory/ledger.js';
import { quantize } from './precision/quantize.js';
import { createRandom, deriveSeed } from './random.js';

/** The grid the emulated compute dtype rounds onto; null = plain fp32 graph. */
export type ComputeGrid = 'float16' | 'bfloat16' | null;

export interface ForwardOptions {
  training: boolean;
  grid: ComputeGrid;
  /** Seed of this micro-batch's dropout masks (non-zero: tfjs treats 0 as unseeded). */
  dropoutSeed: number;
  /** When measuring memory: tag each layer's buffers, as the run's policy would hold them. */
  memory?: MemoryAccounting;
}

export interface MemoryAccounting {
  ledger: TensorLedger;
  /** The policy computes in 16 bits (mixed_float16 / mixed_bfloat16). */
  halfPrecision: boolean;
}

export interface TrainableModel {
  /** Trainable variables in layer order; names are unique within the process. */
  variables: tf.Variable[];
  paramCount: number;
  /** True when the last layer is a softmax: the loss then takes probabilities, else logits. */
  outputsProbabilities: boolean;
  forward(x: tf.Tensor, options: ForwardOptions): tf.Tensor;
  dispose(): void;
}

/**
 * The 16-bit copies of the weights for the emulated forward pass, rounded once per weight value and reused by every
 * micro-batch of an update: the values are exactly those of rounding again (Keras recasts on every call), only the
 * emulation's time changes. An entry is keyed by the variable's buffer, which every optimizer update replaces.
 */
class WeightCasts {
  private readonly entries = new Map<tf.Variable, { dataId: object; grid: 'float16' | 'bfloat16'; rounded: tf.Tensor }>();

  /** q(v) as an op of v — forward: the cached rounding, gradient: the upstream gradient rounded (as `quantize`). */
  cast(variable: tf.Variable, grid: 'float16' | 'bfloat16'): tf.Tensor {
    let entry = this.entries.get(variable);
    if (!entry || entry.dataId !== variable.dataId || entry.grid !== grid) {
      entry?.rounded.dispose();
      entry = { dataId: variable.dataId, grid, rounded: tf.keep(quantize(tf.clone(variable), grid)) };
      this.entries.set(variable, entry);
    }
    const rounded = entry.rounded;
    // customGrad passes (v, save); the value ignores v on purpose: it is the cached rounding of v.
    const op: (v: tf.Tensor) => tf.Tensor = tf.customGrad(() => ({ value: tf.clone(rounded), gradFunc: (dy: tf.Tensor) => quantize(dy, grid) }));
    return op(variable);
  }

  dispose(): void {
    this.entries.forEach((entry) => entry.rounded.dispose());
    this.entries.clear();
  }
}

interface LayerParams {
  kernel?: tf.Variable;
  bias?: tf.Variable;
}

/** Activations that map grid values to grid values, so their outputs need no second rounding. */
const GRID_PRESERVING: ReadonlySet<Activation> = new Set(['linear', 'relu']);

/** tfjs registers variables by name per process; a per-build prefix keeps two models (e.g. in tests) apart. */
let modelsBuilt = 0;

export function buildModel(def: ModelDef, seed: number): TrainableModel {
  const prefix = `m${modelsBuilt++}`;
  const shapes = inferLayerShapes(def);
  const uniform = createRandom(deriveSeed(seed, 'weights'));
  const variables: tf.Variable[] = [];
  const params: LayerParams[] = [];
  let inputShape = def.input;
  def.layers.forEach((layer, index) => {
    const p: LayerParams = {};
    if (layer.type === 'dense') {
      const fanIn = inputShape[0]!;
      p.kernel = glorotVariable([fanIn, layer.units], fanIn, layer.units, uniform, `${prefix}/l${index}/kernel`);
      if (layer.useBias) p.bias = zerosVariable([layer.units], `${prefix}/l${index}/bias`);
    } else if (layer.type === 'conv2d') {
      const [kh, kw] = layer.kernelSize;
      const inChannels = inputShape[2]!;
      const shape = [kh, kw, inChannels, layer.filters];
      p.kernel = glorotVariable(shape, kh * kw * inChannels, kh * kw * layer.filters, uniform, `${prefix}/l${index}/kernel`);
      if (layer.useBias) p.bias = zerosVariable([layer.filters], `${prefix}/l${index}/bias`);
    }
    if (p.kernel) variables.push(p.kernel);
    if (p.bias) variables.push(p.bias);
    params.push(p);
    inputShape = shapes[index]!;
  });
  const casts = new WeightCasts();
  const last = def.layers[def.layers.length - 1];
  const outputsProbabilities =
    (last?.type === 'activation' && last.activation === 'softmax') ||
    ((last?.type === 'dense' || last?.type === 'conv2d') && last.activation === 'softmax');

  return {
    variables,
    paramCount: variables.reduce((sum, v) => sum + v.size, 0),
    outputsProbabilities,
    forward: (x, options) => forward(def.layers, params, x, options, casts),
    dispose: () => {
      casts.dispose();
      variables.forEach((v) => v.dispose());
    },
  };
}

/** Keras's default kernel initialiser: uniform in ±sqrt(6 / (fanIn + fanOut)). */
function glorotVariable(shape: number[], fanIn: number, fanOut: number, uniform: () => number, name: string): tf.Variable {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = (uniform() * 2 - 1) * limit;
  return variableFrom(tf.tensor(values, shape, 'float32'), name);
}

function zerosVariable(shape: number[], name: string): tf.Variable {
  return variableFrom(tf.zeros(shape), name);
}

/** A variable shares its initial tensor's buffer; the tensor itself must still be disposed or it leaks. */
export function variableFrom(initial: tf.Tensor, name: string, trainable = true): tf.Variable {
  const variable = tf.variable(initial, trainable, name);
  initial.dispose();
  return variable;
}

function forward(layers: LayerDef[], params: LayerParams[], input: tf.Tensor, options: ForwardOptions, casts: WeightCasts): tf.Tensor {
  let x = input;
  /** Whether x already lies on the compute grid (so casting it again would change nothing). */
  let onGrid = false;
  /** Whether, under the policy being measured, x would already be a 16-bit tensor. */
  let isHalfInModel = false;
  layers.forEach((layer, index) => {
    const grid = layer.dtype === 'float32' ? null : options.grid;
    const round = (t: tf.Tensor) => (grid ? quantize(t, grid) : t);
    const cast = (v: tf.Variable) => (grid ? casts.cast(v, grid) : v);
    const p = params[index]!;
    if (options.memory) isHalfInModel = accountLayer(options.memory, index, layer, p, x, isHalfInModel);
    if (grid && !onGrid) x = round(x);
    switch (layer.type) {
      case 'dense':
      case 'conv2d': {
        const kernel = cast(p.kernel!);
        let y =
          layer.type === 'dense'
            ? round(tf.matMul(x, kernel))
            : round(tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, layer.strides, layer.padding));
        if (p.bias) y = round(tf.add(y, cast(p.bias)));
        y = activate(y, layer.activation);
        x = GRID_PRESERVING.has(layer.activation) ? y : round(y);
        break;
      }
      case 'maxPooling2d':
        x = tf.maxPool(x as tf.Tensor4D, layer.poolSize, layer.strides, layer.padding);
        break;
      case 'flatten':
        x = tf.reshape(x, [x.shape[0], -1]);
        break;
      case 'dropout':
        if (options.training && layer.rate > 0) x = round(tf.dropout(x, layer.rate, undefined, options.dropoutSeed + index));
        break;
      case 'activation':
        x = activate(x, layer.activation);
        if (!GRID_PRESERVING.has(layer.activation)) x = round(x);
        break;
    }
    onGrid = grid !== null;
  });
  return x;
}

/**
 * Tags the buffers a layer is about to allocate, and adds the working copies Keras would make that the fp32 graph
 * does not have: a 16-bit layer casts its fp32 input and its weights to 16 bits (kept until its backward pass); a
 * float32 layer fed by a 16-bit one casts its input up. Returns whether the layer's output is 16-bit.
 */
function accountLayer(memory: MemoryAccounting, index: number, layer: LayerDef, p: LayerParams, x: tf.Tensor, isInputHalf: boolean): boolean {
  const isHalf = memory.halfPrecision && layer.dtype !== 'float32';
  const { ledger } = memory;
  ledger.context = { role: 'activations', halfPrecision: isHalf, layer: index };
  if (isHalf) {
    if (!isInputHalf) ledger.addVirtual(index, 2 * x.size);
    if (p.kernel) ledger.addVirtual(index, 2 * p.kernel.size);
    if (p.bias) ledger.addVirtual(index, 2 * p.bias.size);
  } else if (isInputHalf) {
    ledger.addVirtual(index, 4 * x.size);
  }
  return isHalf;
}

function activate(x: tf.Tensor, activation: Activation): tf.Tensor {
  switch (activation) {
    case 'linear':
      return x;
    case 'relu':
      return tf.relu(x);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'tanh':
      return tf.tanh(x);
    case 'softmax':
      return tf.softmax(x);
  }
}
