/**
 * Builds a trainable model from a resolved ModelDef with plain tf ops (not tf.layers), so that mpx controls where
 * values are rounded onto the 16-bit grid and which buffers exist. The layers form a graph (`spec/model-shapes.ts`)
 * and run in the order the spec lists them. Keras 3 semantics under a mixed policy:
 *
 * - variables stay float32;
 * - a layer casts its floating inputs to its compute dtype (autocast) and computes in it; a 16-bit layer also casts
 *   its weights; a layer with `dtype: float32` computes in fp32;
 * - embedding, layerNormalization and batchNormalization do not autocast (Keras sets `autocast = False`): an
 *   embedding gathers float32 rows and casts them to the compute dtype; the normalisations compute in float32 from a
 *   float32 copy of their input and cast the result; globalAveragePooling reduces in float32 (Keras's `ops.mean`);
 *   multi-head attention without dropout runs its softmax in float32 (`ops.dot_product_attention`).
 *
 * Training emulates the 16-bit dtypes by rounding (`grid`); memory is measured on the fp32 graph, where the same
 * casts are logged for the model of the policy (`memory`; see `memory/policy-cast.ts`).
 */
import { tf } from './tfjs.js';
import type { Activation, LayerDef, ModelDef } from '../spec/types.js';
import { INPUT_SOURCE, inferModelGraph, layerParameterCounts, layerStateCounts, type ModelGraph } from '../spec/model-shapes.js';
import type { TensorLedger } from './memory/ledger.js';
import { policyCast } from './memory/policy-cast.js';
import { quantize } from './precision/quantize.js';
import { createRandom, deriveSeed } from './random.js';
import { multiHeadAttention } from './attention.js';

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
  /** Trainable variables in layer order (Keras's weight order within a layer); names are unique within the process. */
  variables: tf.Variable[];
  /** Non-trainable fp32 state: batch normalisation's moving mean and variance, updated by training forward passes. */
  state: tf.Variable[];
  paramCount: number;
  /** True when the last layer is a softmax: the loss then takes probabilities, else logits. */
  outputsProbabilities: boolean;
  forward(x: tf.Tensor, options: ForwardOptions): tf.Tensor;
  /**
   * Moves the batch normalisation statistics by the batches of the training forward passes since the last call. Run
   * after the backward pass: inside the gradient tape tfjs would save the old statistics for a gradient nobody takes
   * (TensorFlow assigns them in place); the statistics are not used while training, so the values are the same.
   */
  applyStateUpdates(ledger?: TensorLedger): void;
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

/** A layer's variables by role, as Keras names them. */
export interface LayerParams {
  kernel?: tf.Variable;
  bias?: tf.Variable;
  /** embedding */
  table?: tf.Variable;
  /** normalisations */
  gamma?: tf.Variable;
  beta?: tf.Variable;
  movingMean?: tf.Variable;
  movingVariance?: tf.Variable;
  /** multiHeadAttention: query, key, value and output projections, kernels as 2-D matrices [in, heads·size]. */
  queryKernel?: tf.Variable;
  queryBias?: tf.Variable;
  keyKernel?: tf.Variable;
  keyBias?: tf.Variable;
  valueKernel?: tf.Variable;
  valueBias?: tf.Variable;
  outputKernel?: tf.Variable;
  outputBias?: tf.Variable;
}

/** Keras's Embedding initialiser ("uniform"): RandomUniform(-0.05, 0.05). */
const EMBEDDING_INIT_LIMIT = 0.05;

/** tfjs registers variables by name per process; a per-build prefix keeps two models (e.g. in tests) apart. */
let modelsBuilt = 0;

export function buildModel(def: ModelDef, seed: number): TrainableModel {
  const prefix = `m${modelsBuilt++}`;
  const graph = inferModelGraph(def);
  const uniform = createRandom(deriveSeed(seed, 'weights'));
  const variables: tf.Variable[] = [];
  const state: tf.Variable[] = [];
  const params = def.layers.map((layer, index) => {
    const inputs = graph.sources[index]!.map((source) => (source === INPUT_SOURCE ? def.input : graph.shapes[source]!));
    const p = createParams(layer, inputs, uniform, `${prefix}/l${index}`);
    const trainable = trainableOf(layer, p);
    const sizes = layerParameterCounts(layer, inputs);
    if (trainable.length !== sizes.length || trainable.some((v, i) => v.size !== sizes[i])) {
      throw new Error(`internal: layer ${index + 1} (${layer.type}) made variables of sizes ${trainable.map((v) => v.size).join(', ')}, the spec counts ${sizes.join(', ')}; this is a bug`);
    }
    variables.push(...trainable);
    const layerState = [p.movingMean, p.movingVariance].filter((v): v is tf.Variable => v !== undefined);
    if (layerState.length !== layerStateCounts(layer, inputs).length) throw new Error(`internal: layer ${index + 1} state mismatch; this is a bug`);
    state.push(...layerState);
    return p;
  });
  const casts = new WeightCasts();
  const pending: Array<() => void> = [];
  const last = def.layers[def.layers.length - 1];
  const outputsProbabilities =
    (last?.type === 'activation' && last.activation === 'softmax') ||
    ((last?.type === 'dense' || last?.type === 'conv2d' || last?.type === 'conv1d') && last.activation === 'softmax');

  return {
    variables,
    state,
    paramCount: variables.reduce((sum, v) => sum + v.size, 0),
    outputsProbabilities,
    forward: (x, options) => forward(def, graph, params, x, options, casts, pending),
    applyStateUpdates: (ledger) => {
      const updates = pending.splice(0);
      const run = () => updates.forEach((update) => update());
      if (ledger) ledger.withContext({ role: 'other', halfPrecision: false, layer: null, isUpdate: true }, run);
      else run();
      if (ledger) state.forEach((v) => ledger.retag(v, 'parameters'));
    },
    dispose: () => {
      pending.splice(0).forEach((update) => update());
      casts.dispose();
      [...variables, ...state].forEach((v) => v.dispose());
    },
  };
}

/** The trainable variables of a layer in Keras's order (what `layerParameterCounts` counts). */
function trainableOf(layer: LayerDef, p: LayerParams): tf.Variable[] {
  const order: Array<keyof LayerParams> =
    layer.type === 'multiHeadAttention' ? ['queryKernel', 'queryBias', 'keyKernel', 'keyBias', 'valueKernel', 'valueBias', 'outputKernel', 'outputBias']
    : layer.type === 'layerNormalization' || layer.type === 'batchNormalization' ? ['gamma', 'beta']
    : ['table', 'kernel', 'bias'];
  return order.map((key) => p[key]).filter((v): v is tf.Variable => v !== undefined);
}

/**
 * A layer's variables with Keras's initial values, drawn in layer order from the 'weights' stream: glorot-uniform
 * kernels (fans as Keras's `compute_fans` gives them for the kernel's Keras shape), zero biases, uniform ±0.05
 * embeddings, gamma 1 and beta 0, moving mean 0 and variance 1. The torch engine draws the same values
 * (mpx_torch/model.py).
 */
function createParams(layer: LayerDef, inputs: ReadonlyArray<readonly number[]>, uniform: () => number, name: string): LayerParams {
  const input = inputs[0]!;
  const glorot = (shape: number[], fanIn: number, fanOut: number, suffix: string) => glorotVariable(shape, fanIn, fanOut, uniform, `${name}/${suffix}`);
  const zeros = (units: number, suffix: string) => variableFrom(tf.zeros([units]), `${name}/${suffix}`);
  const ones = (units: number, suffix: string, trainable = true) => variableFrom(tf.ones([units]), `${name}/${suffix}`, trainable);
  const p: LayerParams = {};
  switch (layer.type) {
    case 'dense': {
      const fanIn = input.at(-1)!;
      p.kernel = glorot([fanIn, layer.units], fanIn, layer.units, 'kernel');
      if (layer.useBias) p.bias = zeros(layer.units, 'bias');
      break;
    }
    case 'conv2d': {
      const [kh, kw] = layer.kernelSize;
      const channels = input[2]!;
      p.kernel = glorot([kh, kw, channels, layer.filters], kh * kw * channels, kh * kw * layer.filters, 'kernel');
      if (layer.useBias) p.bias = zeros(layer.filters, 'bias');
      break;
    }
    case 'conv1d': {
      const channels = input[1]!;
      p.kernel = glorot([layer.kernelSize, channels, layer.filters], layer.kernelSize * channels, layer.kernelSize * layer.filters, 'kernel');
      if (layer.useBias) p.bias = zeros(layer.filters, 'bias');
      break;
    }
    case 'embedding': {
      const values = new Float32Array(layer.vocab * layer.units);
      for (let i = 0; i < values.length; i++) values[i] = (uniform() * 2 - 1) * EMBEDDING_INIT_LIMIT;
      p.table = variableFrom(tf.tensor(values, [layer.vocab, layer.units], 'float32'), `${name}/embeddings`);
      break;
    }
    case 'layerNormalization':
    case 'batchNormalization': {
      const units = input.at(-1)!;
      p.gamma = ones(units, 'gamma');
      p.beta = zeros(units, 'beta');
      if (layer.type === 'batchNormalization') {
        p.movingMean = variableFrom(tf.zeros([units]), `${name}/moving_mean`, false);
        p.movingVariance = ones(units, 'moving_variance', false);
      }
      break;
    }
    case 'multiHeadAttention': {
      const [query, value = query, key = value] = inputs as [number[], number[]?, number[]?];
      const { heads, keySize, valueSize } = layer;
      // EinsumDense kernels [in, heads, size] and [heads, size, out]: Keras's compute_fans takes the leading axes as the
      // receptive field, so fan_in = heads·in and fan_out = size·in (projections), size·heads and out·heads (output).
      const projection = (width: number, size: number, suffix: string) => glorot([width, heads * size], heads * width, size * width, suffix);
      p.queryKernel = projection(query.at(-1)!, keySize, 'query/kernel');
      if (layer.useBias) p.queryBias = zeros(heads * keySize, 'query/bias');
      p.keyKernel = projection(key.at(-1)!, keySize, 'key/kernel');
      if (layer.useBias) p.keyBias = zeros(heads * keySize, 'key/bias');
      p.valueKernel = projection(value.at(-1)!, valueSize, 'value/kernel');
      if (layer.useBias) p.valueBias = zeros(heads * valueSize, 'value/bias');
      const out = query.at(-1)!;
      p.outputKernel = glorot([heads * valueSize, out], valueSize * heads, out * heads, 'attention_output/kernel');
      if (layer.useBias) p.outputBias = zeros(out, 'attention_output/bias');
      break;
    }
    default:
      break;
  }
  return p;
}

/** Keras's default kernel initialiser: uniform in ±sqrt(6 / (fanIn + fanOut)). */
function glorotVariable(shape: number[], fanIn: number, fanOut: number, uniform: () => number, name: string): tf.Variable {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = (uniform() * 2 - 1) * limit;
  return variableFrom(tf.tensor(values, shape, 'float32'), name);
}

/** A variable shares its initial tensor's buffer; the tensor itself must still be disposed or it leaks. */
export function variableFrom(initial: tf.Tensor, name: string, trainable = true): tf.Variable {
  const variable = tf.variable(initial, trainable, name);
  initial.dispose();
  return variable;
}

/** A tensor of the forward pass and whether, under the policy, it is a 16-bit tensor (on the grid when emulating). */
interface Value {
  tensor: tf.Tensor;
  isHalf: boolean;
}

/** What a layer's computation needs: its rounding, casts and memory context. */
export interface LayerContext {
  /** The layer computes in 16 bits under the policy. */
  isHalf: boolean;
  /** The grid training emulates the policy's 16-bit dtype on; null while measuring memory or under float32. */
  grid: ComputeGrid;
  training: boolean;
  dropoutSeed: number;
  /** Rounds a value the layer computes in its compute dtype (no-op unless emulating a 16-bit layer). */
  round(t: tf.Tensor): tf.Tensor;
  /** The layer's weight in its compute dtype (the emulated 16-bit copy for a 16-bit layer). */
  weight(v: tf.Variable): tf.Tensor;
  /**
   * A cast Keras makes inside the layer, between float32 and the policy's 16-bit dtype: emulated by rounding (the
   * gradient too), logged as a cast while measuring the policy's memory, nothing otherwise.
   */
  cast(t: tf.Tensor, toHalf: boolean): tf.Tensor;
  /** Runs `fn` with the layer's new buffers counted at `half` precision (a float32 section of a 16-bit layer). */
  inPrecision<T>(half: boolean, fn: () => T): T;
  /** Queues a variable update (batch normalisation's moving statistics) for `applyStateUpdates`; `kept` are disposed after it. */
  deferUpdate(update: () => void, kept: tf.Tensor[]): void;
  /** Runs `fn`, whose buffers exist only because of how tfjs composes an op (not in TensorFlow or PyTorch). */
  tfjsOnly<T>(fn: () => T): T;
  /** Runs `fn`, whose ops compose one call of the Keras-level op `name` (one kernel in PyTorch: F.gelu, F.layer_norm). */
  fused<T>(name: string, fn: () => T): T;
}

/** Layers that do not cast their inputs (Keras: `self.autocast = False`), and so compute on them as they come. */
const NO_AUTOCAST: ReadonlySet<LayerDef['type']> = new Set(['embedding', 'layerNormalization', 'batchNormalization']);

function forward(
  def: ModelDef,
  graph: ModelGraph,
  params: LayerParams[],
  input: tf.Tensor,
  options: ForwardOptions,
  casts: WeightCasts,
  pending: Array<() => void>,
): tf.Tensor {
  const { memory } = options;
  const policyGrid = options.grid;
  const policyHalf = policyGrid !== null || memory?.halfPrecision === true;
  const values: Value[] = [];
  const modelInput: Value = { tensor: input, isHalf: false };
  def.layers.forEach((layer, index) => {
    const isHalf = policyHalf && layer.dtype !== 'float32';
    const grid = isHalf ? policyGrid : null;
    const p = params[index]!;
    const sources = graph.sources[index]!.map((source) => (source === INPUT_SOURCE ? modelInput : values[source]!));
    const ledger = memory?.ledger;
    const context = { role: 'activations' as const, halfPrecision: isHalf, layer: index };
    if (ledger) ledger.context = context;
    const autocast = !NO_AUTOCAST.has(layer.type);
    if (memory && autocast) accountCasts(memory.ledger, index, isHalf, sources, trainableOf(layer, p));
    // Autocast: floating inputs to the compute dtype. Going up is exact; going down rounds (the gradient, too).
    const inputs = sources.map((v) => (autocast && grid !== null && !v.isHalf && v.tensor.dtype === 'float32' ? quantize(v.tensor, grid) : v.tensor));
    const ctx: LayerContext = {
      isHalf,
      grid: policyGrid,
      training: options.training,
      dropoutSeed: options.dropoutSeed + index,
      round: (t) => (grid ? quantize(t, grid) : t),
      weight: (v) => (grid ? casts.cast(v, grid) : v),
      cast: (t, toHalf) => {
        if (policyGrid !== null) return quantize(t, policyGrid);
        if (memory?.halfPrecision === true) return memory.ledger.withContext({ ...context, halfPrecision: toHalf }, () => policyCast(t, toHalf));
        return t;
      },
      inPrecision: (half, fn) => (ledger ? ledger.withContext({ ...context, halfPrecision: half }, fn) : fn()),
      deferUpdate: (update, kept) => {
        kept.forEach((t) => tf.keep(t));
        pending.push(() => {
          tf.tidy(update);
          tf.dispose(kept);
        });
      },
      tfjsOnly: (fn) => (ledger ? ledger.withContext({ ...context, isTfjsOnly: true }, fn) : fn()),
      fused: (name, fn) => (ledger ? ledger.asFusedOp(name, fn) : fn()),
    };
    const inputHalf = sources.map((v) => (autocast ? isHalf : v.isHalf));
    values.push({ tensor: applyLayer(layer, p, inputs, inputHalf, ctx), isHalf });
  });
  return values[values.length - 1]!.tensor;
}

/**
 * The working copies Keras makes that the fp32 graph does not have, for an autocasting layer: a 16-bit layer casts
 * each fp32 input and its weights to 16 bits (kept until its backward pass); a float32 layer fed by a 16-bit one
 * casts that input up. Integer inputs are not cast.
 */
function accountCasts(ledger: TensorLedger, index: number, isHalf: boolean, inputs: Value[], weights: tf.Variable[]): void {
  for (const input of inputs) {
    if (input.tensor.dtype !== 'float32') continue;
    if (isHalf && !input.isHalf) ledger.addVirtual(index, 2 * input.tensor.size);
    else if (!isHalf && input.isHalf) ledger.addVirtual(index, 4 * input.tensor.size);
  }
  if (isHalf) for (const w of weights) ledger.addVirtual(index, 2 * w.size);
}

function applyLayer(layer: LayerDef, p: LayerParams, inputs: tf.Tensor[], inputHalf: boolean[], ctx: LayerContext): tf.Tensor {
  const [x] = inputs as [tf.Tensor];
  const round = (t: tf.Tensor) => ctx.round(t);
  switch (layer.type) {
    case 'dense': {
      const units = layer.units;
      // Keras's Dense on a sequence multiplies the last axis (TensorFlow broadcasts the matmul over the batch axes).
      const flat = x.rank > 2 ? tf.reshape(x, [-1, x.shape[x.rank - 1]!]) : x;
      let y = round(tf.matMul(flat, ctx.weight(p.kernel!)));
      if (x.rank > 2) y = tf.reshape(y, [...x.shape.slice(0, -1), units]);
      if (p.bias) y = round(tf.add(y, ctx.weight(p.bias)));
      return activate(y, layer.activation, ctx);
    }
    case 'conv2d':
    case 'conv1d': {
      let y =
        layer.type === 'conv2d' ?
          round(tf.conv2d(x as tf.Tensor4D, ctx.weight(p.kernel!) as tf.Tensor4D, layer.strides, layer.padding))
        : round(tf.conv1d(x as tf.Tensor3D, ctx.weight(p.kernel!) as tf.Tensor3D, layer.strides, layer.padding));
      if (p.bias) y = round(tf.add(y, ctx.weight(p.bias)));
      return activate(y, layer.activation, ctx);
    }
    case 'maxPooling2d':
      return tf.maxPool(x as tf.Tensor4D, layer.poolSize, layer.strides, layer.padding);
    case 'averagePooling2d':
      return round(tf.avgPool(x as tf.Tensor4D, layer.poolSize, layer.strides, layer.padding));
    case 'globalAveragePooling1d':
    case 'globalAveragePooling2d': {
      // Keras's ops.mean reduces a 16-bit tensor in float32 and casts the result back.
      const axes = layer.type === 'globalAveragePooling1d' ? [1] : [1, 2];
      const wide = ctx.inPrecision(false, () => tf.mean(ctx.isHalf ? ctx.cast(x, false) : x, axes));
      return ctx.isHalf ? ctx.cast(wide, true) : wide;
    }
    case 'flatten':
      return tf.reshape(x, [x.shape[0], -1]);
    case 'dropout':
      return ctx.training && layer.rate > 0 ? round(tf.dropout(x, layer.rate, undefined, ctx.dropoutSeed)) : x;
    case 'activation':
      return activate(x, layer.activation, ctx);
    case 'embedding': {
      // The float32 table is never cast (autocast off); the gathered rows are cast to the compute dtype.
      const rows = ctx.inPrecision(false, () => tf.gather(p.table!, x));
      return ctx.isHalf ? ctx.cast(rows, true) : rows;
    }
    case 'layerNormalization':
      return layerNormalization(x, inputHalf[0]!, p, layer.epsilon, ctx);
    case 'batchNormalization':
      return batchNormalization(x, inputHalf[0]!, p, layer, ctx);
    case 'add':
      return inputs.slice(1).reduce((sum, t) => round(tf.add(sum, t)), x);
    case 'concatenate':
      return tf.concat(inputs, -1);
    case 'multiHeadAttention':
      return multiHeadAttention(layer, p, inputs, ctx);
  }
}

/**
 * Keras 3's layer normalisation (`keras/src/ops/nn.py` `_layer_normalization`, TensorFlow backend): a float32 copy of a
 * 16-bit input; `tf.nn.moments` (mean, then the mean of the squared difference); inv = rsqrt(variance + ε) · gamma;
 * out = x · inv + (beta − mean · inv); cast to the compute dtype. The same ops in the same order, so TensorFlow's
 * gradients keep the same tensors.
 */
function layerNormalization(x: tf.Tensor, isInputHalf: boolean, p: LayerParams, epsilon: number, ctx: LayerContext): tf.Tensor {
  const out = ctx.inPrecision(false, () => {
    const wide = isInputHalf ? ctx.cast(x, false) : x;
    return ctx.fused('layerNormalization', () => normalizeLastAxis(wide, p, epsilon));
  });
  return ctx.isHalf ? ctx.cast(out, true) : out;
}

function normalizeLastAxis(wide: tf.Tensor, p: LayerParams, epsilon: number): tf.Tensor {
  const axis = wide.rank - 1;
  const mean = tf.mean(wide, axis, true);
  const variance = tf.mean(tf.squaredDifference(wide, mean), axis, true);
  const inv = tf.mul(tf.rsqrt(tf.add(variance, epsilon)), p.gamma!);
  const shift = tf.add(tf.mul(tf.neg(mean), inv), p.beta!);
  return tf.add(tf.mul(wide, inv), shift);
}

/**
 * Keras 3's BatchNormalization (TensorFlow backend): a float32 copy of a 16-bit input; while training the batch's
 * `tf.nn.moments` over every axis but the last, which also move the float32 moving statistics (m·moving + (1−m)·batch,
 * assigned after the backward pass: `applyStateUpdates`); otherwise the moving statistics. Then `tf.nn.batch_normalization`: inv = rsqrt(variance + ε) ·
 * gamma; out = x · inv + (beta − mean · inv); cast to the compute dtype.
 */
function batchNormalization(
  x: tf.Tensor,
  isInputHalf: boolean,
  p: LayerParams,
  layer: { momentum: number; epsilon: number },
  ctx: LayerContext,
): tf.Tensor {
  const out = ctx.inPrecision(false, () => {
    const wide = isInputHalf ? ctx.cast(x, false) : x;
    return ctx.fused('batchNormalization', () => normalizeBatch(wide, p, layer, ctx));
  });
  return ctx.isHalf ? ctx.cast(out, true) : out;
}

function normalizeBatch(wide: tf.Tensor, p: LayerParams, layer: { momentum: number; epsilon: number }, ctx: LayerContext): tf.Tensor {
  const axes = [...Array(wide.rank - 1).keys()];
  let mean: tf.Tensor = p.movingMean!;
  let variance: tf.Tensor = p.movingVariance!;
  if (ctx.training) {
    mean = tf.mean(wide, axes);
    variance = tf.mean(tf.squaredDifference(wide, mean), axes);
    const [batchMean, batchVariance] = [tf.clone(mean), tf.clone(variance)];
    ctx.deferUpdate(() => {
      for (const [moving, batch] of [[p.movingMean!, batchMean], [p.movingVariance!, batchVariance]] as const) {
        moving.assign(tf.add(tf.mul(moving, layer.momentum), tf.mul(batch, 1 - layer.momentum)));
      }
    }, [batchMean, batchVariance]);
  }
  const inv = tf.mul(tf.rsqrt(tf.add(variance, layer.epsilon)), p.gamma!);
  return tf.add(tf.mul(wide, inv), tf.sub(p.beta!, tf.mul(mean, inv)));
}

/** sqrt(2), as TensorFlow's gelu divides by it. */
const SQRT_2 = 1.4142135623730951;

/**
 * `round` is applied to every value a 16-bit layer produces: each op of a 16-bit activation outputs 16 bits.
 * gelu is Keras's exact form as TensorFlow computes it (`tf.nn.gelu`, approximate=False, a composite of ops):
 * 0.5·x · (1 + erf(x / √2)).
 */
export function activate(x: tf.Tensor, activation: Activation, ctx?: Pick<LayerContext, 'round' | 'fused'>): tf.Tensor {
  const round = ctx?.round ?? ((t: tf.Tensor) => t);
  switch (activation) {
    case 'linear':
      return x;
    case 'relu':
      return tf.relu(x);
    case 'sigmoid':
      return round(tf.sigmoid(x));
    case 'tanh':
      return round(tf.tanh(x));
    case 'softmax':
      return round(tf.softmax(x));
    case 'gelu': {
      const fused = ctx?.fused ?? (<T>(_name: string, fn: () => T) => fn());
      return fused('gelu', () => {
        const half = round(tf.mul(x, 0.5));
        const erf = round(tf.erf(round(tf.div(x, SQRT_2))));
        return round(tf.mul(half, round(tf.add(erf, 1))));
      });
    }
  }
}
