/** Builds real RunConfigs for worker tests through the real loader and planner (so presets expand as in use). */
import { planRuns } from '../../src/matrix/plan.js';
import type { RunConfig } from '../../src/matrix/types.js';
import { loadSpecText } from '../../src/spec/load.js';

export function makeRuns(yaml: string): RunConfig[] {
  return planRuns(loadSpecText(yaml, 'test.yaml').spec).runs;
}

export function makeRun(yaml: string): RunConfig {
  return makeRuns(yaml)[0]!;
}

/** A small spec: tiny presets so the cpu backend trains them in seconds. */
export function tinySpec(overrides: { model?: string; policy?: string; batchSize?: number; accumulationSteps?: number; steps?: number; optimizer?: string; data?: string } = {}): string {
  return `
name: t
seed: 7
data: ${overrides.data ?? '{ kind: synthetic, samples: 256, evalSamples: 128 }'}
train: { steps: ${overrides.steps ?? 12}, warmupSteps: 2, optimizer: { name: ${overrides.optimizer ?? 'adam'}, learningRate: 0.01 } }
models:
  mlp: { preset: mlp, input: [64], hidden: [32, 32], classes: 4 }
  cnn: { preset: cnn, input: [12, 12, 1], filters: [4, 8], kernelSize: 3, dense: [16], classes: 4 }
matrix:
  model: [${overrides.model ?? 'mlp'}]
  batchSize: [${overrides.batchSize ?? 16}]
  policy: [${overrides.policy ?? 'float32'}]
  accumulationSteps: [${overrides.accumulationSteps ?? 1}]
`;
}
