import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInWorker, summarizeStderr } from '../../src/runner/spawn.js';
import { runConfig } from '../helpers/builders.js';
import { fakeWorker } from './fake-worker.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mpx-spawn-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** True while `pid` runs; a zombie (killed, not yet reaped: containers often have no reaping init) counts as dead. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return process.platform !== 'linux';
  }
}

describe('runInWorker', () => {
  it('returns ok with the measurements, the backend and progress; NaN survives the IPC', async () => {
    const log = join(dir, 'ok.jsonl');
    const progress: string[] = [];
    const run = runConfig('ok');
    const record = await runInWorker(run, {
      workerFile: fakeWorker('ok'),
      memoryLimitBytes: 123,
      env: { FAKE_LOG: log, FAKE_DURATION_MS: '100' },
      onProgress: (r, step, total) => progress.push(`${r.runId} ${step}/${total}`),
    });
    expect(record).toMatchObject({
      runId: 'run-ok',
      cellId: 'cell-ok',
      cellIndex: 0,
      repeat: 0,
      status: 'ok',
      reason: null,
      backend: 'cpu',
    });
    expect(record.measurements?.stepMsMedian).toBe(412);
    expect(record.measurements?.finalLoss).toBeNaN();
    expect(record.wallMs).toBeGreaterThan(0);
    expect(progress).toEqual(['run-ok 1/5', 'run-ok 2/5', 'run-ok 3/5', 'run-ok 4/5', 'run-ok 5/5']);
    // The start message carried the options.
    const events = (await readFile(log, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(events[0]).toMatchObject({ event: 'start', runId: 'run-ok', memoryLimitBytes: 123 });
  });

  it('reports a worker that exits mid-run as crashed, with exit code, phase and the stderr tail', async () => {
    const record = await runInWorker(runConfig('crash'), { workerFile: fakeWorker('crash') });
    expect(record.status).toBe('crashed');
    expect(record.backend).toBe('wasm');
    expect(record.measurements).toBeNull();
    expect(record.reason).toBe(
      'worker exited unexpectedly (exit code 3) during training (step 1/5); last stderr: Error: boom in layer dense_2',
    );
  });

  it('reports a worker killed by SIGKILL as crashed with the signal', async () => {
    const record = await runInWorker(runConfig('kill'), { workerFile: fakeWorker('self-sigkill') });
    expect(record.status).toBe('crashed');
    expect(record.reason).toBe('worker exited unexpectedly (signal SIGKILL) during training (step 2/5); last stderr: about to die');
  });

  it('reports exit 0 without an answer as crashed', async () => {
    const record = await runInWorker(runConfig('silent'), { workerFile: fakeWorker('silent-exit') });
    expect(record).toMatchObject({ status: 'crashed', backend: 'cpu', reason: 'worker exited unexpectedly (exit code 0 without a result) during setup' });
  });

  it('passes on the worker’s failed message, and oom as its own status', async () => {
    const failed = await runInWorker(runConfig('failed'), { workerFile: fakeWorker('failed') });
    expect(failed).toMatchObject({ status: 'failed', reason: 'conv2d: input rank 2 is not 4', backend: 'tensorflow', measurements: null });

    const oom = await runInWorker(runConfig('oom'), { workerFile: fakeWorker('oom'), memoryLimitBytes: 1024 });
    expect(oom).toMatchObject({
      status: 'oom',
      reason: 'peak 2147483648 bytes is over the memory limit of 1024 bytes',
      backend: 'cpu',
      reachedBytes: 2147483648,
    });
  });

  it('records a worker that V8 aborts on a full JavaScript heap as oom, not crashed', async () => {
    const record = await runInWorker(runConfig('heap'), { workerFile: fakeWorker('heap-oom') });
    expect(record.status).toBe('oom');
    expect(record.reason).toMatch(/^worker ran out of JavaScript heap \(signal SIGABRT\) during setup; last stderr: .*JavaScript heap out of memory/);
  });

  it('samples GPU memory while the worker runs, and leaves it null without a sampler', async () => {
    let sampledPid: number | undefined;
    const record = await runInWorker(runConfig('gpu'), {
      workerFile: fakeWorker('ok'),
      sampleGpuMemory: (pid) => {
        sampledPid = pid;
        return { stop: () => Promise.resolve(512 * 1024 * 1024) };
      },
    });
    expect(sampledPid).toBeGreaterThan(0);
    expect(record.gpuPeakBytes).toBe(512 * 1024 * 1024);
    expect((await runInWorker(runConfig('cpu'), { workerFile: fakeWorker('ok') })).gpuPeakBytes).toBeNull();

    const setup = await runInWorker(runConfig('setup'), { workerFile: fakeWorker('setup-throws') });
    expect(setup).toMatchObject({ status: 'failed', reason: 'Cannot find module @tensorflow/tfjs-node', backend: null });
  });

  it('times out a hanging worker that ignores SIGTERM, and kills its grandchild too', async () => {
    const log = join(dir, 'hang.jsonl');
    const record = await runInWorker(runConfig('hang'), {
      workerFile: fakeWorker('hang'),
      timeoutMs: 1500,
      forceKillAfterMs: 300,
      env: { FAKE_LOG: log },
    });
    expect(record.status).toBe('timeout');
    expect(record.reason).toBe(
      'timed out after 1.5 s during training (step 1/5), killed with SIGKILL after ignoring SIGTERM; last stderr: ignoring SIGTERM',
    );
    expect(record.wallMs).toBeGreaterThanOrEqual(1500);
    const { grandchildPid } = JSON.parse((await readFile(log, 'utf8')).trim()) as { grandchildPid: number };
    expect(isAlive(grandchildPid)).toBe(false);
  });

  it('takes the default timeout from run.train.timeoutSeconds', async () => {
    const run = runConfig('hang-default', { train: { ...runConfig('x').train, timeoutSeconds: 1 } });
    const record = await runInWorker(run, { workerFile: fakeWorker('hang'), forceKillAfterMs: 100 });
    expect(record.status).toBe('timeout');
    expect(record.reason).toMatch(/^timed out after 1 s during training \(step 1\/5\)/);
  });

  it('kills the worker when the signal aborts, with the signal’s reason', async () => {
    const controller = new AbortController();
    const pending = runInWorker(runConfig('cancel'), {
      workerFile: fakeWorker('hang'),
      signal: controller.signal,
      forceKillAfterMs: 200,
      onProgress: () => controller.abort('interrupted by user'),
    });
    const record = await pending;
    expect(record).toMatchObject({ status: 'interrupted', reason: 'interrupted by user', backend: 'cpu' });
  });

  it('recognises a worker from another build', async () => {
    const record = await runInWorker(runConfig('proto'), { workerFile: fakeWorker('wrong-protocol'), forceKillAfterMs: 200 });
    expect(record).toMatchObject({ status: 'failed', reason: 'worker speaks mpx protocol 2, expected 1 (rebuild: npm run build)' });
  });

  it('reports a missing worker file as crashed with node’s message', async () => {
    const record = await runInWorker(runConfig('missing'), { workerFile: join(dir, 'nope.mjs') });
    expect(record.status).toBe('crashed');
    expect(record.reason).toBe(
      `worker exited unexpectedly (exit code 1) during startup; last stderr: Error: Cannot find module '${join(dir, 'nope.mjs')}' | ` +
        "code: 'MODULE_NOT_FOUND', | requireStack: []",
    );
  });
});

describe('summarizeStderr', () => {
  it('starts at the last line naming an error and drops stack frames', () => {
    const stderr = [
      'mpx worker: RangeError: Invalid array length',
      '    at trainRun (file:///dist/worker/train.js:10:5)',
      '    at async main (file:///dist/worker/main.js:3:1)',
      '',
      'Node.js v20.20.2',
    ].join('\n');
    expect(summarizeStderr(stderr)).toEqual(['mpx worker: RangeError: Invalid array length']);
  });

  it('keeps V8’s heap message and drops its native frames', () => {
    const stderr = [
      '<--- Last few GCs --->',
      '[123:0x5]     4001 ms: Mark-Compact 2040.1 (2082.9) -> 2039.8 (2083.1) MB',
      'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory',
      ' 1: 0xb8ced1 node::Abort() [node]',
      ' 2: 0xaa07ee  [node]',
    ].join('\n');
    expect(summarizeStderr(stderr)).toEqual(['FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory']);
  });

  it('falls back to the last lines, without ANSI colours, each cut to length', () => {
    const stderr = 'one\ntwo\n\u001b[31mthree\u001b[39m\nfour\n' + 'x'.repeat(300) + '\n';
    expect(summarizeStderr(stderr, 3, 10)).toEqual(['three', 'four', 'xxxxxxxxx…']);
  });
});
