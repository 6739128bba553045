/**
 * The torch engine as a peer of the embedded default: the bench's MLP and CNN steps (same presets, batch, data and
 * seed as the wasm rows) trained by the PyTorch worker on the same machine, float32 and real bfloat16, each in a fresh
 * worker process in its standalone mode. The worker's own median step time (warm-up excluded) is what is compared.
 */
import { execa } from 'execa';
import type { RunConfig } from '../matrix/types.js';
import { findTorchPython, TORCH_INSTALL_HINT, TORCH_PACKAGE_DIR, type TorchProbe } from '../runner/python.js';
import type { Policy } from '../spec/types.js';
import { presetRun, type PresetName } from './specs.js';

/** Updates per torch run: as many timed ones as the wasm rows take (40 MLP / 24 CNN) after 3 warm-up ones. */
const TIMED_STEPS: Record<PresetName, number> = { mlp: 40, cnn: 24 };
const WARMUP_STEPS = 3;
export const TORCH_POLICIES: readonly Policy[] = ['float32', 'mixed_bfloat16'];

export interface TorchStep {
  preset: PresetName;
  policy: Policy;
  batchSize: number;
  stepMs: number;
  peakBytes: number;
}

export interface TorchResults {
  python: string;
  probe: TorchProbe;
  steps: TorchStep[];
  /** Runs the worker could not do, with the reason (e.g. a policy the CPU lacks). */
  failed: string[];
}

/** The bench preset run with the torch backend and the step counts above. */
export function torchRun(preset: PresetName, policy: Policy): RunConfig {
  const run = presetRun(preset, policy);
  return { ...run, backend: 'torch', train: { ...run.train, steps: WARMUP_STEPS + TIMED_STEPS[preset], warmupSteps: WARMUP_STEPS } };
}

export async function measureTorch(log: (line: string) => void): Promise<TorchResults> {
  const search = await findTorchPython();
  if (search.found === null) throw new Error(`no Python can import torch (${search.tried.map((t) => `${t.python}: ${t.reason}`).join('; ')}); ${TORCH_INSTALL_HINT}`);
  const { python, probe } = search.found;
  const steps: TorchStep[] = [];
  const failed: string[] = [];
  for (const preset of ['mlp', 'cnn'] as const) {
    for (const policy of TORCH_POLICIES) {
      log(`torch ${preset} ${policy}`);
      const run = torchRun(preset, policy);
      const result = await execa(python, [TORCH_PACKAGE_DIR, '--run', '-'], { input: JSON.stringify(run), reject: false, timeout: 600_000 });
      const outcome = JSON.parse(String(result.stdout).trim().split('\n').at(-1) ?? '{}') as {
        status?: string;
        reason?: string | null;
        measurements?: { stepMsMedian: number; peakBytes: number };
      };
      if (outcome.status === 'ok' && outcome.measurements) {
        steps.push({ preset, policy, batchSize: run.batchSize, stepMs: outcome.measurements.stepMsMedian, peakBytes: outcome.measurements.peakBytes });
      } else {
        failed.push(`${preset} ${policy}: ${outcome.status ?? `exit ${result.exitCode}`} ${outcome.reason ?? String(result.stderr).split('\n').at(-2) ?? ''}`.trim());
      }
    }
  }
  return { python, probe, steps, failed };
}
