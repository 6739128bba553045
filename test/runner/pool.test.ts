import { mkdtempSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAll } from '../../src/runner/pool.js';
import type { RunRecord } from '../../src/runner/protocol.js';
import { runConfig } from '../helpers/builders.js';
import { fakeWorker } from './fake-worker.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mpx-pool-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface LoggedEvent {
  event: string;
  runId: string;
  slot: string | null;
  slotEnv: string | null;
  startMs: number;
  endMs: number;
}

async function readLog(file: string): Promise<LoggedEvent[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trim() === '' ? [] : text.trim().split('\n').map((line) => JSON.parse(line) as LoggedEvent);
}

/** Most intervals that contain one instant. */
function maxOverlap(intervals: { startMs: number; endMs: number }[]): number {
  const points = intervals.flatMap(({ startMs, endMs }) => [[startMs, 1] as const, [endMs, -1] as const]);
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]); // an end before a start at the same instant
  let current = 0;
  let max = 0;
  for (const [, delta] of points) max = Math.max(max, (current += delta));
  return max;
}

describe('runAll', () => {
  it('runs jobs workers at once, each in its own slot, and returns records in input order', async () => {
    const log = join(dir, 'parallel.jsonl');
    const runs = ['a', 'b', 'c', 'd'].map((id, index) => runConfig(id, { cellIndex: index }));
    let running = 0;
    let maxRunning = 0;
    const finishedOrder: string[] = [];
    const records = await runAll(runs, {
      jobs: 2,
      workerFile: fakeWorker('ok'),
      env: { FAKE_LOG: log, FAKE_DURATION_MS: '500' },
      slotEnv: (slot) => ({ FAKE_SLOT_ENV: `gpu${slot}` }),
      onStart: () => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
      },
      onRecord: (record) => {
        running -= 1;
        finishedOrder.push(record.runId);
      },
    });
    expect(records.map((r) => r.runId)).toEqual(['run-a', 'run-b', 'run-c', 'run-d']);
    expect(records.every((r) => r.status === 'ok')).toBe(true);
    expect(finishedOrder).toHaveLength(4);
    expect(maxRunning).toBe(2);

    // The workers' own clocks: two trainings overlapped, never three.
    const ends = (await readLog(log)).filter((e) => e.event === 'end');
    expect(ends).toHaveLength(4);
    expect(maxOverlap(ends)).toBe(2);
    expect(new Set(ends.map((e) => e.slot))).toEqual(new Set(['0', '1']));
    for (const e of ends) expect(e.slotEnv).toBe(`gpu${e.slot}`);
    // Each slot ran one worker at a time.
    for (const slot of ['0', '1']) expect(maxOverlap(ends.filter((e) => e.slot === slot))).toBe(1);
  });

  it('keeps going past crashing and hanging workers', async () => {
    const runs = [
      { ...runConfig('crash'), specName: 'crash' },
      { ...runConfig('hang', { train: { ...runConfig('x').train, timeoutSeconds: 1 } }), specName: 'hang' },
      { ...runConfig('ok1'), specName: 'ok' },
      { ...runConfig('ok2'), specName: 'ok' },
    ];
    // One worker file that dispatches on specName keeps the pool's single workerFile option.
    const records = await runAll(runs, {
      jobs: 2,
      workerFile: fakeWorker('dispatch'),
      forceKillAfterMs: 200,
      env: { FAKE_DURATION_MS: '100' },
    });
    expect(records.map((r) => [r.runId, r.status])).toEqual([
      ['run-crash', 'crashed'],
      ['run-hang', 'timeout'],
      ['run-ok1', 'ok'],
      ['run-ok2', 'ok'],
    ]);
  });

  it('retries crashed runs (train.retries or the retries option), never failed or oom ones', async () => {
    const markers = mkdtempSync(join(tmpdir(), 'mpx-retry-'));
    const withRetries = (id: string, specName: string, retries: number) => ({
      ...runConfig(id, { train: { ...runConfig('x').train, retries } }),
      specName,
    });
    const runs = [
      withRetries('flaky', 'crash-once', 1),
      withRetries('no-retry', 'crash-once', 0),
      withRetries('failed', 'failed', 3),
      withRetries('oom', 'oom', 3),
      withRetries('always', 'crash', 2),
    ];
    const records = await runAll(runs, { jobs: 2, workerFile: fakeWorker('dispatch'), env: { FAKE_MARKER_DIR: markers } });
    expect(records.map((r) => [r.runId, r.status, r.attempts])).toEqual([
      ['run-flaky', 'ok', 2],
      ['run-no-retry', 'crashed', 1],
      ['run-failed', 'failed', 1],
      ['run-oom', 'oom', 1],
      ['run-always', 'crashed', 3],
    ]);
    // The option overrides the spec: the second crash-once run (its marker now exists) is not needed here.
    const overridden = await runAll([withRetries('flaky2', 'crash-once', 0)], {
      jobs: 1,
      retries: 1,
      workerFile: fakeWorker('dispatch'),
      env: { FAKE_MARKER_DIR: markers },
    });
    expect(overridden.map((r) => [r.status, r.attempts])).toEqual([['ok', 2]]);
  });

  it('on abort, starts nothing new and kills running workers as interrupted by user', async () => {
    const controller = new AbortController();
    const runs = ['a', 'b', 'c', 'd', 'e'].map((id) => ({ ...runConfig(id), specName: 'hang' }));
    const started: string[] = [];
    const reported: RunRecord[] = [];
    const records = await runAll(runs, {
      jobs: 2,
      workerFile: fakeWorker('dispatch'),
      forceKillAfterMs: 200,
      signal: controller.signal,
      onStart: (run) => started.push(run.runId),
      onProgress: () => {
        if (started.length === 2) controller.abort();
      },
      onRecord: (record) => {
        reported.push(record);
      },
    });
    expect(started).toEqual(['run-a', 'run-b']);
    expect(records.map((r) => [r.runId, r.status, r.reason])).toEqual([
      ['run-a', 'interrupted', 'interrupted by user'],
      ['run-b', 'interrupted', 'interrupted by user'],
    ]);
    expect(reported).toHaveLength(2);
  });

  it('returns nothing when the signal is already aborted', async () => {
    const records = await runAll([runConfig('a')], { jobs: 1, workerFile: fakeWorker('ok'), signal: AbortSignal.abort() });
    expect(records).toEqual([]);
  });

  it('with failFast, stops scheduling after the first failure but not after oom', async () => {
    const runs = [
      { ...runConfig('oom'), specName: 'oom' },
      { ...runConfig('ok'), specName: 'ok' },
      { ...runConfig('failed'), specName: 'failed' },
      { ...runConfig('never1'), specName: 'ok' },
      { ...runConfig('never2'), specName: 'ok' },
    ];
    const records = await runAll(runs, {
      jobs: 1,
      failFast: true,
      workerFile: fakeWorker('dispatch'),
      env: { FAKE_DURATION_MS: '10' },
    });
    expect(records.map((r) => [r.runId, r.status])).toEqual([
      ['run-oom', 'oom'],
      ['run-ok', 'ok'],
      ['run-failed', 'failed'],
    ]);
  });

  it('never overlaps onRecord calls, and waits for the last one', async () => {
    const runs = ['a', 'b', 'c'].map((id) => runConfig(id));
    let writing = 0;
    let maxWriting = 0;
    let written = 0;
    await runAll(runs, {
      jobs: 3,
      workerFile: fakeWorker('ok'),
      env: { FAKE_DURATION_MS: '50' },
      onRecord: async () => {
        maxWriting = Math.max(maxWriting, ++writing);
        await new Promise((resolve) => setTimeout(resolve, 150));
        writing -= 1;
        written += 1;
      },
    });
    expect(maxWriting).toBe(1);
    expect(written).toBe(3);
  });

  it('rejects with onRecord’s error, starting nothing new and killing running workers', async () => {
    const runs = [
      { ...runConfig('fast'), specName: 'ok' },
      { ...runConfig('slow'), specName: 'hang' },
      { ...runConfig('never'), specName: 'ok' },
    ];
    let calls = 0;
    const pending = runAll(runs, {
      jobs: 2,
      workerFile: fakeWorker('dispatch'),
      forceKillAfterMs: 200,
      env: { FAKE_DURATION_MS: '10' },
      onRecord: () => {
        calls += 1;
        return Promise.reject(new Error('EACCES: results/test.runs.jsonl'));
      },
    });
    // Resolves long before the hanging worker's 30 s timeout: it was killed.
    await expect(pending).rejects.toThrow('EACCES: results/test.runs.jsonl');
    expect(calls).toBe(1);
  });

  it('rejects bad jobs and a missing worker file before starting anything', async () => {
    await expect(runAll([runConfig('a')], { jobs: 0, workerFile: fakeWorker('ok') })).rejects.toMatchObject({
      code: 'USAGE',
      message: 'Expected jobs to be a whole number from 1 and up, got 0',
    });
    await expect(runAll([runConfig('a')], { jobs: 1, workerFile: join(dir, 'missing.js') })).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
      hint: 'build it first: npm run build',
    });
  });
});
