import { describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/runner/protocol.js';
import {
  createProgress,
  estimateRemainingMs,
  formatDuration,
  formatFinishedLine,
  formatLiveBlock,
  formatRedraw,
  formatRunLabel,
  formatStepMs,
  type ProgressSnapshot,
} from '../../src/runner/progress.js';
import { measurements, runConfig } from '../helpers/builders.js';

const mlp = runConfig('a'); // mlp bs=128 mixed_float16 acc=4
const cnn = runConfig('b', { model: { ...mlp.model, name: 'cnn' }, batchSize: 64, policy: 'float32', accumulationSteps: 1 });

function okRecord(runId: string, wallMs: number, stepMsMedian = 412): RunRecord {
  return {
    runId,
    cellId: 'c',
    cellIndex: 0,
    repeat: 0,
    status: 'ok',
    reason: null,
    backend: 'cpu',
    wallMs,
    measurements: measurements({ stepMsMedian }),
    reachedBytes: null,
    gpuPeakBytes: null,
    attempts: 1,
  };
}

function failedRecord(runId: string, status: RunRecord['status'], reason: string, wallMs: number): RunRecord {
  return { ...okRecord(runId, wallMs), status, reason, measurements: null };
}

const counts = (partial: Partial<ProgressSnapshot['counts']>): ProgressSnapshot['counts'] => ({
  ok: 0,
  failed: 0,
  timeout: 0,
  crashed: 0,
  oom: 0,
  unsupported: 0,
  interrupted: 0,
  ...partial,
});

describe('format functions', () => {
  it('labels a run by its axes', () => {
    expect(formatRunLabel(mlp)).toBe('mlp bs=128 mixed_float16 acc=4');
    expect(formatRunLabel(cnn)).toBe('cnn bs=64 float32 acc=1');
  });

  it('formats durations and step times', () => {
    expect([0, 850, 2_100, 59_940, 65_000, 3_599_000, 7_380_000].map(formatDuration)).toEqual([
      '0 ms',
      '850 ms',
      '2.1 s',
      '59.9 s',
      '1m 05s',
      '59m 59s',
      '2h 03m',
    ]);
    expect([412.4, 37.25, 3.14159].map(formatStepMs)).toEqual(['412 ms/step', '37.3 ms/step', '3.14 ms/step']);
  });

  it('writes one line per finished run', () => {
    expect(formatFinishedLine(okRecord('a', 2_100), mlp, 3, 36)).toBe(
      '[ 3/36] ok          mlp bs=128 mixed_float16 acc=4  412 ms/step  (2.1 s)',
    );
    expect(formatFinishedLine(failedRecord('b', 'crashed', 'worker exited unexpectedly (signal SIGKILL) during training', 400), cnn, 12, 36)).toBe(
      '[12/36] crashed     cnn bs=64 float32 acc=1  worker exited unexpectedly (signal SIGKILL) during training  (400 ms)',
    );
    expect(formatFinishedLine(failedRecord('c', 'oom', 'over budget', 1_000), cnn, 7, 7)).toBe(
      '[7/7] oom         cnn bs=64 float32 acc=1  over budget  (1.0 s)',
    );
  });

  it('adds the peak memory given to an ok line, after the step time', () => {
    expect(formatFinishedLine(okRecord('a', 2_100), mlp, 3, 36, '29.88 MB modeled')).toBe(
      '[ 3/36] ok          mlp bs=128 mixed_float16 acc=4  412 ms/step  29.88 MB modeled  (2.1 s)',
    );
    expect(formatFinishedLine(failedRecord('c', 'oom', 'over budget', 1_000), cnn, 7, 7, '1 GB measured')).toBe(
      '[7/7] oom         cnn bs=64 float32 acc=1  over budget  (1.0 s)',
    );
  });

  it('estimates the time left from the mean finished run, spread over the jobs', () => {
    expect(estimateRemainingMs({ total: 10, jobs: 2, counts: counts({}), finishedWallMs: 0 })).toBeNull();
    // 2 finished in 4 s each on average; 8 left over 2 workers: 16 s.
    expect(estimateRemainingMs({ total: 10, jobs: 2, counts: counts({ ok: 1, failed: 1 }), finishedWallMs: 8_000 })).toBe(16_000);
    // Fewer left than workers: one mean run.
    expect(estimateRemainingMs({ total: 3, jobs: 4, counts: counts({ ok: 2 }), finishedWallMs: 8_000 })).toBe(4_000);
    expect(estimateRemainingMs({ total: 2, jobs: 4, counts: counts({ ok: 2 }), finishedWallMs: 8_000 })).toBe(0);
  });

  it('draws the live block: totals, non-ok counts, ETA, one line per running run', () => {
    const snapshot: ProgressSnapshot = {
      total: 36,
      jobs: 2,
      counts: counts({ ok: 2, crashed: 1 }),
      finishedWallMs: 6_000,
      running: [
        { run: mlp, step: { step: 12, totalSteps: 30 }, startedAtMs: 1_000 },
        { run: cnn, step: null, startedAtMs: 5_000 },
      ],
      nowMs: 5_200,
    };
    expect(formatLiveBlock(snapshot)).toEqual([
      '3/36 done · 1 crashed · 2 running · ETA 33.0 s',
      '  mlp bs=128 mixed_float16 acc=4  step 12/30  (4.2 s)',
      '  cnn bs=64 float32 acc=1  starting  (200 ms)',
    ]);
    expect(formatLiveBlock(snapshot, 30)).toEqual(['3/36 done · 1 crashed · 2 ru…', '  mlp bs=128 mixed_float16 a…', '  cnn bs=64 float32 acc=1  s…']);
  });

  it('redraws a block by moving up over the old one and clearing below', () => {
    expect(formatRedraw(0, ['a', 'b'])).toBe('a\nb\n');
    expect(formatRedraw(2, ['c'])).toBe('\u001b[2A\u001b[0Jc\n');
    expect(formatRedraw(3, [])).toBe('\u001b[3A\u001b[0J');
  });
});

function fakeStream(columns?: number): { write(text: string): boolean; columns?: number; text: string } {
  const stream = {
    text: '',
    columns,
    write(text: string): boolean {
      stream.text += text;
      return true;
    },
  };
  return stream;
}

describe('createProgress', () => {
  it('without a TTY writes only one plain line per finished run', () => {
    const stream = fakeStream();
    let nowMs = 0;
    const progress = createProgress({ total: 2, isTTY: false, stream: stream as never, jobs: 2, now: () => nowMs });
    progress.start(mlp);
    progress.start(cnn);
    progress.progress(mlp, 1, 5);
    nowMs = 2_100;
    progress.finish(okRecord(mlp.runId, 2_100), mlp);
    progress.finish(failedRecord(cnn.runId, 'timeout', 'timed out after 30 s during training (step 3/30)', 30_000), cnn);
    progress.done();
    expect(stream.text).toBe(
      '[1/2] ok          mlp bs=128 mixed_float16 acc=4  412 ms/step  (2.1 s)\n' +
        '[2/2] timeout     cnn bs=64 float32 acc=1  timed out after 30 s during training (step 3/30)  (30.0 s)\n',
    );
  });

  it('asks describePeak for the peak of ok runs only', () => {
    const stream = fakeStream();
    const asked: string[] = [];
    const describePeak = (record: RunRecord) => {
      asked.push(record.runId);
      return '38.46 kB modeled';
    };
    const progress = createProgress({ total: 2, isTTY: false, stream: stream as never, describePeak });
    progress.finish(okRecord(mlp.runId, 2_100), mlp);
    progress.finish(failedRecord(cnn.runId, 'oom', 'over budget', 1_000), cnn);
    progress.done();
    expect(asked).toEqual([mlp.runId]);
    expect(stream.text).toBe(
      '[1/2] ok          mlp bs=128 mixed_float16 acc=4  412 ms/step  38.46 kB modeled  (2.1 s)\n' + '[2/2] oom         cnn bs=64 float32 acc=1  over budget  (1.0 s)\n',
    );
  });

  it('on a TTY prints finished lines above a live block redrawn in place, and removes the block at the end', () => {
    const stream = fakeStream(80);
    let nowMs = 0;
    const progress = createProgress({ total: 2, isTTY: true, stream: stream as never, jobs: 2, now: () => nowMs });
    const writes: string[] = [];
    const take = (): string => {
      const text = stream.text;
      stream.text = '';
      writes.push(text);
      return text;
    };
    progress.start(mlp);
    expect(take()).toBe('0/2 done · 1 running\n  mlp bs=128 mixed_float16 acc=4  starting  (0 ms)\n');
    nowMs = 500;
    progress.progress(mlp, 1, 5);
    expect(take()).toBe('\u001b[2A\u001b[0J0/2 done · 1 running\n  mlp bs=128 mixed_float16 acc=4  step 1/5  (500 ms)\n');
    nowMs = 550; // under the redraw interval: progress waits for the next draw
    progress.progress(mlp, 2, 5);
    expect(take()).toBe('');
    progress.start(cnn);
    expect(take()).toBe(
      '\u001b[2A\u001b[0J0/2 done · 2 running\n' +
        '  mlp bs=128 mixed_float16 acc=4  step 2/5  (550 ms)\n' +
        '  cnn bs=64 float32 acc=1  starting  (0 ms)\n',
    );
    nowMs = 2_100;
    progress.finish(okRecord(mlp.runId, 2_100), mlp);
    expect(take()).toBe(
      '\u001b[3A\u001b[0J[1/2] ok          mlp bs=128 mixed_float16 acc=4  412 ms/step  (2.1 s)\n' +
        '1/2 done · 1 running · ETA 2.1 s\n' +
        '  cnn bs=64 float32 acc=1  starting  (1.6 s)\n',
    );
    progress.done();
    expect(take()).toBe('\u001b[2A\u001b[0J');
  });
});
