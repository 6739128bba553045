/**
 * One run: build data and model from the seed, measure memory on the fp32 graph, train under the cell's policy
 * with gradient accumulation and loss scaling, evaluate, and return the measurements.
 */
import * as tf from '@tensorflow/tfjs';
import type { RunConfig } from '../matrix/types.js';
import type { RunMeasurements } from '../runner/protocol.js';
import type { BackendName, Policy } from '../spec/types.js';
import { batchIndices, buildDataset, gatherBatch, type Dataset } from './data.js';
import { readRssPeakBytes, readWasmHeapBytes, TensorLedger } from './measure.js';
import { createOptimizer, type Optimizer } from './optimizer.js';
import { buildModel, variableFrom, type ComputeGrid, type TrainableModel } from './model.js';
import { allFinite, LossScaler } from './precision/loss-scale.js';
import { deriveSeed } from './random.js';

/** Keras's epsilon for cross-entropy on probabilities (`backend.epsilon()`). */
const PROBABILITY_EPSILON = 1e-7;
const EVAL_CHUNK = 256;

export interface TrainHooks {
  /** Awaited after every update, which also lets the event loop deliver IPC messages between updates. */
  onProgress?(step: number, totalSteps: number): Promise<void> | void;
}

export function policyGrid(policy: Policy): ComputeGrid {
  return policy === 'mixed_float16' ? 'float16' : policy === 'mixed_bfloat16' ? 'bfloat16' : null;
}

/** Mean cross-entropy in fp32 (Keras computes the loss in float32 under every policy). */
export function crossEntropy(output: tf.Tensor, oneHot: tf.Tensor, outputsProbabilities: boolean): tf.Scalar {
  if (!outputsProbabilities) return tf.losses.softmaxCrossEntropy(oneHot, output) as tf.Scalar;
  const clipped = tf.clipByValue(output, PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON);
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.log(clipped)), -1)));
}

/**
 * The trainer state of one run: model, optimizer, persistent fp32 accumulators. `update` performs one optimizer
 * update over `accumulationSteps` micro-batches and returns its mean loss.
 */
export class Trainer {
  readonly model: TrainableModel;
  readonly optimizer: Optimizer;
  /** Persistent gradient sums, one per variable, only when accumulating (like Keras gradient-accumulation wrappers). */
  private accumulators: tf.Variable[] | null = null;

  constructor(
    private readonly run: RunConfig,
    private readonly dataset: Dataset,
    private readonly grid: ComputeGrid,
    readonly scaler: LossScaler,
  ) {
    this.model = buildModel(run.model, run.seed);
    this.optimizer = createOptimizer(run.train.optimizer);
  }

  update(step: number): number {
    const { accumulationSteps: k, microBatchSize } = this.run;
    const variables = this.model.variables;
    const scale = this.scaler.scale;
    let lossSum = 0;
    let grads: tf.Tensor[] = [];
    for (let micro = 0; micro < k; micro++) {
      const batch = gatherBatch(this.dataset, batchIndices(this.dataset.trainY.length, step, micro, microBatchSize, k));
      const { value, grads: named } = tf.tidy(() => {
        const xs = tf.tensor(batch.x, [microBatchSize, ...this.dataset.inputShape], 'float32');
        const ys = tf.oneHot(tf.tensor1d(batch.y, 'int32'), this.dataset.classes);
        const dropoutSeed = deriveSeed(this.run.seed, `dropout/${step}/${micro}`);
        return tf.variableGrads(() => {
          const output = this.model.forward(xs, { training: true, grid: this.grid, dropoutSeed });
          const loss = crossEntropy(output, ys, this.model.outputsProbabilities);
          return scale === 1 ? loss : tf.mul(loss, scale);
        }, variables);
      });
      lossSum += value.dataSync()[0]! / scale;
      value.dispose();
      grads = variables.map((v) => named[v.name]!);
      if (k > 1) this.accumulate(grads, micro);
    }
    // One fp32 update from the sum of the micro-batch gradients: divide by k (mean loss) and by the loss scale.
    const factor = 1 / (k * scale);
    const applied = this.accumulators ?? grads;
    const finalGrads = factor === 1 ? applied : applied.map((g) => tf.mul(g, factor));
    const isFinite = this.scaler.checksFiniteness ? allFinite(finalGrads) : true;
    if (this.scaler.update(isFinite).apply) {
      this.optimizer.apply(variables, finalGrads);
    }
    if (finalGrads !== applied) finalGrads.forEach((g) => g.dispose());
    if (k === 1) grads.forEach((g) => g.dispose());
    return lossSum / k;
  }

  /** Adds micro-batch gradients into the fp32 accumulators; the first micro-batch's gradients become the sum. */
  private accumulate(grads: tf.Tensor[], micro: number): void {
    if (!this.accumulators) {
      this.accumulators = grads.map((g, i) => variableFrom(tf.zerosLike(g), `${this.model.variables[i]!.name}/accumulator`, false));
    }
    this.accumulators.forEach((acc, i) => {
      const g = grads[i]!;
      if (micro === 0) acc.assign(g);
      else {
        const sum = tf.add(acc, g);
        acc.assign(sum);
        sum.dispose(); // the variable now holds the buffer; drop the tensor's own reference
      }
      g.dispose();
    });
  }

  evaluate(): number {
    const { evalX, evalY, inputShape } = this.dataset;
    const dim = inputShape.reduce((a, b) => a * b, 1);
    let correct = 0;
    for (let start = 0; start < evalY.length; start += EVAL_CHUNK) {
      const count = Math.min(EVAL_CHUNK, evalY.length - start);
      const predicted = tf.tidy(() => {
        const xs = tf.tensor(evalX.subarray(start * dim, (start + count) * dim), [count, ...inputShape], 'float32');
        return tf.argMax(this.model.forward(xs, { training: false, grid: this.grid, dropoutSeed: 1 }), -1);
      });
      const labels = predicted.dataSync();
      predicted.dispose();
      for (let i = 0; i < count; i++) if (labels[i] === evalY[start + i]) correct++;
    }
    return evalY.length === 0 ? 0 : correct / evalY.length;
  }

  dispose(): void {
    this.model.dispose();
    this.optimizer.dispose();
    this.accumulators?.forEach((a) => a.dispose());
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Memory is measured on the fp32 graph, never on the emulated one (its rounding temporaries do not exist in a
 * real 16-bit graph): two fp32 updates from the initial weights, the second measured (optimizer slots exist then,
 * as in every later step); the trainer is then thrown away and training starts again from the same seed.
 */
function measureFp32Update(run: RunConfig, dataset: Dataset, ledger: TensorLedger): { peakBytes: number; restingBytes: number } {
  const trainer = new Trainer(run, dataset, null, new LossScaler('none'));
  try {
    trainer.update(0);
    ledger.checkBudget();
    const restingBytes = ledger.liveBytes;
    ledger.resetPeak();
    trainer.update(1);
    ledger.checkBudget();
    return { peakBytes: ledger.peakBytes, restingBytes };
  } finally {
    trainer.dispose();
  }
}

export async function trainRun(
  run: RunConfig,
  backend: BackendName,
  ledger: TensorLedger,
  hooks: TrainHooks = {},
): Promise<RunMeasurements> {
  const dataset = buildDataset(run.data, run.model.input, run.model.classes, run.seed);
  const memory = measureFp32Update(run, dataset, ledger);

  const grid = policyGrid(run.policy);
  const scaler = new LossScaler(run.policy === 'mixed_float16' ? run.train.lossScale : 'none');
  const trainer = new Trainer(run, dataset, grid, scaler);
  const { steps, warmupSteps } = run.train;
  const stepMs: number[] = [];
  let initialLoss = NaN;
  let finalLoss = NaN;
  for (let step = 0; step < steps; step++) {
    const started = performance.now();
    const loss = trainer.update(step);
    const elapsed = performance.now() - started;
    if (step === 0) initialLoss = loss;
    finalLoss = loss;
    if (step >= warmupSteps) stepMs.push(elapsed);
    await hooks.onProgress?.(step + 1, steps);
  }
  const evalAccuracy = trainer.evaluate();
  const stepMsMedian = median(stepMs);
  const measurements: RunMeasurements = {
    backend,
    precision: grid === null ? 'native' : 'emulated',
    paramCount: trainer.model.paramCount,
    steps,
    stepMsMedian,
    samplesPerSecond: run.batchSize / (stepMsMedian / 1000),
    initialLoss,
    finalLoss,
    evalAccuracy,
    lossScaleFinal: scaler.usesScaling ? scaler.scale : null,
    skippedSteps: scaler.skippedSteps,
    peakBytes: memory.peakBytes,
    restingBytes: memory.restingBytes,
    rssPeakBytes: readRssPeakBytes(),
    wasmHeapBytes: readWasmHeapBytes(),
  };
  trainer.dispose();
  return measurements;
}
