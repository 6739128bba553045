/** `mpx env`: the formatter (pure, with and without GPUs) and the built command (run `npx tsc -p .` first). */
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { formatEnvironment } from '../../src/cli/commands/env.js';
import type { TorchProbe, TorchPythonSearch } from '../../src/runner/python.js';
import { type Environment, isOnPath, MPX_VERSION } from '../../src/cli/environment.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

const base: Environment = {
  mpxVersion: '0.1.0',
  nodeVersion: 'v20.20.2',
  os: { platform: 'linux', release: '6.8.0', arch: 'x64' },
  tfjsVersions: { '@tensorflow/tfjs-core': '4.22.0', '@tensorflow/tfjs-backend-wasm': '4.22.0' },
  backends: [
    { name: 'tensorflow', package: null, version: null, isInstalled: false },
    { name: 'wasm', package: '@tensorflow/tfjs-backend-wasm', version: '4.22.0', isInstalled: true },
    { name: 'cpu', package: '@tensorflow/tfjs-backend-cpu', version: '4.22.0', isInstalled: true },
  ],
  autoBackend: 'wasm',
  cpu: { model: 'AMD EPYC', cores: 2 },
  gpus: [],
  hasNvidiaSmi: false,
  git: { commit: 'a'.repeat(40), dirty: false },
};

/** What the torch worker's --probe prints on this project's CPU machines (recorded there). */
const PROBE: TorchProbe = {
  python: { executable: '/usr/bin/python3', version: '3.11.2' },
  torch: '1.13.0a0',
  cuda: false,
  cudaVersion: null,
  cudaDevices: [],
  blas: 'openblas (/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3)',
  onednn: true,
  policies: { cpu: { float32: true, mixed_bfloat16: true, mixed_float16: false }, cuda: null },
  reasons: {
    cpu: { mixed_float16: 'mixed_float16 needs matmul in float16 on cpu, which PyTorch 1.13.0a0 cannot run here ("addmm_impl_cpu_" not implemented for \'Half\'): use mixed_bfloat16 on CPU, or a CUDA GPU' },
    cuda: null,
  },
};
const NO_TORCH: TorchPythonSearch = {
  found: null,
  tried: [
    { python: 'python3', reason: "ModuleNotFoundError: No module named 'torch'" },
    { python: '/usr/bin/python3', reason: 'not found' },
  ],
};
const WITH_TORCH: TorchPythonSearch = { found: { python: '/usr/bin/python3', probe: PROBE }, tried: [{ python: 'python3', reason: "ModuleNotFoundError: No module named 'torch'" }] };

describe('formatEnvironment', () => {
  it('a CPU-only machine without PyTorch', () => {
    expect(formatEnvironment(base, NO_TORCH)).toBe(
      [
        'mpx       0.1.0',
        'node      v20.20.2 (linux 6.8.0 x64)',
        'tfjs      @tensorflow/tfjs-core 4.22.0, @tensorflow/tfjs-backend-wasm 4.22.0',
        'backends',
        '  tensorflow not installed (npm install @tensorflow/tfjs-node-gpu, or @tensorflow/tfjs-node for CPU only)',
        '  wasm       available (@tensorflow/tfjs-backend-wasm 4.22.0)',
        '  cpu        available (@tensorflow/tfjs-backend-cpu 4.22.0)',
        "  torch      not found (python3: ModuleNotFoundError: No module named 'torch'; /usr/bin/python3: not found); apt-get install -y --no-install-recommends python3-torch libopenblas0-pthread, or set MPX_PYTHON",
        '  auto       → wasm; never torch (chosen by name only)',
        'cpu       AMD EPYC, 2 cores',
        'gpus      none (nvidia-smi not found)',
        `git       ${'a'.repeat(40)}`,
        '',
      ].join('\n'),
    );
  });

  it('Debian\'s PyTorch: where it is, its BLAS, and the policies the CPU runs (with the reason for the one it cannot)', () => {
    const text = formatEnvironment(base, WITH_TORCH);
    expect(text).toContain(
      '  torch      available (PyTorch 1.13.0a0 at /usr/bin/python3, Python 3.11.2; no CUDA; BLAS openblas (/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3))\n' +
        '             on cpu: float32, mixed_bfloat16; mixed_float16 not: mixed_float16 needs matmul in float16 on cpu',
    );
  });

  it('a GPU machine with tfjs-node-gpu, a dirty tree', () => {
    const text = formatEnvironment({
      ...base,
      backends: [{ name: 'tensorflow', package: '@tensorflow/tfjs-node-gpu', version: '4.22.0', isInstalled: true }, ...base.backends.slice(1)],
      autoBackend: 'tensorflow',
      gpus: [{ index: 0, name: 'NVIDIA H200', memoryTotalBytes: 150_754_820_096, driverVersion: '570.86.15' }],
      hasNvidiaSmi: true,
      git: { commit: 'b'.repeat(40), dirty: true },
    }, NO_TORCH);
    expect(text).toContain('  tensorflow available (@tensorflow/tfjs-node-gpu 4.22.0)');
    expect(text).toContain('  auto       → tensorflow (wasm if it fails to load); never torch (chosen by name only)');
    expect(text).toContain('gpus\n  0: NVIDIA H200, 140.4 GiB, driver 570.86.15');
    expect(text).toContain(`git       ${'b'.repeat(40)} (dirty: tracked files modified)`);
  });

  it('nvidia-smi present without GPUs, and no git checkout', () => {
    const text = formatEnvironment({ ...base, hasNvidiaSmi: true, git: null }, NO_TORCH);
    expect(text).toContain('gpus      none (nvidia-smi lists no GPU)');
    expect(text).toContain('git       not a git checkout');
  });
});

describe('isOnPath', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mpx-path-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it('finds an executable in one of PATH\'s directories, not a plain file', () => {
    writeFileSync(join(dir, 'tool'), '#!/bin/sh\n');
    chmodSync(join(dir, 'tool'), 0o755);
    writeFileSync(join(dir, 'data'), '');
    chmodSync(join(dir, 'data'), 0o644);
    expect(isOnPath('tool', ['/nonexistent', dir].join(delimiter))).toBe(true);
    expect(isOnPath('data', dir)).toBe(process.platform === 'win32');
    expect(isOnPath('tool', '')).toBe(false);
  });
});

describe('mpx env (built)', () => {
  const run = async (...args: string[]) => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p .)`);
    const r = await execa(process.execPath, [CLI, 'env', ...args], { reject: false, timeout: 30_000 });
    return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  };

  it('prints versions, backends (wasm and cpu always), CPU and GPUs', async () => {
    const r = await run();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`mpx       ${MPX_VERSION}`);
    expect(r.stdout).toContain(`node      ${process.version}`);
    expect(r.stdout).toMatch(/^ {2}wasm {7}available \(@tensorflow\/tfjs-backend-wasm \d+\.\d+\.\d+\)$/m);
    expect(r.stdout).toMatch(/^ {2}cpu {8}available/m);
    expect(r.stdout).toMatch(/^ {2}tensorflow (available|not installed)/m);
    expect(r.stdout).toMatch(/^cpu {7}.+, \d+ cores$/m);
    expect(r.stdout).toMatch(/^gpus/m);
  });

  it('--json gives the same facts as an object', async () => {
    const r = await run('--json');
    expect(r.exitCode, r.stderr).toBe(0);
    const env = JSON.parse(r.stdout) as Environment;
    expect(env.mpxVersion).toBe(MPX_VERSION);
    expect(env.nodeVersion).toBe(process.version);
    expect(env.backends.map((b) => b.name)).toEqual(['tensorflow', 'wasm', 'cpu']);
    expect(env.backends.find((b) => b.name === 'wasm')?.isInstalled).toBe(true);
    expect(env.tfjsVersions['@tensorflow/tfjs-core']).toMatch(/^\d+\.\d+\.\d+$/);
    expect(env.cpu.cores).toBeGreaterThan(0);
    expect(Array.isArray(env.gpus)).toBe(true);
  });
});
