/**
 * Fault drills on real workers: `mpx run` (dist/cli/main.js) trains a small MLP on wasm in dist/worker/main.js, and
 * the drill really kills a worker (SIGKILL), lets a run hang past its timeout, or puts runs over their memory budget.
 * Each checks the exit code, the rows and records written, and that no worker process (or grandchild) survives.
 * Build first (npx tsc -p .).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  assertBuilt,
  drillSpec,
  isPidLive,
  killLeftovers,
  PRELOAD_OPTIONS,
  readCsv,
  readRecords,
  removeTempDirs,
  runMpx,
  STACK,
  startMpx,
  strayFiles,
  tempDir,
  waitFor,
  waitGone,
  type MpxProcess,
} from './helpers.js';

beforeAll(assertBuilt);
afterEach(killLeftovers);
afterAll(removeTempDirs);

const FOUR = drillSpec('four.yaml');

/** Environment for a drill whose workers report their first `progress` message as `<marks>/<pid>.training`. */
function drillEnv(marks: string, extra: Record<string, string> = {}): Record<string, string> {
  mkdirSync(marks, { recursive: true });
  return { NODE_OPTIONS: PRELOAD_OPTIONS, MPX_DRILL_MARKS: marks, ...extra };
}

/** Waits until a worker of `mpx` has sent progress (it is training) and SIGKILLs it; returns its pid. */
async function killATrainingWorker(mpx: MpxProcess, marks: string): Promise<number> {
  return waitFor(
    'a training worker to kill',
    () => {
      for (const pid of mpx.workers) {
        if (!existsSync(join(marks, `${pid}.training`)) || !isPidLive(pid)) continue;
        process.kill(pid, 'SIGKILL');
        return pid;
      }
      return undefined;
    },
    30_000,
  );
}

describe('drill: a worker killed with SIGKILL', () => {
  it('that run is crashed with the signal and its last stderr lines; the others finish; exit 1', async () => {
    const cwd = tempDir('sigkill');
    const results = join(cwd, 'results');
    const marks = join(cwd, 'marks');
    const mpx = startMpx(['run', FOUR, '--results-dir', results, '--jobs', '2'], { cwd, env: drillEnv(marks) });
    const killed = await killATrainingWorker(mpx, marks);
    const result = await mpx.done;

    expect(result.exitCode, result.stderr).toBe(1);
    expect(result.stderr).not.toMatch(STACK);
    expect(result.stderr).toMatch(/mpx: 1 run\(s\) failed/);
    const rows = readCsv(results, 'drill-four');
    expect(rows).toHaveLength(4);
    const crashed = rows.filter((r) => r.status === 'crashed');
    expect(crashed).toHaveLength(1);
    expect(crashed[0]!.runs_ok).toBe('0/1');
    expect(crashed[0]!.reason).toMatch(/worker exited unexpectedly \(signal SIGKILL\) during training \(step \d+\/800\)/);
    expect(rows.filter((r) => r.status === 'ok')).toHaveLength(3);
    // the full reason, with the worker's last stderr line (the drill preload's "drill: worker <pid> up")
    const records = readRecords(results, 'drill-four');
    expect(records).toHaveLength(4);
    const record = records.find((r) => r.status === 'crashed')!;
    expect(record.reason).toContain(`last stderr: drill: worker ${killed} up`);
    expect(record.attempts).toBe(1);
    expect(strayFiles(results)).toEqual([]);
    expect(await waitGone(mpx.workers)).toEqual([]);
  });

  it('with train.retries: 1 the killed run is started again: ok on attempt 2, exit 0', async () => {
    const cwd = tempDir('sigkill-retry');
    const results = join(cwd, 'results');
    const marks = join(cwd, 'marks');
    const mpx = startMpx(['run', drillSpec('four-retries.yaml'), '--results-dir', results, '--jobs', '2'], { cwd, env: drillEnv(marks) });
    const killed = await killATrainingWorker(mpx, marks);
    const result = await mpx.done;

    expect(result.exitCode, result.stderr).toBe(0);
    const records = readRecords(results, 'drill-four-retries');
    expect(records).toHaveLength(4);
    expect(records.every((r) => r.status === 'ok')).toBe(true);
    expect(records.map((r) => r.attempts).sort()).toEqual([1, 1, 1, 2]);
    expect(readCsv(results, 'drill-four-retries').map((r) => r.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
    // 4 runs + 1 restart = 5 worker processes, the killed one among them
    expect(mpx.workers).toContain(killed);
    expect(mpx.workers).toHaveLength(5);
    expect(await waitGone(mpx.workers)).toEqual([]);
  });
});

describe('drill: --fail-fast', () => {
  it('stops scheduling after the first failure: fewer runs recorded than planned, exit 1', async () => {
    const cwd = tempDir('fail-fast');
    const results = join(cwd, 'results');
    const marks = join(cwd, 'marks');
    const mpx = startMpx(['run', FOUR, '--results-dir', results, '--jobs', '1', '--fail-fast'], { cwd, env: drillEnv(marks) });
    const killed = await killATrainingWorker(mpx, marks);
    const result = await mpx.done;

    expect(result.exitCode, result.stderr).toBe(1);
    const records = readRecords(results, 'drill-four');
    // The first worker is killed as it starts training: the other 3 runs are never started.
    expect(mpx.workers[0]).toBe(killed);
    expect(records).toHaveLength(1);
    expect(records.at(-1)!.status).toBe('crashed');
    expect(mpx.workers).toHaveLength(records.length);
    // The CSV has a row per recorded cell (cells that never ran get one when a later mpx run runs them).
    const rows = readCsv(results, 'drill-four');
    expect(rows).toHaveLength(records.length);
    expect(rows.at(-1)!.status).toBe('crashed');
    expect(result.stderr).toMatch(/drill-four: \d\/4 runs ok/);
    expect(await waitGone(mpx.workers)).toEqual([]);
  });
  // Without --fail-fast every other run finishes: the SIGKILL drill above (3 ok rows next to the crashed one).
});

describe('drill: a run that hangs past train.timeoutSeconds', () => {
  it('is killed with its whole process tree at the timeout and recorded as timeout (not retried); exit 1', async () => {
    const cwd = tempDir('timeout');
    const results = join(cwd, 'results');
    const grandchildren = join(cwd, 'grandchildren.txt');
    const startedAt = Date.now();
    const mpx = startMpx(['run', drillSpec('hang.yaml'), '--results-dir', results, '--retries', '1'], {
      cwd,
      env: { NODE_OPTIONS: PRELOAD_OPTIONS, MPX_DRILL_GRANDCHILD: grandchildren },
    });
    const result = await mpx.done;

    expect(result.exitCode, result.stderr).toBe(1);
    // 1 s timeout, SIGTERM honoured at once: far below the 1,000,000 steps the run asked for (and the 5 s SIGKILL grace)
    expect(result.exitedAt - startedAt).toBeLessThan(20_000);
    const [row] = readCsv(results, 'drill-hang');
    expect(row!.status).toBe('timeout');
    expect(row!.reason).toMatch(/^timed out after 1 s during (startup|setup|training)/);
    const grandchild = Number(readFileSync(grandchildren, 'utf8').trim());
    expect(grandchild).toBeGreaterThan(0);
    // the worker's own child (same process group, holding the stderr pipe) died with it
    expect(await waitGone([grandchild, ...mpx.workers])).toEqual([]);
    // a timeout would time out again: --retries applies to crashes only
    expect(mpx.workers).toHaveLength(1);
    expect(readRecords(results, 'drill-hang').map((r) => r.attempts)).toEqual([1]);
  });

  it('a worker that stops responding and ignores SIGTERM is SIGKILLed (with its tree) after the grace period', async () => {
    const cwd = tempDir('hang');
    const results = join(cwd, 'results');
    const grandchildren = join(cwd, 'grandchildren.txt');
    const mpx = startMpx(['run', drillSpec('hang.yaml'), '--results-dir', results], {
      cwd,
      env: { NODE_OPTIONS: PRELOAD_OPTIONS, MPX_DRILL_HANG: '1', MPX_DRILL_GRANDCHILD: grandchildren },
    });
    const result = await mpx.done;

    expect(result.exitCode, result.stderr).toBe(1);
    const [row] = readCsv(results, 'drill-hang');
    expect(row!.status).toBe('timeout');
    expect(row!.reason).toMatch(/^timed out after 1 s during training \(step \d+\/1000000\), killed with SIGKILL after ignoring SIGTERM/);
    const grandchild = Number(readFileSync(grandchildren, 'utf8').trim());
    expect(await waitGone([grandchild, ...mpx.workers])).toEqual([]);
  });
});

describe('drill: runs over their memory budget', () => {
  it('are oom rows with oom_reached_bytes, never retried, and not a failure of the batch: exit 0', async () => {
    const cwd = tempDir('oom');
    const results = join(cwd, 'results');
    const result = await runMpx(['run', drillSpec('oom.yaml'), '--results-dir', results, '--retries', '2'], { cwd });

    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(/failed/);
    const rows = readCsv(results, 'drill-oom');
    expect(rows.map((r) => r.status)).toEqual(['oom', 'oom']);
    for (const row of rows) expect(Number(row.oom_reached_bytes)).toBeGreaterThan(20_000);
    // batch 16 started and stopped in its measurement update; batch 64 never started (its static bound is above)
    const reasons = readRecords(results, 'drill-oom').map((r) => r.reason);
    expect(reasons[0]).toMatch(/above the memory budget of 20000 bytes/);
    expect(reasons[1]).toMatch(/^pre-flight: needs at least 21\.9 KiB before any activation .* above the memory budget: 19\.5 KiB; no worker was started/);
    expect(rows[1]!.oom_reached_bytes).toBe('22448');
    expect(readRecords(results, 'drill-oom').map((r) => r.attempts)).toEqual([1, 1]);
    expect(result.workers).toHaveLength(1);
    expect(await waitGone(result.workers)).toEqual([]);
  });
});

describe('drill: a worker growing past its share of the machine', () => {
  it('is killed by the memory guard and recorded as oom with the bytes it reached; the other runs finish; exit 0', async () => {
    const cwd = tempDir('guard');
    const results = join(cwd, 'results');
    const marks = join(cwd, 'marks');
    const env = drillEnv(marks, { MPX_DRILL_GROW_ONCE: join(cwd, 'grower') });
    const result = await runMpx(['run', FOUR, '--results-dir', results, '--jobs', '2', '--worker-memory', '768MiB'], { cwd, env });

    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(STACK);
    const rows = readCsv(results, 'drill-four');
    expect(rows.map((r) => r.status).sort()).toEqual(['ok', 'ok', 'ok', 'oom']);
    const oom = rows.find((r) => r.status === 'oom')!;
    const record = readRecords(results, 'drill-four').find((r) => r.status === 'oom')!;
    expect(record.reason).toMatch(/^worker killed by mpx's memory guard during training: its resident set reached \d+(\.\d+)? MiB, above its share of this machine \(768 MiB: --worker-memory\)/);
    expect(Number(oom.oom_reached_bytes)).toBeGreaterThan(768 * 2 ** 20);
    // Sampled every 200 ms while growing 64 MiB per 50 ms: stopped within about a second of growth.
    expect(Number(oom.oom_reached_bytes)).toBeLessThan(768 * 2 ** 20 + 1.5 * 2 ** 30);
    expect(await waitGone(result.workers)).toEqual([]);
  });
});

describe('drill: a model no ceiling can hold', () => {
  it('is an oom row per cell from the pre-flight, naming the bytes and the ceiling; no worker is started', async () => {
    const cwd = tempDir('huge');
    const results = join(cwd, 'results');
    const result = await runMpx(['run', drillSpec('huge.yaml'), '--results-dir', results, '--worker-memory', '8GiB'], { cwd });

    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.workers).toEqual([]);
    const records = readRecords(results, 'drill-huge');
    expect(records.map((r) => [r.status, r.backend, r.reachedBytes])).toEqual([
      ['oom', null, 68_731_011_232],
      ['oom', null, 68_731_011_232],
    ]);
    expect(records[0]!.reason).toMatch(/^pre-flight: needs at least 64\.0 GiB .*above what the wasm backend can address \(a wasm32 heap\): 4\.00 GiB; no worker was started/);
    expect(records[1]!.reason).toMatch(/above this worker's share of the machine's memory \(--worker-memory\): 8\.00 GiB; no worker was started/);
  });
});
