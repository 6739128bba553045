/**
 * In-process measurements on the real training path: the worker's `Trainer` (model, policy emulation, Adam, loss
 * scaling) on a backend started by `startBackend`, data from `buildDataset`. Also the forward-matmul reference and a
 * per-kernel profile of the emulated policies.
 */
import * as tf from '@tensorflow/tfjs';
import type { RunConfig } from '../matrix/types.js';
import type { Policy } from '../spec/types.js';
import { buildDataset } from '../worker/data.js';
import { LossScaler } from '../worker/precision/loss-scale.js';
import { QUANTIZE_KERNEL } from '../worker/precision/quantize.js';
import { policyGrid, Trainer } from '../worker/train.js';
import { countFlops, type ModelFlops } from './flops.js';
import { profileKernels } from './kernel-profile.js';
import { POLICIES, presetRun, type PresetName } from './specs.js';
import { median, summarize, timeCall, type Timing, type TimingSummary } from './stats.js';

export interface StepMeasurement {
  preset: PresetName;
  policy: Policy;
  backend: string;
  batchSize: number;
  flops: ModelFlops;
  step: TimingSummary;
  /** trainingStep FLOPs / median wall time per step. */
  gflops: number;
}

/** Builds the trainer exactly as `trainRun` does for a cell (grid and loss scaler from the policy). */
export function createTrainer(run: RunConfig): { trainer: Trainer; dispose: () => void } {
  const dataset = buildDataset(run.data, run.model.input, run.model.classes, run.seed);
  const scaler = new LossScaler(run.policy === 'mixed_float16' ? run.train.lossScale : 'none');
  const trainer = new Trainer(run, dataset, policyGrid(run.policy), scaler);
  return { trainer, dispose: () => trainer.dispose() };
}

/**
 * Step times of several trainers measured in interleaved rounds (a, b, c, a, b, c, …), so that a slow phase of the
 * machine hits every trainer alike; `warmup` untimed updates each first.
 */
export function measureSteps(
  runs: readonly RunConfig[],
  backend: string,
  options: { warmup: number; rounds: number; perRound: number },
): StepMeasurement[] {
  const trainers = runs.map(createTrainer);
  try {
    const nextStep = runs.map(() => 0);
    const update = (i: number): void => {
      trainers[i]!.trainer.update(nextStep[i]!++);
    };
    for (let i = 0; i < runs.length; i++) for (let w = 0; w < options.warmup; w++) update(i);
    const timings: Timing[][] = runs.map(() => []);
    for (let round = 0; round < options.rounds; round++) {
      for (let i = 0; i < runs.length; i++) {
        for (let s = 0; s < options.perRound; s++) timings[i]!.push(timeCall(() => update(i)));
      }
    }
    return runs.map((run, i) => {
      const flops = countFlops(run.model, run.microBatchSize);
      const step = summarize(timings[i]!);
      return {
        preset: run.model.name as PresetName,
        policy: run.policy,
        backend,
        batchSize: run.batchSize,
        flops,
        step,
        gflops: flops.trainingStep / (step.wallMs * 1e6),
      };
    });
  } finally {
    trainers.forEach((t) => t.dispose());
  }
}

export interface MatmulMeasurement {
  /** The forward products of the model at its batch size, weights reused between calls (XNNPACK's packed copy). */
  shapes: Array<[number, number, number]>;
  flops: number;
  chain: TimingSummary;
  gflops: number;
}

/** GFLOP/s of the model's forward products alone (x·W per dense layer, no bias or activation), on the current backend. */
export function measureForwardMatmul(run: RunConfig, reps = 40): MatmulMeasurement {
  const flops = countFlops(run.model, run.microBatchSize);
  const dense = flops.layers.filter((l) => l.type === 'dense');
  if (dense.length !== flops.layers.length) throw new Error('bench: the forward-matmul reference needs a dense-only model');
  const shapes = dense.map((l): [number, number, number] => [l.m, l.k, l.n]);
  const [m, k0] = [shapes[0]![0], shapes[0]![1]];
  const x = tf.randomUniform([m, k0], -1, 1, 'float32', 1);
  const weights = shapes.map(([, k, n], i) => tf.randomUniform([k, n], -0.1, 0.1, 'float32', 2 + i));
  const chain = (): void => {
    const out = tf.tidy(() => weights.reduce<tf.Tensor>((h, w) => tf.matMul(h, w), x));
    out.dataSync();
    out.dispose();
  };
  try {
    for (let i = 0; i < 5; i++) chain();
    const summary = summarize(Array.from({ length: reps }, () => timeCall(chain)));
    const total = dense.reduce((sum, l) => sum + l.forward, 0);
    return { shapes, flops: total, chain: summary, gflops: total / (summary.wallMs * 1e6) };
  } finally {
    tf.dispose([x, ...weights]);
  }
}

export interface PolicyProfile {
  preset: PresetName;
  policy: Policy;
  /** Per update, medians over the profiled updates. */
  stepMs: number;
  kernelMs: number;
  quantizeCalls: number;
  quantizeMs: number;
  /** Elements rounded per update (inputs and gradients). */
  quantizeElements: number;
  /** Of those, calls and elements whose input was already on the grid (the rounding changed no bit). */
  noopQuantizeCalls: number;
  noopQuantizeElements: number;
  /** BatchMatMul kernels (inclusive of the transposes they run). */
  matmulMs: number;
  /** Identity kernels (tf.clone, and the engine's copies of tensors saved for the backward pass): wasm copies them. */
  identityCalls: number;
  identityMs: number;
  optimizerMs: number;
  /** The five kernels with the most time per update. */
  topKernels: Array<{ kernel: string; calls: number; ms: number }>;
}

/**
 * A separate, profiled pass (kernel wrappers add a few µs per call): per update, how many MpxQuantize calls the
 * policy makes, how long they and the optimizer take, and where the rest of the kernel time goes.
 */
export function profilePolicies(runs: readonly RunConfig[], backendName: string, updates = 4): PolicyProfile[] {
  return runs.map((run) => {
    const { trainer, dispose } = createTrainer(run);
    try {
      for (let s = 0; s < 2; s++) trainer.update(s);
      let optimizerMs = 0;
      let quantizeElements = 0;
      const optimizer = trainer.optimizer;
      const apply = optimizer.apply.bind(optimizer);
      optimizer.apply = (...args: Parameters<typeof optimizer.apply>) => {
        const started = performance.now();
        try {
          apply(...args);
        } finally {
          optimizerMs += performance.now() - started;
        }
      };
      let noopCalls = 0;
      let noopElements = 0;
      const inspect = (input: tf.TensorInfo, output: tf.TensorInfo): void => {
        const size = tf.util.sizeFromShape(input.shape);
        quantizeElements += size;
        const read = (t: tf.TensorInfo) => new Uint32Array((tf.backend().readSync(t.dataId) as Float32Array).slice(0, size).buffer);
        const [a, b] = [read(input), read(output)];
        if (a.every((bits, i) => bits === b[i])) {
          noopCalls++;
          noopElements += size;
        }
      };
      const steps: number[] = [];
      const profile = profileKernels(backendName, () => {
        const quantize = tf.getKernel(QUANTIZE_KERNEL, backendName);
        if (quantize !== undefined) {
          const inner = quantize.kernelFunc;
          tf.unregisterKernel(QUANTIZE_KERNEL, backendName);
          tf.registerKernel({
            ...quantize,
            kernelFunc: (params) => {
              const output = inner(params) as tf.TensorInfo;
              inspect(params.inputs['x']!, output);
              return output;
            },
          });
        }
        for (let s = 2; s < 2 + updates; s++) steps.push(timeCall(() => trainer.update(s)).wallMs);
      });
      const per = (value: number): number => value / updates;
      const quantize = profile.byKernel.get(QUANTIZE_KERNEL) ?? { calls: 0, ms: 0 };
      const topKernels = [...profile.byKernel.entries()]
        .map(([kernel, stat]) => ({ kernel, calls: per(stat.calls), ms: per(stat.ms) }))
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 5);
      return {
        preset: run.model.name as PresetName,
        policy: run.policy,
        stepMs: median(steps),
        kernelMs: per(profile.topLevelMs),
        quantizeCalls: per(quantize.calls),
        quantizeMs: per(quantize.ms),
        quantizeElements: per(quantizeElements),
        noopQuantizeCalls: per(noopCalls),
        noopQuantizeElements: per(noopElements),
        matmulMs: per(profile.byKernel.get('BatchMatMul')?.ms ?? 0),
        identityCalls: per(profile.byKernel.get('Identity')?.calls ?? 0),
        identityMs: per(profile.byKernel.get('Identity')?.ms ?? 0),
        optimizerMs: per(optimizerMs),
        topKernels,
      };
    } finally {
      dispose();
    }
  });
}

export interface ComputeResults {
  forwardMatmul: MatmulMeasurement;
  wasmSteps: StepMeasurement[];
  cpuSteps: StepMeasurement[];
  profiles: PolicyProfile[];
}

/** Everything measured in this process: patched wasm (started by the worker's own `startBackend`) and cpu. */
export async function measureCompute(log: (line: string) => void): Promise<ComputeResults> {
  const { startBackend } = await import('../worker/backend.js');
  const started = await startBackend('wasm');
  if (started.name !== 'wasm') throw new Error(`bench: expected the wasm backend, got ${started.name}`);

  log('forward matmul reference (MLP shapes)');
  const forwardMatmul = measureForwardMatmul(presetRun('mlp', 'float32'));

  log('training steps on patched wasm: MLP × 3 policies');
  const mlp = measureSteps(POLICIES.map((p) => presetRun('mlp', p)), 'wasm', { warmup: 3, rounds: 8, perRound: 5 });
  log('training steps on patched wasm: CNN × 3 policies');
  const cnn = measureSteps(POLICIES.map((p) => presetRun('cnn', p)), 'wasm', { warmup: 3, rounds: 6, perRound: 4 });

  log('kernel profile of each policy');
  const profiles = profilePolicies(
    (['mlp', 'cnn'] as const).flatMap((preset) => POLICIES.map((p) => presetRun(preset, p))),
    'wasm',
  );

  log('training steps on cpu (MLP ~1 s, CNN ~20 s)');
  if (!(await tf.setBackend('cpu'))) throw new Error('bench: the cpu backend did not start');
  const cpuSteps = [
    ...measureSteps([presetRun('mlp', 'float32')], 'cpu', { warmup: 1, rounds: 1, perRound: 3 }),
    ...measureSteps([presetRun('cnn', 'float32')], 'cpu', { warmup: 1, rounds: 1, perRound: 1 }),
  ];
  await tf.setBackend('wasm');
  return { forwardMatmul, wasmSteps: [...mlp, ...cnn], cpuSteps, profiles };
}
