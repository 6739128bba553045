/**
 * One run: build data and model from the seed, measure memory on the fp32 graph, train under the cell's policy
 * with gradient accumulation and loss scaling, evaluate, and return the measurements.
 */
import { cpus } from 'node:os';
import { tf } from './tfjs.js';
import type { RunConfig } from '../matrix/types.js';
import type { RunMeasurements } from '../runner/protocol.js';
import type { BackendName, Policy } from '../spec/types.js';
import { batchIndices, buildDataset, gatherBatch, type Dataset } from './data.js';
import type { TensorLedger } from './memory/ledger.js';
import { readRssPeakBytes, readWasmHeapBytes } from './memory/process.js';
import type { AllocationContext, MemoryReport, MemoryRole } from './memory/replay.js';
import { createOptimizer, type Optimizer } from './optimizer.js';
import { buildModel, variableFrom, type ComputeGrid, type MemoryAccounting, type TrainableModel } from './model.js';
import { allFinite, LossScaler } from './precision/loss-scale.js';
import { deriveSeed } from './random.js';
import { median } from '../util/stats.js';

/** Keras's epsilon for cross-entropy on probabilities (`backend.epsilon()`). */
const PROBABILITY_EPSILON = 1e-7;
const EVAL_CHUNK = 256;
/** Input batches and labels: held in fp32 under every policy. */
const DATA_CONTEXT: AllocationContext = { role: 'other', halfPrecision: false, layer: null };
/** Optimizer temporaries and accumulation sums (new values before they are assigned): fp32; in place in TensorFlow. */
const UPDATE_CONTEXT: AllocationContext = { role: 'other', halfPrecision: false, layer: null, isUpdate: true };

export interface TrainHooks {
  /** Awaited after every update, which also lets the event loop deliver IPC messages between updates. */
  onProgress?(step: number, totalSteps: number): Promise<void> | void;
}

export function policyGrid(policy: Policy): ComputeGrid {
  return policy === 'mixed_float16' ? 'float16' : policy === 'mixed_bfloat16' ? 'bfloat16' : null;
}

/** Mean cross-entropy in fp32 (Keras computes the loss in float32 under every policy). */
export function crossEntropy(output: tf.Tensor, oneHot: tf.Tensor, outputsProbabilities: boolean): tf.Scalar {
  if (!outputsProbabilities) return tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(oneHot, output);
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

  /**
   * One optimizer update over `accumulationSteps` micro-batches; returns its mean loss. With `memory`, every buffer
   * is tagged for the ledger (data, per-layer activations, gradients, accumulators, optimizer).
   */
  update(step: number, memory: MemoryAccounting | null = null): number {
    const { accumulationSteps: k, microBatchSize } = this.run;
    const variables = this.model.variables;
    const scale = this.scaler.scale;
    const ledger = memory?.ledger;
    const inContext = <T>(context: AllocationContext, fn: () => T): T => (ledger ? ledger.withContext(context, fn) : fn());
    const backward: AllocationContext = { role: 'activations', halfPrecision: memory?.halfPrecision ?? false, layer: null };
    const loss: AllocationContext = { role: 'activations', halfPrecision: false, layer: this.run.model.layers.length };
    let lossSum = 0;
    let grads: tf.Tensor[] = [];
    for (let micro = 0; micro < k; micro++) {
      const batch = gatherBatch(this.dataset, batchIndices(this.dataset.trainY.length, step, micro, microBatchSize, k));
      const { value, grads: named } = tf.tidy(() => {
        const { xs, ys } = inContext(DATA_CONTEXT, () => ({
          xs: tf.tensor(batch.x, [microBatchSize, ...this.dataset.inputShape], batch.x instanceof Int32Array ? 'int32' : 'float32'),
          ys: tf.oneHot(tf.tensor1d(batch.y, 'int32'), this.dataset.classes),
        }));
        const dropoutSeed = deriveSeed(this.run.seed, `dropout/${step}/${micro}`);
        return inContext(backward, () =>
          tf.variableGrads(() => {
            const output = this.model.forward(xs, { training: true, grid: this.grid, dropoutSeed, memory: memory ?? undefined });
            return inContext(loss, () => {
              const value = crossEntropy(output, ys, this.model.outputsProbabilities);
              return scale === 1 ? value : tf.mul(value, scale);
            });
          }, variables),
        );
      });
      ledger?.endBackward();
      this.model.applyStateUpdates(ledger);
      lossSum += value.dataSync()[0]! / scale;
      value.dispose();
      grads = variables.map((v) => named[v.name]!);
      if (ledger) grads.forEach((g) => ledger.retag(g, 'gradients', true));
      if (k > 1) inContext(UPDATE_CONTEXT, () => this.accumulate(grads, micro, ledger));
    }
    inContext(UPDATE_CONTEXT, () => {
      // One fp32 update from the sum of the micro-batch gradients, divided by k (mean loss) and by the loss scale
      // inside the optimizer, one variable at a time. Scaled gradients are finite iff the unscaled ones are.
      const summed = this.accumulators ?? grads;
      const isFinite = this.scaler.checksFiniteness ? allFinite(summed) : true;
      if (this.scaler.update(isFinite).apply) this.optimizer.apply(variables, summed, 1 / (k * scale), ledger);
    });
    if (k === 1) grads.forEach((g) => g.dispose());
    return lossSum / k;
  }

  /**
   * Creates the state a first update would create — optimizer slots, gradient accumulators — so that the next update
   * holds what every later one holds, and one update can be measured.
   */
  prepareState(): void {
    this.optimizer.prepare(this.model.variables);
    if (this.run.accumulationSteps > 1 && !this.accumulators) {
      this.accumulators = this.model.variables.map((v) => variableFrom(tf.zerosLike(v), `${v.name}/accumulator`, false));
    }
  }

  /** Buffers kept between updates and their roles: where a measurement window starts. */
  restingRoles(): Map<object, MemoryRole> {
    const roles = new Map<object, MemoryRole>();
    this.model.variables.forEach((v) => roles.set(v.dataId, 'parameters'));
    // Batch normalisation's moving statistics: non-trainable weights of the model, fp32 under every policy.
    this.model.state.forEach((v) => roles.set(v.dataId, 'parameters'));
    this.optimizer.slots().forEach((v) => roles.set(v.dataId, 'optimizer'));
    this.accumulators?.forEach((v) => roles.set(v.dataId, 'accumulators'));
    return roles;
  }

  /** Adds micro-batch gradients into the fp32 accumulators; the first micro-batch's gradients become the sum. */
  private accumulate(grads: tf.Tensor[], micro: number, ledger: TensorLedger | undefined): void {
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
      ledger?.retag(acc, 'accumulators');
    });
  }

  evaluate(): number {
    const { evalX, evalY, inputShape } = this.dataset;
    const dim = inputShape.reduce((a, b) => a * b, 1);
    let correct = 0;
    for (let start = 0; start < evalY.length; start += EVAL_CHUNK) {
      const count = Math.min(EVAL_CHUNK, evalY.length - start);
      const predicted = tf.tidy(() => {
        const xs = tf.tensor(evalX.subarray(start * dim, (start + count) * dim), [count, ...inputShape], evalX instanceof Int32Array ? 'int32' : 'float32');
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

/**
 * Memory is measured on the fp32 graph, never on the emulated one (its rounding temporaries do not exist in a real
 * 16-bit graph): one fp32 update from the initial weights with the policy's loss scaling, after the state a first
 * update creates (optimizer slots, accumulators) has been made, so it holds what every later update holds (tested:
 * the same bytes as measuring the second of two updates). The policy's own memory is modeled from the same window.
 * The trainer is then thrown away and training starts again from the same seed. A run whose modeled memory passes
 * the budget stops here, before training (MemoryBudgetExceeded).
 */
export function measureMemory(
  run: RunConfig,
  dataset: Dataset,
  ledger: TensorLedger,
): MemoryReport & { paramCount: number } {
  const trainer = new Trainer(run, dataset, null, createScaler(run));
  const memory: MemoryAccounting = { ledger, halfPrecision: policyGrid(run.policy) !== null };
  try {
    trainer.prepareState();
    ledger.openWindow(trainer.restingRoles());
    trainer.update(0, memory);
    const report = ledger.closeWindow();
    ledger.checkBudget(report);
    return { ...report, paramCount: trainer.model.paramCount };
  } finally {
    if (ledger.isMeasuring) ledger.closeWindow();
    trainer.dispose();
  }
}

function createScaler(run: RunConfig): LossScaler {
  return new LossScaler(run.policy === 'mixed_float16' ? run.train.lossScale : 'none');
}

export async function trainRun(
  run: RunConfig,
  backend: BackendName,
  ledger: TensorLedger,
  hooks: TrainHooks = {},
): Promise<RunMeasurements> {
  const dataset = buildDataset(run.data, run.model.input, run.model.classes, run.seed);
  const memory = measureMemory(run, dataset, ledger);

  const grid = policyGrid(run.policy);
  const scaler = createScaler(run);
  const { steps, warmupSteps } = run.train;
  // `steps: 0` is a memory probe (capacity search): no training trainer is built, and no accuracy is taken (an
  // untrained model's accuracy says nothing).
  const trainer = steps === 0 ? null : new Trainer(run, dataset, grid, scaler);
  const stepMs: number[] = [];
  let initialLoss = NaN;
  let finalLoss = NaN;
  for (let step = 0; trainer !== null && step < steps; step++) {
    const started = performance.now();
    const loss = trainer.update(step);
    const elapsed = performance.now() - started;
    if (step === 0) initialLoss = loss;
    finalLoss = loss;
    if (step >= warmupSteps) stepMs.push(elapsed);
    await hooks.onProgress?.(step + 1, steps);
  }
  const evalAccuracy = trainer === null ? Number.NaN : trainer.evaluate();
  const stepMsMedian = median(stepMs) ?? Number.NaN;
  const measurements: RunMeasurements = {
    backend,
    precision: grid === null ? 'native' : 'emulated',
    paramCount: memory.paramCount,
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
    paramsBytes: memory.peakByRole.parameters,
    gradsBytes: memory.peakByRole.gradients,
    optimizerBytes: memory.peakByRole.optimizer,
    accumulatorBytes: memory.peakByRole.accumulators,
    activationsPeakBytes: memory.activationsPeakBytes,
    peakModeledBytes: memory.peakModeledBytes,
    activationsPeakModeledBytes: memory.activationsPeakModeledBytes,
    peakTfModeledBytes: memory.peakTfModeledBytes,
    activationsPeakTfModeledBytes: memory.activationsPeakTfModeledBytes,
    peakTorchModeledBytes: memory.peakTorchModeledBytes,
    reservedPeakBytes: null,
    rssPeakBytes: readRssPeakBytes(),
    wasmHeapBytes: readWasmHeapBytes(),
    engine: {
      // tfjs-node decides between CPU and GPU inside TensorFlow and does not say which; wasm and cpu run on the CPU.
      device: backend === 'tensorflow' ? null : 'cpu',
      deviceName: backend === 'tensorflow' ? null : (cpus()[0]?.model.trim() ?? null),
      memoryMethod: 'tensor ledger: every buffer of the backend counted once, fp32 graph',
    },
  };
  trainer?.dispose();
  return measurements;
}
