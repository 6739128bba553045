/**
 * The torch worker's transport (runner/engines.ts: JSON lines over stdin/stdout) and the same outcome mapping as
 * for tfjs workers, with a stand-in worker that needs no torch (test/fixtures/workers/fake_torch).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PythonWorker } from '../../src/runner/engines.js';
import { runInWorker } from '../../src/runner/spawn.js';
import { runConfig } from '../helpers/builders.js';
import { fakeWorker } from './fake-worker.js';

const FAKE_TORCH = fileURLToPath(new URL('../fixtures/workers/fake_torch', import.meta.url));
/** Any Python 3 runs the stand-in; the real worker's tests need PyTorch (test/worker/torch). */
const fake: PythonWorker = { python: 'python3', packageDir: FAKE_TORCH, mnistDir: '/digits' };
const torchRun = (id: string) => runConfig(id, { backend: 'torch' });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mpx-spawn-torch-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('runInWorker with backend torch', () => {
  it('runs the Python worker: ready, progress, result over JSON lines; NaN travels as a string and comes back a number', async () => {
    const log = join(dir, 'ok.log');
    const progress: string[] = [];
    const record = await runInWorker(torchRun('ok'), {
      workerFile: fakeWorker('ok'),
      python: fake,
      memoryLimitBytes: 77,
      env: { FAKE_MODE: 'ok', FAKE_LOG: log, MPX_SLOT: '1' },
      onProgress: (_run, step, total) => progress.push(`${step}/${total}`),
    });
    expect(record).toMatchObject({ status: 'ok', backend: 'torch', reason: null });
    expect(record.measurements).toMatchObject({ backend: 'torch', precision: 'native', gradsBytes: null, peakModeledBytes: null });
    expect(record.measurements?.finalLoss).toBeNaN();
    expect(record.measurements?.engine).toMatchObject({ device: 'cpu', torchVersion: '0.0-fake' });
    expect(progress).toEqual(['1/5', '2/5', '3/5', '4/5', '5/5']);
    // The start message carried the budget and the mnist digits; the environment carried the slot; no bytecode files.
    const [started] = (await readFile(log, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(started).toMatchObject({ options: { memoryLimitBytes: 77, mnistDir: '/digits' }, env: { MPX_SLOT: '1', PYTHONDONTWRITEBYTECODE: '1' } });
  });

  it('skips lines a library printed to stdout before the worker took it over', async () => {
    const record = await runInWorker(torchRun('noisy'), { workerFile: fakeWorker('ok'), python: fake, env: { FAKE_MODE: 'noisy' } });
    expect(record.status).toBe('ok');
  });

  it.each([
    ['unsupported', 'unsupported', /mixed_float16 needs matmul in float16 on cpu/, null],
    ['oom', 'oom', /CUDA out of memory/, 123456789],
    ['failed', 'failed', /RuntimeError: something broke \| in layer 2/, null],
  ] as const)('passes on the worker’s %s answer as status %s', async (mode, status, reason, reached) => {
    const record = await runInWorker(torchRun(mode), { workerFile: fakeWorker('ok'), python: fake, env: { FAKE_MODE: mode } });
    expect(record).toMatchObject({ status, backend: 'torch', reachedBytes: reached, measurements: null });
    expect(record.reason).toMatch(reason);
  });

  it('a Python that dies of MemoryError before answering is oom; a native crash is crashed with the stderr tail', async () => {
    const memory = await runInWorker(torchRun('mem'), { workerFile: fakeWorker('ok'), python: fake, env: { FAKE_MODE: 'memory-error' } });
    expect(memory.status).toBe('oom');
    expect(memory.reason).toMatch(/worker ran out of memory \(exit code 1\) during startup; last stderr: MemoryError/);
    const crash = await runInWorker(torchRun('crash'), { workerFile: fakeWorker('ok'), python: fake, env: { FAKE_MODE: 'crash' } });
    expect(crash.status).toBe('crashed');
    expect(crash.reason).toMatch(/exit code 139\) during startup; last stderr: Fatal Python error: Segmentation fault/);
  });

  it('times out a hanging worker', async () => {
    const record = await runInWorker(torchRun('hang'), { workerFile: fakeWorker('ok'), python: fake, env: { FAKE_MODE: 'hang' }, timeoutMs: 1500 });
    expect(record.status).toBe('timeout');
    expect(record.reason).toMatch(/timed out after 1\.5 s during setup/);
  });

  it('an interpreter that does not exist is a crash that says so', async () => {
    const record = await runInWorker(torchRun('missing'), { workerFile: fakeWorker('ok'), python: { ...fake, python: '/nonexistent/python3' } });
    expect(record.status).toBe('crashed');
    expect(record.reason).toMatch(/worker could not start: .*ENOENT/);
  });

  it('without a Python for torch, the run fails with a reason instead of starting a tfjs worker', async () => {
    const record = await runInWorker(torchRun('none'), { workerFile: fakeWorker('ok') });
    expect(record).toMatchObject({ status: 'failed', backend: null });
    expect(record.reason).toMatch(/needs a Python with PyTorch/);
  });
});
