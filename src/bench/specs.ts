/**
 * The experiments the benchmark runs, as spec YAML going through the real loader and planner (`loadSpecText` +
 * `planRuns`), so presets, defaults and run ids are exactly what `mpx run` would use.
 */
import { planRuns } from '../matrix/plan.js';
import type { RunConfig } from '../matrix/types.js';
import { loadSpecText } from '../spec/load.js';
import type { Policy } from '../spec/types.js';

export type PresetName = 'mlp' | 'cnn';

/** Batch sizes of the step measurements: the README's figures (MLP 784-512-512-10 at 128, the CNN preset at 64). */
export const BENCH_BATCH: Record<PresetName, number> = { mlp: 128, cnn: 64 };

export const POLICIES: readonly Policy[] = ['float32', 'mixed_float16', 'mixed_bfloat16'];

/** One run of a preset with its defaults (MLP 784-512-512-10; CNN 28×28×1, conv 16 and 32, dense 64), Adam. */
export function presetRun(preset: PresetName, policy: Policy, batchSize = BENCH_BATCH[preset]): RunConfig {
  const yaml = `
name: bench-${preset}
seed: 1
backend: wasm
data: { kind: synthetic, samples: 2048, evalSamples: 64 }
train: { steps: 10, warmupSteps: 1, optimizer: { name: adam, learningRate: 0.001 }, lossScale: dynamic }
models:
  ${preset}: { preset: ${preset} }
matrix: { model: [${preset}], batchSize: [${batchSize}], policy: [${policy}], accumulationSteps: [1] }
`;
  return planRuns(loadSpecText(yaml, `bench-${preset}.yaml`).spec).runs[0]!;
}

/** Runs of a tiny model with one training step: nearly all of their wall time is per-run overhead. */
export const OVERHEAD_RUNS = 5;
export function overheadRuns(): RunConfig[] {
  const yaml = `
name: bench-overhead
seed: 1
repeats: ${OVERHEAD_RUNS}
data: { kind: synthetic, samples: 64, evalSamples: 16 }
train: { steps: 1, warmupSteps: 0, optimizer: { name: adam, learningRate: 0.001 } }
models:
  tiny: { preset: mlp, input: [16], hidden: [8], classes: 2 }
matrix: { model: [tiny], batchSize: [8], policy: [float32], accumulationSteps: [1] }
`;
  return planRuns(loadSpecText(yaml, 'bench-overhead.yaml').spec).runs;
}

/**
 * The 8-run matrix of the worker speed-up: both presets × two policies × accumulation 1 and 2, runs of 1–3 s so that
 * training, not process start, dominates. Matrix order pairs runs of similar length (MLPs first, then CNNs).
 */
export const POOL_SPEC = `
name: bench-pool
seed: 1
data: { kind: synthetic, samples: 2048, evalSamples: 256 }
train: { steps: 40, warmupSteps: 2, optimizer: { name: adam, learningRate: 0.001 } }
models:
  mlp: { preset: mlp }
  cnn: { preset: cnn }
matrix:
  model: [mlp, cnn]
  batchSize: [64]
  policy: [float32, mixed_bfloat16]
  accumulationSteps: [1, 2]
`;

export function poolRuns(): RunConfig[] {
  return planRuns(loadSpecText(POOL_SPEC, 'bench-pool.yaml').spec).runs;
}

/**
 * A spec whose matrix has exactly 100,000 cells within the schema's limits (at most 64 values per axis): 50 models ×
 * 50 batch sizes × 2 policies × 20 accumulation settings. Batch sizes are multiples of 5040, which every
 * accumulation setting (its 20 smallest divisors) divides.
 */
export const PLAN_CELLS = 100_000;
export function largeMatrixSpec(): string {
  const models = Array.from({ length: 50 }, (_, i) => `m${i}`);
  const divisors = Array.from({ length: 5040 }, (_, i) => i + 1).filter((d) => 5040 % d === 0).slice(0, 20);
  return `
name: bench-plan
seed: 1
maxRuns: ${PLAN_CELLS}
models:
${models.map((name, i) => `  ${name}: { preset: mlp, hidden: [${64 + 8 * i}, 64] }`).join('\n')}
matrix:
  model: [${models.join(', ')}]
  batchSize: [${Array.from({ length: 50 }, (_, i) => 5040 * (i + 1)).join(', ')}]
  policy: [float32, mixed_float16]
  accumulationSteps: [${divisors.join(', ')}]
`;
}
