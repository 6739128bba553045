/**
 * The PyTorch worker's contract with mpx: worker mode (JSON lines on the original stdout, always an answer),
 * standalone mode (one JSON object, exit codes), probe mode.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MEASUREMENT_KEYS } from '../../../src/runner/protocol.js';
import type { TorchProbe } from '../../../src/runner/python.js';
import type { Policy } from '../../../src/spec/types.js';
import { makeRun, tinySpec } from '../make-run.js';
import { MNIST_DIR, pythonSnippet, runWorker, torchPython, type StandaloneOutcome } from './python.js';

const MNIST_SPEC = `
name: digits
seed: 5
data: { kind: mnist, samples: 128, evalSamples: 32 }
train: { steps: 3, warmupSteps: 1, optimizer: { name: sgd, learningRate: 0.1 } }
models:
  mlp: { preset: mlp, input: [784], hidden: [16], classes: 10 }
matrix: { batchSize: [16] }
`;

const start = (run: unknown, options: Record<string, unknown> = {}) =>
  `${JSON.stringify({ mpx: 1, type: 'start', run, options: { memoryLimitBytes: null, mnistDir: null, ...options } })}\n`;

/** Every stdout line must be a protocol message: JSON with "mpx": 1. */
function messages(stdout: string): Array<Record<string, unknown>> {
  const lines = stdout.split('\n').filter((line) => line !== '');
  return lines.map((line) => {
    const message = JSON.parse(line) as Record<string, unknown>;
    expect(message.mpx).toBe(1);
    return message;
  });
}

beforeAll(() => {
  torchPython();
});

describe('torch worker mode', () => {
  it('answers ready → progress per update → result on stdout, while oneDNN writes to its stdout (stderr here)', async () => {
    const run = makeRun(tinySpec({ model: 'cnn', policy: 'mixed_bfloat16', steps: 4 }));
    // DNNL_VERBOSE makes oneDNN printf a line per primitive to the process's stdout, from C.
    const done = await runWorker([], start(run), { DNNL_VERBOSE: '1' });
    expect(done.code).toBe(0);
    expect(done.stderr).toMatch(/onednn_verbose|dnnl_verbose/);
    const received = messages(done.stdout);
    expect(received.map((m) => m.type)).toEqual(['ready', 'progress', 'progress', 'progress', 'progress', 'result']);
    expect(received[0]).toMatchObject({ backend: 'torch', pid: expect.any(Number) });
    expect(received.slice(1, 5).map((m) => [m.step, m.totalSteps])).toEqual([[1, 4], [2, 4], [3, 4], [4, 4]]);
    const measurements = received[5]!.measurements as Record<string, unknown>;
    expect(Object.keys(measurements).sort()).toEqual([...MEASUREMENT_KEYS].sort());
    expect(measurements).toMatchObject({
      backend: 'torch',
      precision: 'native',
      steps: 4,
      lossScaleFinal: null,
      skippedSteps: 0,
      peakModeledBytes: null,
      activationsPeakModeledBytes: null,
      wasmHeapBytes: null,
      reservedPeakBytes: null,
      engine: { device: 'cpu', torchVersion: expect.any(String), blas: expect.any(String), memoryMethod: expect.stringMatching(/profiler/) },
    });
    expect(measurements.rssPeakBytes).toBeGreaterThan(measurements.peakBytes as number);
  });

  it('answers failed (backend null) to a bad start message, and to none at all', async () => {
    for (const input of ['{"mpx":1,"type":"stop"}\n', 'not json\n', '']) {
      const done = await runWorker([], input);
      expect(done.code).toBe(0);
      expect(messages(done.stdout)).toEqual([
        { mpx: 1, type: 'failed', kind: 'error', message: expect.stringMatching(/expected a start message/), backend: null, reachedBytes: null },
      ]);
    }
  });

  it('answers failed (backend null) when torch itself cannot be imported', async () => {
    const fake = mkdtempSync(join(tmpdir(), 'mpx-broken-torch-'));
    try {
      mkdirSync(join(fake, 'torch'));
      writeFileSync(join(fake, 'torch', '__init__.py'), 'raise ImportError("simulated broken torch")\n');
      const done = await runWorker([], start(makeRun(tinySpec({ steps: 3 }))), { PYTHONPATH: fake });
      expect(done.code).toBe(0);
      expect(messages(done.stdout)).toEqual([
        { mpx: 1, type: 'failed', kind: 'error', message: 'ImportError: simulated broken torch', backend: null, reachedBytes: null },
      ]);
    } finally {
      rmSync(fake, { recursive: true, force: true });
    }
  });

  it('answers unsupported for mixed_float16 on CPU when this PyTorch has no float16 matmul there, naming op, dtype, device, version and what to do', async () => {
    const probe = await pythonSnippet<{ supported: boolean }>(`
import torch
from mpx_torch.protocol import encode
try:
    torch.ones(2, 2, dtype=torch.float16) @ torch.ones(2, 2, dtype=torch.float16)
    print(encode({'supported': True}))
except RuntimeError:
    print(encode({'supported': False}))
`);
    const done = await runWorker([], start(makeRun(tinySpec({ policy: 'mixed_float16', steps: 3 }))));
    const [ready, answer] = messages(done.stdout);
    expect(ready!.type).toBe('ready');
    if (probe.supported) {
      expect(answer!.type).toBe('result'); // a PyTorch with CPU float16 matmul runs it
      return;
    }
    expect(answer).toMatchObject({ type: 'failed', kind: 'unsupported', backend: 'torch', reachedBytes: null });
    expect(answer!.message).toMatch(/mixed_float16 needs matmul in float16 on cpu, which PyTorch \S+ cannot run/);
    expect(answer!.message).toMatch(/use mixed_bfloat16 on CPU, or a CUDA GPU/);
  });

  it('answers oom when the measured peak passes the memory budget, with the bytes reached', async () => {
    const run = makeRun(tinySpec({ steps: 3 }));
    const done = await runWorker([], start(run, { memoryLimitBytes: 50_000 }));
    const answer = messages(done.stdout).at(-1)!;
    expect(answer).toMatchObject({ type: 'failed', kind: 'oom', backend: 'torch' });
    expect(answer.reachedBytes).toBeGreaterThan(50_000);
    expect(answer.message).toBe(`the measured peak reached ${String(answer.reachedBytes)} bytes, above the memory budget of 50000 bytes`);
  });
});

describe('torch standalone mode', () => {
  it('takes a bare RunConfig or a plan object carrying it under "run"; prints one JSON object, progress on stderr; MPX_TORCH_THREADS', async () => {
    const run = makeRun(tinySpec({ steps: 3 }));
    for (const [document, threads] of [[run, '1'], [{ spec: 't', cell: 0, run }, '2']] as const) {
      const done = await runWorker(['--run', '-'], JSON.stringify(document), { MPX_TORCH_THREADS: threads });
      expect(done.code).toBe(0);
      const outcome = JSON.parse(done.stdout) as StandaloneOutcome;
      expect(done.stdout.trim().split('\n')).toHaveLength(1);
      expect(outcome).toMatchObject({ status: 'ok', reason: null, reachedBytes: null });
      expect(outcome.measurements!.steps).toBe(3);
      expect(outcome.measurements!.engine.threads).toBe(Number(threads));
      expect(done.stderr).toMatch(/step 3\/3/);
    }
  });

  it('exits 0 for unsupported and oom, 1 for failed', async () => {
    const f16 = await runWorker(['--run', '-'], JSON.stringify(makeRun(tinySpec({ policy: 'mixed_float16', steps: 3 }))));
    const f16Outcome = JSON.parse(f16.stdout) as StandaloneOutcome;
    expect(['unsupported', 'ok']).toContain(f16Outcome.status);
    expect(f16.code).toBe(0);

    const oom = await runWorker(['--run', '-', '--memory-limit', '1000'], JSON.stringify(makeRun(tinySpec({ steps: 3 }))));
    expect(oom.code).toBe(0);
    expect(JSON.parse(oom.stdout)).toMatchObject({ status: 'oom', measurements: null, reachedBytes: expect.any(Number) });

    for (const document of [{ model: {} }, [makeRun(tinySpec())]]) {
      const broken = await runWorker(['--run', '-'], JSON.stringify(document));
      expect(broken.code).toBe(1);
      expect(JSON.parse(broken.stdout)).toMatchObject({ status: 'failed', reason: expect.any(String), measurements: null });
    }
  });

  it('reads the mnist digits from --mnist-dir, and says so when none was given', async () => {
    const run = makeRun(MNIST_SPEC);
    const without = await runWorker(['--run', '-'], JSON.stringify(run));
    expect(JSON.parse(without.stdout)).toMatchObject({ status: 'failed', reason: expect.stringMatching(/--mnist-dir/) });
    const withDigits = await runWorker(['--run', '-', '--mnist-dir', MNIST_DIR], JSON.stringify(run));
    expect(JSON.parse(withDigits.stdout)).toMatchObject({ status: 'ok' });
  });
});

describe('torch probe mode and JSON encoding', () => {
  it('--probe reports interpreter, PyTorch, devices, BLAS and the policies the CPU can run', async () => {
    const done = await runWorker(['--probe'], '');
    expect(done.code).toBe(0);
    const probe = JSON.parse(done.stdout) as TorchProbe;
    expect(probe).toMatchObject({
      python: { executable: expect.any(String), version: expect.stringMatching(/^3\./) },
      torch: expect.any(String),
      cuda: expect.any(Boolean),
      blas: expect.any(String),
      onednn: expect.any(Boolean),
      policies: { cpu: { float32: true, mixed_bfloat16: expect.any(Boolean), mixed_float16: expect.any(Boolean) } },
    });
    for (const [policy, ok] of Object.entries(probe.policies.cpu) as Array<[Policy, boolean]>) {
      if (!ok) expect(probe.reasons.cpu[policy]).toMatch(new RegExp(`${policy} needs .* on cpu`));
    }
  });

  it('writes non-finite floats as the strings NaN, Infinity, -Infinity', async () => {
    const line = await pythonSnippet<unknown>(`
from mpx_torch.protocol import encode
print(encode({'a': float('nan'), 'b': [float('inf'), -float('inf'), 1.5], 'c': None}))
`);
    expect(line).toEqual({ a: 'NaN', b: ['Infinity', '-Infinity', 1.5], c: null });
  });
});
