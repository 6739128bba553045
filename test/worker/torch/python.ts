/**
 * Runs the PyTorch worker (src/worker/torch/mpx_torch) and small Python snippets against its modules. The Python is
 * the first of MPX_PYTHON, `python3` on PATH, /usr/bin/python3 that can `import torch`; with none, every torch test
 * fails (CI installs it: no silent skips).
 */
import { spawn, spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { findMnistDir, pythonCandidates, TORCH_INSTALL_HINT, TORCH_PACKAGE_DIR } from '../../../src/runner/python.js';

export const INSTALL_HINT = TORCH_INSTALL_HINT;
export const PACKAGE_DIR = TORCH_PACKAGE_DIR;
const PACKAGE_PARENT = dirname(TORCH_PACKAGE_DIR);
export const MNIST_DIR = findMnistDir()!;

let python: string | null = null;

/** The interpreter that runs the torch tests; throws (failing the test) when no candidate can import torch. */
export function torchPython(): string {
  if (python) return python;
  const candidates = pythonCandidates();
  for (const candidate of candidates) {
    if (spawnSync(candidate, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) return (python = candidate);
  }
  throw new Error(
    `no Python that can import torch (tried ${candidates.join(', ')}): install PyTorch with \`${INSTALL_HINT}\` ` +
      'or point MPX_PYTHON at an interpreter that has it',
  );
}

export interface Completed {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], input: string, env: Record<string, string> = {}): Promise<Completed> {
  return new Promise((resolve, reject) => {
    const child = spawn(torchPython(), args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** `python3 src/worker/torch/mpx_torch ARGS` with `input` on stdin. */
export function runWorker(args: string[], input: string, env: Record<string, string> = {}): Promise<Completed> {
  return run([PACKAGE_DIR, ...args], input, env);
}

/**
 * Runs `code` with the mpx_torch package importable and `input` as JSON on stdin (read it with
 * `json.load(sys.stdin)`); the snippet prints one JSON value (mpx_torch.protocol.encode) as its last stdout line.
 */
export async function pythonSnippet<T>(code: string, input: unknown = null): Promise<T> {
  const done = await run(['-c', code], JSON.stringify(input), { PYTHONPATH: PACKAGE_PARENT });
  if (done.code !== 0) throw new Error(`python snippet failed (${done.code}):\n${done.stderr}`);
  return JSON.parse(done.stdout.trim().split('\n').at(-1)!) as T;
}

/** The worker's measurement object (the RunMeasurements keys plus reservedPeakBytes and engine). */
export interface TorchMeasurements {
  backend: string;
  precision: string;
  paramCount: number;
  steps: number;
  stepMsMedian: number;
  samplesPerSecond: number;
  initialLoss: number;
  finalLoss: number;
  evalAccuracy: number;
  lossScaleFinal: number | null;
  skippedSteps: number;
  peakBytes: number;
  restingBytes: number;
  paramsBytes: number | null;
  gradsBytes: number | null;
  optimizerBytes: number | null;
  accumulatorBytes: number | null;
  activationsPeakBytes: number | null;
  peakModeledBytes: null;
  activationsPeakModeledBytes: null;
  peakTfModeledBytes: null;
  activationsPeakTfModeledBytes: null;
  peakTorchModeledBytes: null;
  rssPeakBytes: number;
  wasmHeapBytes: null;
  reservedPeakBytes: number | null;
  engine: {
    torchVersion: string;
    device: string;
    deviceName: string;
    memoryMethod: string;
    blas: string;
    threads: number;
    memoryCheck?: { method: string; peakBytes: number };
  };
}

export interface StandaloneOutcome {
  status: 'ok' | 'oom' | 'failed' | 'unsupported';
  reason: string | null;
  measurements: TorchMeasurements | null;
  reachedBytes: number | null;
}

/** Runs RunConfigs one after another in ONE Python process (saves the torch import per run). */
export function measureRuns(runs: unknown[]): Promise<TorchMeasurements[]> {
  return pythonSnippet<TorchMeasurements[]>(
    `
import json, sys
from mpx_torch.cli import execute, start_torch
from mpx_torch.protocol import encode
runs = json.load(sys.stdin)
device, engine = start_torch()
print(encode([execute(run, device, engine, None, None, None) for run in runs]))
`,
    runs,
  );
}
