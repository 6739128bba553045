/**
 * Run identity and resume, end to end on the BUILT CLI (run `npx tsc -p .` first): reruns skip recorded runs,
 * --force / --retry-failed / --filter pick what runs, editing the spec re-runs only changed cells, the CSV is always
 * rebuilt from every current record, and a forced rerun reproduces losses, accuracies and bytes exactly.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const TINY = fileURLToPath(new URL('../fixtures/cli/tiny-run.yaml', import.meta.url));

interface Record {
  runId: string;
  cellId: string;
  status: string;
  reason: string | null;
  measurements: { [key: string]: unknown } | null;
}

let cwd: string;
let specText: string;
const spec = () => join(cwd, 'spec.yaml');
const out = () => join(cwd, 'out');

async function mpx(...args: string[]) {
  const r = await execa(process.execPath, [CLI, ...args], { cwd, reject: false, env: { MPX_DEBUG: '' }, timeout: 60_000 });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}
const run = (...args: string[]) => mpx('run', spec(), '--results-dir', out(), '--jobs', '2', ...args);
const read = (ext: string) => readFile(join(out(), `cli-tiny.${ext}`), 'utf8');
async function records(): Promise<Record[]> {
  return (await read('runs.jsonl'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record);
}
async function csvRows(): Promise<Array<{ [column: string]: string }>> {
  return parse<{ [column: string]: string }>(await read('csv'), { columns: true });
}
const finishedLines = (stderr: string) => stderr.split('\n').filter((l) => /^\[\s*\d+\/\d+\] /.test(l));

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p .)`);
  cwd = await mkdtemp(join(tmpdir(), 'mpx-resume-'));
  await copyFile(TINY, spec());
  specText = await readFile(TINY, 'utf8');
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

describe('mpx run: resume, --force, --filter, --retry-failed (tiny spec, sequential steps)', () => {
  let first: Record[];

  it('a first run records all 4 runs', async () => {
    const r = await run();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(finishedLines(r.stderr)).toHaveLength(4);
    expect(r.stderr).toMatch(/cli-tiny: 4\/4 runs ok \(4 new, 0 reused\)/);
    first = await records();
    expect(first).toHaveLength(4);
  });

  it('meta.json records the provenance a reviewer needs', async () => {
    const meta = JSON.parse(await read('meta.json')) as { [key: string]: unknown };
    expect(meta).toMatchObject({
      mpxVersion: expect.stringMatching(/^\d+\.\d+\.\d+/),
      nodeVersion: process.version,
      tfjsVersions: { '@tensorflow/tfjs-core': expect.any(String), '@tensorflow/tfjs-backend-wasm': expect.any(String) },
      backends: ['wasm'],
      cpu: { model: expect.any(String), cores: expect.any(Number) },
      gpus: expect.any(Array),
      os: expect.stringMatching(new RegExp(`^${process.platform} `)),
      git: null, // the scratch directory is not a git checkout
      spec: { name: 'cli-tiny', file: spec(), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
      date: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      runs: { planned: 4, recorded: 4, reused: 0, ok: 4 },
    });
  });

  it('running again reuses every run, starts no worker and leaves the files byte for byte', async () => {
    const before = await Promise.all(['csv', 'meta.json', 'runs.jsonl'].map(read));
    const r = await run();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('mpx: cli-tiny: reusing 4 of 4 runs (use --force to re-run)');
    expect(r.stderr).toContain('nothing to run');
    expect(finishedLines(r.stderr)).toEqual([]);
    expect(await Promise.all(['csv', 'meta.json', 'runs.jsonl'].map(read))).toEqual(before);
  });

  it('--force re-runs everything, and the rerun gives identical losses, accuracies and bytes', async () => {
    const r = await run('--force');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(finishedLines(r.stderr)).toHaveLength(4);
    const second = await records();
    const seeded = ['initialLoss', 'finalLoss', 'evalAccuracy', 'peakBytes', 'restingBytes', 'paramCount', 'lossScaleFinal', 'skippedSteps'];
    const project = (rs: Record[]) =>
      Object.fromEntries(rs.map((x) => [x.runId, Object.fromEntries(seeded.map((k) => [k, x.measurements?.[k]]))]));
    expect(project(second)).toEqual(project(first));
    expect(typeof second[0]!.measurements?.finalLoss).toBe('number');
    // and it really ran again: timings are fresh measurements
    expect(second.map((x) => x.measurements?.stepMsMedian)).not.toEqual(first.map((x) => x.measurements?.stepMsMedian));
  });

  it('--filter runs a subset; the CSV keeps the rows of the cells not re-run', async () => {
    const r = await run('--force', '--filter', 'policy=float32');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('mpx: cli-tiny: --filter selects 2 of 4 runs');
    expect(finishedLines(r.stderr)).toHaveLength(2);
    expect(finishedLines(r.stderr).every((l) => l.includes('float32'))).toBe(true);
    const rows = await csvRows();
    expect(rows.map((row) => [row.batch_size, row.policy, row.status])).toEqual([
      ['4', 'float32', 'ok'],
      ['4', 'mixed_float16', 'ok'],
      ['8', 'float32', 'ok'],
      ['8', 'mixed_float16', 'ok'],
    ]);
    const meta = JSON.parse(await read('meta.json')) as { runs: { recorded: number; reused: number } };
    expect(meta.runs).toMatchObject({ recorded: 4, reused: 2 });
  });

  it('a failed record is kept (exit 1, pointing at --retry-failed) until --retry-failed re-runs just that run', async () => {
    const all = await records();
    const victim = all[3]!;
    const edited = all.map((x) => (x.runId === victim.runId ? { ...x, status: 'failed', reason: 'boom', measurements: null } : x));
    await writeFile(join(out(), 'cli-tiny.runs.jsonl'), edited.map((x) => `${JSON.stringify(x)}\n`).join(''));

    const kept = await run();
    expect(kept.exitCode, kept.stderr).toBe(1);
    expect(kept.stderr).toContain('reusing 4 of 4 runs (use --force to re-run); 1 of them failed (use --retry-failed to re-run those)');
    expect(kept.stderr).toMatch(/1 run\(s\) failed \(1 recorded by an earlier mpx run: re-run them with --retry-failed\)/);
    expect((await csvRows())[3]).toMatchObject({ status: 'failed', reason: 'boom' });

    const retried = await run('--retry-failed');
    expect(retried.exitCode, retried.stderr).toBe(0);
    expect(finishedLines(retried.stderr)).toHaveLength(1);
    expect((await csvRows()).map((row) => row.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect((await records()).find((x) => x.runId === victim.runId)?.measurements?.finalLoss).toBe(
      first.find((x) => x.runId === victim.runId)?.measurements?.finalLoss,
    );
  });

  it('adding a cell to the spec runs only that cell', async () => {
    await writeFile(spec(), specText.replace('batchSize: [4, 8]', 'batchSize: [4, 8, 16]'));
    const r = await run();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('reusing 4 of 6 runs');
    expect(finishedLines(r.stderr)).toHaveLength(2);
    expect(finishedLines(r.stderr).every((l) => l.includes('bs=16'))).toBe(true);
    expect((await csvRows()).map((row) => row.batch_size)).toEqual(['4', '4', '8', '8', '16', '16']);
  });

  it('removing cells drops their rows and records without running anything', async () => {
    await writeFile(spec(), specText.replace('batchSize: [4, 8]', 'batchSize: [8]'));
    const r = await run();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('dropping 4 recorded run(s) that the spec no longer has');
    expect(finishedLines(r.stderr)).toEqual([]);
    const rows = await csvRows();
    expect(rows.map((row) => [row.cell, row.batch_size])).toEqual([
      ['0', '8'],
      ['1', '8'],
    ]);
    expect(await records()).toHaveLength(2);
  });

  it('editing what a cell computes (steps) changes every run id, so every cell would re-run', async () => {
    const plan = await mpx('plan', '--json', spec());
    const edited = specText.replace('batchSize: [4, 8]', 'batchSize: [8]').replace('steps: 4', 'steps: 3');
    await writeFile(spec(), edited);
    const replanned = await mpx('plan', '--json', spec());
    const ids = (text: string) => (JSON.parse(text) as Array<{ runId: string }>).map((x) => x.runId);
    expect(ids(replanned.stdout).some((id) => ids(plan.stdout).includes(id))).toBe(false);
    await writeFile(spec(), specText.replace('batchSize: [4, 8]', 'batchSize: [8]')); // back, for the next tests
  });
});

describe('mpx run interrupted with Ctrl-C, then resumed', () => {
  it('keeps the finished runs, records nothing for the killed ones, and the next run does only the rest', async () => {
    const dir = join(cwd, 'interrupted');
    const child = execa(process.execPath, [CLI, 'run', TINY, '--results-dir', dir, '--jobs', '1'], { cwd, reject: false, env: { MPX_DEBUG: '' }, timeout: 60_000 });
    let stderr = '';
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (/\[1\/4\] ok/.test(stderr)) resolve();
      });
      void child.then(() => resolve());
    });
    child.kill('SIGINT');
    const result = await child;
    expect(result.exitCode, String(result.stderr)).toBe(130);
    const kept = (await readFile(join(dir, 'cli-tiny.runs.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record);
    expect(kept.length).toBeGreaterThanOrEqual(1);
    expect(kept.length).toBeLessThan(4);
    expect(kept.every((r) => r.status === 'ok')).toBe(true);

    const resumed = await mpx('run', TINY, '--results-dir', dir, '--jobs', '2');
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`reusing ${kept.length} of 4 runs`);
    expect(finishedLines(resumed.stderr)).toHaveLength(4 - kept.length);
  });
});

describe('mpx run --filter: bad input → exit 2 before anything runs', () => {
  it.each([
    [['--filter', 'polcy=float32'], /unknown key "polcy"/, /did you mean "policy"\?/],
    [['--filter', 'policy=float23'], /--filter policy=float23 matches no run \(policy values: float32, mixed_float16\)/, /did you mean policy=float32\?/],
    [['--filter', 'policy'], /expected key=value/, undefined],
    [['--filter', 'model=tiny,batchSize=99'], /batchSize=99 matches no run/, /did you mean batchSize=8\?/],
  ])('%j', async (args, message, hint) => {
    const before = await read('runs.jsonl');
    const r = await run(...args);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    if (hint) expect(r.stderr).toMatch(hint);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await read('runs.jsonl')).toBe(before);
  });

  it('a corrupt runs.jsonl is reported with file:line, and nothing runs', async () => {
    const path = join(out(), 'cli-tiny.runs.jsonl');
    const before = await readFile(path, 'utf8');
    await writeFile(path, `${before}not json\n`);
    const r = await run();
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`${path}:3: this line is not valid JSON`);
    await writeFile(path, before);
  });
});
