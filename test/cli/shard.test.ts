/**
 * `mpx run --shard` and `mpx merge` end to end on the BUILT CLI, without a scheduler: shards of one spec running at
 * once into one results directory, a merge while they run, the merged CSV against a whole run's, `mpx diff` seeing
 * unmerged records, resume / --force / --filter within a shard, and the task exit codes.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { execa } from 'execa';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { COLUMNS } from '../../src/results/columns.js';
import { killLeftovers, readRecords, recordFiles, startMpx, waitFor } from '../drills/helpers.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const EIGHT = fileURLToPath(new URL('../fixtures/cli/slurm-eight.yaml', import.meta.url));
const OOM = fileURLToPath(new URL('../fixtures/drills/oom.yaml', import.meta.url));
const FOUR = fileURLToPath(new URL('../fixtures/drills/four.yaml', import.meta.url));
const TINY = fileURLToPath(new URL('../fixtures/cli/tiny-run.yaml', import.meta.url));

const dirs: string[] = [];
afterEach(killLeftovers);
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mpx-shard-'));
  dirs.push(dir);
  return dir;
}

async function mpx(cwd: string, ...args: string[]) {
  const r = await execa(process.execPath, [CLI, ...args], { cwd, reject: false, env: { MPX_DEBUG: '' }, timeout: 90_000 });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

type Row = Record<string, string>;
const readCsv = (path: string): Row[] => parse<Row>(readFileSync(path, 'utf8'), { columns: true });
const EXACT = COLUMNS.filter((c) => c.noise !== 'timing' && c.noise !== 'process-memory').map((c) => c.name);
const exact = (rows: Row[]) => rows.map((row) => Object.fromEntries(EXACT.map((name) => [name, row[name]])));

describe('mpx run --shard, then mpx merge', () => {
  it('two shards at once on one results directory, a merge meanwhile, a merge after: the CSV of a whole run in every exact column', async () => {
    const cwd = tempDir();
    const whole = mpx(cwd, 'run', EIGHT, '--results-dir', 'whole', '--jobs', '1');
    const shards = [1, 2].map((i) => mpx(cwd, 'run', EIGHT, '--shard', `${i}/2`, '--results-dir', 'shared', '--jobs', '1'));
    // A merge while both shards record: it folds what is there and keeps the files still being written.
    await waitFor('a recorded run', () => readRecords(join(cwd, 'shared'), 'slurm-eight').length >= 1, 60_000);
    const early = await mpx(cwd, 'merge', EIGHT, '--results-dir', 'shared');
    const [one, two] = await Promise.all(shards);
    expect(one!.exitCode, one!.stderr).toBe(0);
    expect(two!.exitCode, two!.stderr).toBe(0);
    expect(one!.stderr).toContain('mpx: slurm-eight: --shard 1/2 selects 4 of 8 runs');
    expect(one!.stderr).toMatch(new RegExp(`^mpx: shard 1/2: 4 runs, 4 to run \\(host ${hostname()}\\)$`, 'm'));
    expect(one!.stderr).toMatch(/^mpx: slurm-eight: 4\/4 runs of shard 1\/2 ok \(4 new, 0 reused\) → shared\/slurm-eight\.records\/shard-1-of-2\.[^ ]+\.jsonl$/m);
    expect(one!.stderr).toMatch(/when every shard is, merge them: mpx merge \S+slurm-eight\.yaml --results-dir shared/);
    expect([0, 1]).toContain(early.exitCode); // 1 while runs are not recorded yet
    expect(early.stderr).toMatch(/slurm-eight: merged \d record file\(s\)/);

    // the unmerged records are visible to mpx diff (and to mpx run: nothing left to run)
    const wholeRun = await whole;
    expect(wholeRun.exitCode, wholeRun.stderr).toBe(0);
    const diff = await mpx(cwd, 'diff', 'whole', 'shared', '--format', 'json');
    const table = (JSON.parse(diff.stdout) as { tables: Array<{ added: unknown[]; removed: unknown[]; rows: unknown[] }> }).tables[0]!;
    expect([table.added, table.removed, table.rows.length]).toEqual([[], [], 8]);
    const none = await mpx(cwd, 'run', EIGHT, '--shard', '2/2', '--results-dir', 'shared');
    expect(none.stderr).toContain('nothing to run: every selected run of this shard has a result');

    const merge = await mpx(cwd, 'merge', EIGHT, '--results-dir', 'shared');
    expect(merge.exitCode, merge.stderr).toBe(0);
    expect(merge.stderr).toMatch(/^mpx: slurm-eight: merged \d record file\(s\), \d new record\(s\); 8\/8 runs ok → shared\/slurm-eight\.csv$/m);
    expect(recordFiles(join(cwd, 'shared'), 'slurm-eight')).toEqual([]);
    expect(exact(readCsv(join(cwd, 'shared', 'slurm-eight.csv')))).toEqual(exact(readCsv(join(cwd, 'whole', 'slurm-eight.csv'))));
    const records = readRecords(join(cwd, 'shared'), 'slurm-eight');
    expect(records).toHaveLength(8);
    expect(new Set(records.map((r) => (JSON.parse(r.line) as { host: string }).host))).toEqual(new Set([hostname()]));
    // idempotent: merging again changes nothing
    const files = ['csv', 'runs.jsonl', 'meta.json'].map((ext) => readFileSync(join(cwd, 'shared', `slurm-eight.${ext}`), 'utf8'));
    const again = await mpx(cwd, 'merge', EIGHT, '--results-dir', 'shared');
    expect(again.stderr).toMatch(/merged 0 record file\(s\), 0 new record\(s\); 8\/8 runs ok shared\/slurm-eight\.csv unchanged/);
    expect(['csv', 'runs.jsonl', 'meta.json'].map((ext) => readFileSync(join(cwd, 'shared', `slurm-eight.${ext}`), 'utf8'))).toEqual(files);
  });

  it('resume, --force and --filter compose with --shard; a whole run merges shard files it finds', async () => {
    const cwd = tempDir();
    const first = await mpx(cwd, 'run', TINY, '--shard', '1/2', '--results-dir', 'r', '--filter', 'policy=float32');
    expect(first.stderr).toContain('--filter and --shard 1/2 selects 1 of 4 runs');
    const forced = await mpx(cwd, 'run', TINY, '--shard', '1/2', '--results-dir', 'r', '--filter', 'policy=float32', '--force');
    expect(forced.stderr).toContain('mpx: 1 runs from 1 spec(s)');
    const rest = await mpx(cwd, 'run', TINY, '--shard', '1/2', '--results-dir', 'r');
    expect(rest.stderr).toContain('cli-tiny: reusing 1 of 2 runs');
    expect(rest.stderr).toContain('mpx: 1 runs from 1 spec(s)');
    expect(recordFiles(join(cwd, 'r'), 'cli-tiny')).toHaveLength(3);
    // a whole run reuses the shard's 2 records, runs the other 2 and merges every record file
    const whole = await mpx(cwd, 'run', TINY, '--results-dir', 'r');
    expect(whole.exitCode, whole.stderr).toBe(0);
    expect(whole.stderr).toContain('cli-tiny: reusing 2 of 4 runs');
    expect(whole.stderr).toContain('cli-tiny: 4/4 runs ok (2 new, 2 reused) → r/cli-tiny.csv');
    expect(existsSync(join(cwd, 'r', 'cli-tiny.records'))).toBe(false);
    expect(readRecords(join(cwd, 'r'), 'cli-tiny')).toHaveLength(4);
  });

  it('a shard exits 3 when it recorded oom rows and nothing failed (a whole run exits 0); merge says what is missing', async () => {
    const cwd = tempDir();
    const shard = await mpx(cwd, 'run', OOM, '--shard', '1/1', '--results-dir', 'r');
    expect(shard.exitCode, shard.stderr).toBe(3);
    const whole = await mpx(cwd, 'run', OOM, '--results-dir', 'w');
    expect(whole.exitCode, whole.stderr).toBe(0);
    const missing = await mpx(cwd, 'merge', EIGHT, '--results-dir', 'r');
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('slurm-eight: merged 0 record file(s), 0 new record(s); 0/8 runs ok, 8 not recorded yet');
  });

  it('a shard does not start beside a whole run of the same results directory (exit 2); --shard is checked', async () => {
    const cwd = tempDir();
    const whole = startMpx(['run', FOUR, '--results-dir', 'r', '--jobs', '1'], { cwd });
    await waitFor('the whole run to hold the lock', () => existsSync(join(cwd, 'r', '.mpx.lock')) && whole.workers.length > 0);
    const shard = await mpx(cwd, 'run', FOUR, '--shard', '1/2', '--results-dir', 'r');
    expect(shard.exitCode).toBe(2);
    expect(shard.stderr).toMatch(new RegExp(`r is in use by a whole mpx run \\(pid ${whole.pid}, started .*\\), which runs this shard's runs too`));
    const merge = await mpx(cwd, 'merge', FOUR, '--results-dir', 'r');
    expect(merge.exitCode).toBe(2);
    expect(merge.stderr).toMatch(/in use by a whole mpx run .*, which merges when it ends/);
    process.kill(whole.pid, 'SIGINT');
    await whole.done;

    const bad = await mpx(cwd, 'run', FOUR, '--shard', '3/2', '--results-dir', 'r');
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('mpx: --shard must be <index>/<count> with 1 ≤ index ≤ count (1-based), got "3/2"');
  });
});
