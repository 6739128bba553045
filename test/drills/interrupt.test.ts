/**
 * Interrupt drills on real workers: SIGINT / SIGTERM to `mpx run` while runs are in flight, a second SIGINT, and
 * SIGKILL of mpx itself. Finished runs must be kept (and never rewritten), the files on disk must be complete, no
 * worker may survive, and the next `mpx run` must do only the rest. Build first (npx tsc -p .).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  assertBuilt,
  drillSpec,
  killLeftovers,
  PRELOAD_OPTIONS,
  readCsv,
  readRecords,
  recordFiles,
  removeTempDirs,
  runMpx,
  sleep,
  STACK,
  startMpx,
  strayFiles,
  tempDir,
  waitFor,
  waitGone,
  type RunRecordLine,
} from './helpers.js';

beforeAll(assertBuilt);
afterEach(killLeftovers);
afterAll(removeTempDirs);

const FIVE = drillSpec('five.yaml');
const FOUR = drillSpec('four.yaml');
const LOCK = '.mpx.lock';

/** Every line of `before` is in `after`, byte for byte (a kept record is never rewritten). */
function expectKept(before: RunRecordLine[], after: RunRecordLine[]): void {
  const lines = new Set(after.map((r) => r.line));
  for (const record of before) expect(lines.has(record.line), `record ${record.runId} was rewritten or lost`).toBe(true);
}

/** The CSV, runs.jsonl and meta.json on disk are complete and agree: one ok row per ok record. */
function expectConsistent(results: string, spec: string): RunRecordLine[] {
  const records = readRecords(results, spec);
  const rows = readCsv(results, spec);
  expect(rows).toHaveLength(records.length);
  expect(rows.every((r) => r.status === 'ok' && r.runs_ok === '1/1')).toBe(true);
  expect(records.every((r) => r.status === 'ok')).toBe(true);
  const meta = JSON.parse(readFileSync(join(results, `${spec}.meta.json`), 'utf8')) as { runs: { ok: number } };
  expect(meta.runs.ok).toBe(records.length);
  expect(strayFiles(results)).toEqual([]);
  // merged into runs.jsonl even when interrupted: no record file is left
  expect(recordFiles(results, spec)).toEqual([]);
  expect(readFileSync(join(results, `${spec}.runs.jsonl`), 'utf8').split('\n').filter((l) => l !== '')).toHaveLength(records.length);
  return records;
}

describe('drill: SIGINT to mpx run, then run again', () => {
  it('stops the workers, keeps the finished runs, exits 130; the next run does only the rest', async () => {
    const cwd = tempDir('sigint');
    const results = join(cwd, 'results');
    const mpx = startMpx(['run', FIVE, '--results-dir', results, '--jobs', '1'], { cwd });
    await waitFor('the 2nd finished run', () => readRecords(results, 'drill-five').length >= 2);
    const signalledAt = Date.now();
    process.kill(mpx.pid, 'SIGINT');
    const first = await mpx.done;

    expect(first.exitCode, first.stderr).toBe(130);
    expect(first.exitedAt - signalledAt).toBeLessThan(5_000);
    expect(first.stderr).toMatch(/mpx: SIGINT: stopping workers; finished runs are kept/);
    expect(first.stderr).not.toMatch(STACK);
    expect(await waitGone(mpx.workers)).toEqual([]);
    expect(existsSync(join(results, LOCK))).toBe(false);
    const kept = expectConsistent(results, 'drill-five');
    expect(kept.length).toBeGreaterThanOrEqual(2);
    expect(kept.length).toBeLessThan(5);
    // the run in flight (if its worker had started) was stopped, not recorded as a failure
    expect(readRecords(results, 'drill-five').every((r) => r.status === 'ok')).toBe(true);
    expect(mpx.workers.length).toBeLessThanOrEqual(kept.length + 1);

    const second = await runMpx(['run', FIVE, '--results-dir', results], { cwd });
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.stderr).toContain(`drill-five: reusing ${kept.length} of 5 runs`);
    expect(second.stderr).toContain(`mpx: ${5 - kept.length} runs from 1 spec(s)`);
    expect(second.workers).toHaveLength(5 - kept.length);
    const all = expectConsistent(results, 'drill-five');
    expect(all).toHaveLength(5);
    expect(new Set(all.map((r) => r.runId)).size).toBe(5);
    expectKept(kept, all);
  });
});

describe('drill: SIGTERM to mpx run', () => {
  it('is handled like SIGINT: workers stopped, finished runs kept, exit 130', async () => {
    const cwd = tempDir('sigterm');
    const results = join(cwd, 'results');
    const mpx = startMpx(['run', FOUR, '--results-dir', results, '--jobs', '2'], { cwd });
    await waitFor('the 1st finished run', () => readRecords(results, 'drill-four').length >= 1);
    const signalledAt = Date.now();
    process.kill(mpx.pid, 'SIGTERM');
    const result = await mpx.done;

    expect(result.exitCode, result.stderr).toBe(130);
    expect(result.exitedAt - signalledAt).toBeLessThan(5_000);
    expect(result.stderr).toMatch(/mpx: SIGTERM: stopping workers/);
    expect(await waitGone(mpx.workers)).toEqual([]);
    expect(existsSync(join(results, LOCK))).toBe(false);
    const kept = expectConsistent(results, 'drill-four');
    expect(kept.length).toBeGreaterThanOrEqual(1);
    expect(kept.length).toBeLessThan(4);
  });
});

describe('drill: a second SIGINT', () => {
  it('exits at once, even while a worker ignores SIGTERM, and still leaves no worker behind', async () => {
    const cwd = tempDir('sigint-twice');
    const results = join(cwd, 'results');
    const marks = join(cwd, 'marks');
    mkdirSync(marks);
    // The worker hangs once training and ignores SIGTERM: after one SIGINT, mpx would wait 5 s before SIGKILL.
    const mpx = startMpx(['run', FIVE, '--results-dir', results, '--jobs', '1'], {
      cwd,
      env: { NODE_OPTIONS: PRELOAD_OPTIONS, MPX_DRILL_MARKS: marks, MPX_DRILL_HANG: '1' },
    });
    await waitFor('a training worker', () => mpx.workers.some((pid) => existsSync(join(marks, `${pid}.training`))));
    process.kill(mpx.pid, 'SIGINT');
    await sleep(100);
    const secondAt = Date.now();
    process.kill(mpx.pid, 'SIGINT');
    const result = await mpx.done;

    expect(result.exitCode, result.stderr).toBe(130);
    expect(result.exitedAt - secondAt).toBeLessThan(2_000);
    expect(result.stderr).toMatch(/press Ctrl-C again to exit at once/);
    // killed by mpx's exit hook (SIGKILL to the worker's process group), not left spinning
    expect(await waitGone(mpx.workers)).toEqual([]);
    expect(existsSync(join(results, LOCK))).toBe(false);
    expect(readRecords(results, 'drill-five')).toEqual([]);
  });
});

describe('drill: SIGKILL to mpx itself', () => {
  it('workers die with it, finished runs survive, and the next run takes over the stale lock and does the rest', async () => {
    const cwd = tempDir('sigkill-mpx');
    const results = join(cwd, 'results');
    const mpx = startMpx(['run', FOUR, '--results-dir', results, '--jobs', '2'], { cwd });
    // Struck as soon as the first record is on disk: mpx may be in the middle of writing the CSV and meta.json.
    await waitFor('the 1st finished run', () => readRecords(results, 'drill-four').length >= 1, 30_000, 5);
    process.kill(mpx.pid, 'SIGKILL');
    // every run mpx announced as finished before it died is on disk (recorded first, announced after)
    const announced = (mpx.stderr().match(/^\[\d+\/4\] ok/gm) ?? []).length;
    const first = await mpx.done;
    expect(first.signal).toBe('SIGKILL');
    // Orphaned workers notice the closed IPC channel and exit instead of training on for nobody.
    expect(await waitGone(mpx.workers, 10_000)).toEqual([]);
    const lock = JSON.parse(readFileSync(join(results, LOCK), 'utf8')) as { pid: number };
    expect(lock.pid).toBe(mpx.pid);
    const kept = readRecords(results, 'drill-four');
    expect(kept.length).toBeGreaterThanOrEqual(Math.max(1, announced));
    // appended to this run's record file, which has no footer (its writer died)
    expect(recordFiles(results, 'drill-four')).toHaveLength(1);
    // Whatever mpx was writing when it died, each file is either absent or complete (atomic rename); a temp file it
    // was writing may be left over, and the next run removes it.
    if (existsSync(join(results, 'drill-four.csv'))) expect(readCsv(results, 'drill-four').length).toBeGreaterThanOrEqual(1);
    if (existsSync(join(results, 'drill-four.meta.json'))) JSON.parse(readFileSync(join(results, 'drill-four.meta.json'), 'utf8'));

    const second = await runMpx(['run', FOUR, '--results-dir', results, '--jobs', '2'], { cwd });
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.stderr).not.toMatch(/in use by/);
    expect(second.stderr).toContain(`drill-four: reusing ${kept.length} of 4 runs`);
    expect(existsSync(join(results, LOCK))).toBe(false);
    const all = expectConsistent(results, 'drill-four');
    expect(all).toHaveLength(4);
    expectKept(kept, all);
  });
});
