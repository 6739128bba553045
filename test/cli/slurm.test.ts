/**
 * `mpx slurm` on a real single-node Slurm (munged + slurmctld + slurmd started for this file by test/helpers/slurm.ts,
 * MaxArraySize 3 so that 4 shards need 2 arrays), with the BUILT CLI (build first): a spec as 4 shards merged after
 * all of them and compared with a local run; a task cancelled mid-run and the spec resubmitted; GPU requests. Skipped,
 * with the reason in the title, only where Slurm cannot start (not installed, not root).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { COLUMNS } from '../../src/results/columns.js';
import { readRecords, recordFiles, waitFor } from '../drills/helpers.js';
import { startSlurm, type SlurmCluster } from '../helpers/slurm.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const EIGHT = fileURLToPath(new URL('../fixtures/cli/slurm-eight.yaml', import.meta.url));
const FOUR = fileURLToPath(new URL('../fixtures/drills/four.yaml', import.meta.url));
const TINY = fileURLToPath(new URL('../fixtures/cli/tiny-run.yaml', import.meta.url));

const started = await startSlurm();
const cluster: SlurmCluster | null = 'skipped' in started ? null : started;
const note = 'skipped' in started ? ` [SKIPPED: ${started.skipped}]` : '';
const dirs: string[] = [];
afterAll(async () => {
  await cluster?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `mpx-slurm-${label}-`));
  dirs.push(dir);
  return dir;
}

async function mpx(cwd: string, ...args: string[]) {
  const started = performance.now();
  const r = await execa(process.execPath, [CLI, ...args], { cwd, reject: false, env: { MPX_DEBUG: '', ...cluster?.env }, timeout: 120_000 });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr), wallMs: performance.now() - started };
}

interface QueueWatch {
  /** Most array tasks seen RUNNING at once. */
  maxRunning: number;
}

/** Polls squeue until none of this user's mpx jobs is queued; returns how many array tasks ran at once at most. */
async function waitForQueue(timeoutMs = 60_000): Promise<QueueWatch> {
  const watch = { maxRunning: 0 };
  await waitFor(
    'the mpx jobs to leave the queue',
    () => {
      const lines = cluster!.run('squeue', ['-h', '-r', '-o', '%i|%T|%j']).split('\n').filter((l) => l.includes('|mpx-'));
      watch.maxRunning = Math.max(watch.maxRunning, lines.filter((l) => /^\d+_\d+\|RUNNING\|/.test(l)).length);
      return lines.length === 0;
    },
    timeoutMs,
    100,
  );
  return watch;
}

type Row = Record<string, string>;
const readCsv = (path: string): Row[] => parse<Row>(readFileSync(path, 'utf8'), { columns: true });
/** Columns that are the same on every run of a cell on one engine and machine: all but times and sampled process memory. */
const EXACT = COLUMNS.filter((c) => c.noise !== 'timing' && c.noise !== 'process-memory').map((c) => c.name);

function logs(results: string, key: string): Map<string, string> {
  const dir = join(results, 'slurm', key, 'logs');
  return new Map(readdirSync(dir).map((name) => [name, readFileSync(join(dir, name), 'utf8')]));
}

describe(`mpx slurm on a real single-node Slurm${note}`, () => {
  it.skipIf(cluster === null)(
    'an array of 4 shards (2 arrays: MaxArraySize 3), all on one results directory at once, then a merge job: the CSV equals a local run\'s in every exact column',
    async () => {
      const cwd = tempDir('four-shards');
      const results = join(cwd, 'results');
      const local = mpx(cwd, 'run', EIGHT, '--results-dir', join(cwd, 'local'), '--jobs', '1');
      const submit = await mpx(cwd, 'slurm', EIGHT, '--results-dir', results, '--shards', '4');
      expect(submit.exitCode, submit.stderr).toBe(0);
      console.log(`mpx slurm: submitted 8 runs as 4 shards in ${Math.round(submit.wallMs)} ms (2 arrays + merge job, real Slurm)`);
      const arrays = [...submit.stdout.matchAll(/^array job (\d+): 2 shard\(s\) of 4 \((\d)–(\d)\), 2 task\(s\)$/gm)].map((m) => [m[2], m[3]]);
      expect(arrays, submit.stdout).toEqual([
        ['1', '2'],
        ['3', '4'],
      ]);
      const mergeJob = /^merge job (\d+): mpx merge once every task has ended \(afterany\)$/m.exec(submit.stdout)?.[1];
      expect(mergeJob, submit.stdout).toBeDefined();
      expect(submit.stdout).toMatch(/^logs: results\/slurm\/slurm-eight\/logs\/<array job>_<task>\.out/m);

      const watch = await waitForQueue();
      expect(watch.maxRunning, 'shards running at once on the one results directory').toBeGreaterThanOrEqual(2);
      const localRun = await local;
      expect(localRun.exitCode, localRun.stderr).toBe(0);

      // merged by the merge job: no record file left, one row per cell
      expect(recordFiles(results, 'slurm-eight')).toEqual([]);
      const taskLogs = logs(results, 'slurm-eight');
      expect(taskLogs.get(`merge-${mergeJob}.out`)).toMatch(/slurm-eight: merged 4 record file\(s\), 8 new record\(s\); 8\/8 runs ok → /);
      const shardLines = [...taskLogs.values()].flatMap((text) => text.match(/^mpx: shard \d\/4: 2 runs, 2 to run \(host [^,]+, job \d+_\d(, CUDA_VISIBLE_DEVICES=[^)]*)?\)$/gm) ?? []);
      expect(shardLines.sort()).toHaveLength(4);

      const sharded = readCsv(join(results, 'slurm-eight.csv'));
      const single = readCsv(join(cwd, 'local', 'slurm-eight.csv'));
      expect(sharded).toHaveLength(8);
      expect(sharded.map((row) => Object.keys(row))).toEqual(single.map((row) => Object.keys(row)));
      const exact = (rows: Row[]) => rows.map((row) => Object.fromEntries(EXACT.map((name) => [name, row[name]])));
      expect(exact(sharded)).toEqual(exact(single));
      const meta = JSON.parse(readFileSync(join(results, 'slurm-eight.meta.json'), 'utf8')) as { hosts: string[]; runs: { ok: number } };
      expect(meta).toMatchObject({ hosts: [hostname()], runs: { ok: 8 } });

      const status = await mpx(cwd, 'slurm', 'status', EIGHT, '--results-dir', results);
      expect(status.exitCode, status.stdout).toBe(0);
      expect(status.stdout).toMatch(/^4 shards: 4 done$/m);
      const again = await mpx(cwd, 'slurm', EIGHT, '--results-dir', results);
      expect(again.stdout).toMatch(/nothing to submit/);
    },
  );

  it.skipIf(cluster === null)('a task cancelled mid-run leaves its shard missing, its finished run kept; submitting again runs only that shard', async () => {
    const cwd = tempDir('cancel');
    const results = join(cwd, 'results');
    const submit = await mpx(cwd, 'slurm', FOUR, '--results-dir', results, '--shards', '2');
    expect(submit.exitCode, submit.stderr).toBe(0);
    // the first run of some shard is recorded while the shard's second run trains
    const recordsDir = join(results, 'drill-four.records');
    const { file, task } = await waitFor('a shard with one recorded run', () => {
      for (const name of existsSync(recordsDir) ? readdirSync(recordsDir) : []) {
        const lines = readFileSync(join(recordsDir, name), 'utf8').split('\n');
        const header = JSON.parse(lines[0]!) as { writer: { slurmJob: string } };
        if (lines.filter((l) => l.startsWith('{"attempts"')).length === 1) return { file: name, task: header.writer.slurmJob };
      }
      return undefined;
    });
    cluster!.run('scancel', [task]);
    await waitForQueue();
    const kept = readRecords(results, 'drill-four');
    expect(kept.length).toBeGreaterThanOrEqual(1);
    expect(kept.length).toBeLessThan(4);
    const cancelledLog = logs(results, 'drill-four').get(`${task}.out`)!;
    expect(cancelledLog, file).toMatch(/mpx: SIGTERM: stopping workers; finished runs are kept/);

    const status = await mpx(cwd, 'slurm', 'status', FOUR, '--results-dir', results);
    expect(status.exitCode, status.stdout).toBe(1);
    expect(status.stdout).toMatch(/^2 shards: 1 done, 1 missing$/m);
    expect(status.stdout).toMatch(new RegExp(`^\\d\\s+missing\\s+2\\s+1\\s+0\\s+0\\s+1\\s+${task}$`, 'm'));

    const resubmit = await mpx(cwd, 'slurm', FOUR, '--results-dir', results, '--wait');
    expect(resubmit.exitCode, resubmit.stdout + resubmit.stderr).toBe(0);
    expect(resubmit.stdout.match(/^array job \d+: 1 shard\(s\) of 2/gm)).toHaveLength(1);
    expect(resubmit.stdout).toMatch(/^2 shards: 2 done$/m);
    const all = readRecords(results, 'drill-four');
    expect(all).toHaveLength(4);
    const lines = new Set(all.map((r) => r.line));
    for (const record of kept) expect(lines.has(record.line), `record ${record.runId} was rewritten or lost`).toBe(true);
    expect(readCsv(join(results, 'drill-four.csv')).map((r) => r.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
  });

  const gpuNote = cluster !== null && !cluster.hasGpus ? ' [SKIPPED: mknod of the fake GPU devices is not permitted here]' : '';
  it.skipIf(cluster === null || !cluster.hasGpus)(`GPU requests: each task is given a GPU by Slurm (CUDA_VISIBLE_DEVICES), and mpx runs one worker per GPU${gpuNote}`, async () => {
    const cwd = tempDir('gpus');
    const results = join(cwd, 'results');
    const submit = await mpx(cwd, 'slurm', TINY, '--results-dir', results, '--shards', '2', '--gres', 'gpu:1', '--wait');
    expect(submit.exitCode, submit.stdout + submit.stderr).toBe(0);
    const script = readFileSync(join(results, 'slurm', 'cli-tiny', 'job.sh'), 'utf8');
    expect(script).toContain('#SBATCH --gres=gpu:1\n');
    expect(script).toMatch(/--shard "\$shard\/2" --results-dir \S+ --jobs 1\n/);
    const devices = [...logs(results, 'cli-tiny').values()].flatMap((text) => [...text.matchAll(/^mpx: shard \d\/2: .*CUDA_VISIBLE_DEVICES=(\d)\)$/gm)].map((m) => m[1]));
    expect(devices).toHaveLength(2);
    for (const device of devices) expect(['0', '1']).toContain(device);
  });
});

describe('mpx slurm --dry-run', () => {
  it('prints the task and merge scripts and the sbatch commands, and submits and writes nothing', async () => {
    const cwd = tempDir('dry-run');
    const r = await mpx(cwd, 'slurm', EIGHT, '--results-dir', 'out', '--shards', '2', '--throttle', '2', '--time', '10:00', '--partition', 'gpu', '--gpus-per-task', '2', '--sbatch=--account=proj', '--dry-run');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`# ${join(cwd, 'out', 'slurm', 'slurm-eight', 'job.sh')}\n#!/bin/bash\n`);
    expect(r.stdout).toContain('#SBATCH --partition=gpu\n#SBATCH --time=10:00\n#SBATCH --account=proj\n#SBATCH --gpus-per-task=2\n');
    expect(r.stdout).toContain(`--shard "$shard/2" --results-dir ${join(cwd, 'out')} --jobs 2\n`);
    expect(r.stdout).toMatch(/^sbatch --parsable --array=1-2%2 --export=ALL,MPX_SHARD_OFFSET=0 \S+job\.sh$/m);
    expect(r.stdout).toMatch(/^sbatch --parsable --dependency=afterany:<array job ids> \S+merge\.sh$/m);
    expect(existsSync(join(cwd, 'out'))).toBe(false);
  });

  it("the README's cluster commands run as written (the spec and the shared directory replaced)", async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('<!-- section:cluster'), readme.indexOf('<!-- section:cluster:end -->'));
    const cwd = tempDir('readme');
    const shared = join(cwd, 'shared');
    const localise = (command: string, spec: string) =>
      command.replaceAll('npx mpx', `${process.execPath} ${CLI}`).replaceAll('experiments/large/study.yaml', spec).replaceAll('/shared/mpx/results', shared).replaceAll('/shared/results', shared);
    const sh = /```sh\n([\s\S]*?)```/.exec(section)![1]!.replace(/\\\n\s*/g, '');
    const commands = sh.split('\n').filter((line) => line.startsWith('npx mpx')).map((line) => line.replace(/\s+#.*$/, ''));
    expect(commands).toHaveLength(2);
    const submit = await execa('sh', ['-c', `${localise(commands[0]!, EIGHT)} --dry-run`], { cwd, reject: false, env: cluster?.env ?? {} });
    expect(submit.exitCode, String(submit.stderr)).toBe(0);
    expect(String(submit.stdout)).toMatch(/^#SBATCH --gpus-per-task=1$/m);
    expect(String(submit.stdout)).toMatch(/^#SBATCH --account=myproject$/m);
    const status = await execa('sh', ['-c', localise(commands[1]!, EIGHT)], { cwd, reject: false });
    expect(String(status.stdout)).toMatch(/^8 shards: 8 missing$/m);

    // the Kubernetes Indexed Job's command, as index 0 of 8, then the merge
    const k8s = /command: \["sh", "-c", "(.*)"\]/.exec(section)![1]!;
    const job = await execa('sh', ['-c', localise(k8s, TINY)], { cwd, reject: false, env: { JOB_COMPLETION_INDEX: '0' } });
    expect(job.exitCode, String(job.stderr)).toBe(0);
    expect(String(job.stderr)).toContain('--shard 1/8 selects 1 of 4 runs');
    const merge = await execa('sh', ['-c', localise('npx mpx merge experiments/large/study.yaml --results-dir /shared/results', TINY)], { cwd, reject: false });
    expect(String(merge.stderr)).toContain('cli-tiny: merged 1 record file(s), 1 new record(s); 1/4 runs ok, 3 not recorded yet');
  });
});
