/**
 * End-to-end tests of the BUILT command line (dist/cli/main.js) run as a subprocess: exit codes, what goes to stdout
 * and stderr, and what lands in the results directory. `npm test` builds first; run `npx tsc -p .` before
 * `npx vitest run test/cli` by hand.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLUMNS } from '../../src/results/columns.js';
import { formatBytes } from '../../src/results/peak.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const SPECS = fileURLToPath(new URL('../fixtures/specs/', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../fixtures/cli/', import.meta.url));
const good = (name: string) => join(SPECS, 'good', name);
const bad = (name: string) => join(SPECS, 'bad', name);
const fixture = (name: string) => join(FIXTURES, name);

/** A stack trace line (`    at foo (file:1:2)`): error output for people must never contain one. */
const STACK = /\n\s+at /;

let work: string;
beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p .)`);
  work = await mkdtemp(join(tmpdir(), 'mpx-cli-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A fresh empty directory under the test's temp dir, used as cwd so stray writes (e.g. ./results) are visible. */
let dirCount = 0;
async function freshDir(label: string): Promise<string> {
  const dir = join(work, `${label}-${dirCount++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

async function mpx(args: string[], cwd: string) {
  const result = await execa(process.execPath, [CLI, ...args], {
    reject: false,
    cwd,
    env: { MPX_DEBUG: '' },
    timeout: 60_000,
  });
  return { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Exit 2, a one-screen message for people: no stack trace, not the internal-bug path. */
function expectUsageError(result: { exitCode?: number; stderr: string }, pattern?: RegExp): void {
  expect(result.exitCode, result.stderr).toBe(2);
  expect(result.stderr).not.toMatch(STACK);
  expect(result.stderr).not.toMatch(/internal error/);
  if (pattern) expect(result.stderr).toMatch(pattern);
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface PlannedRun {
  spec: string;
  cell: number;
  cellId: string;
  runId: string;
  repeat: number;
  model: string;
  batchSize: number;
  microBatchSize: number;
  policy: string;
  accumulationSteps: number;
  backend: string;
  steps: number;
}

describe('mpx validate', () => {
  it('accepts a good spec: exit 0, prints ok', async () => {
    const cwd = await freshDir('validate-good');
    const result = await mpx(['validate', good('minimal.yaml')], cwd);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain(`${good('minimal.yaml')}: ok`);
    expect(result.stdout).toMatch(/: ok \(2 cells, 2 runs\)/);
    expect(await readdir(cwd)).toEqual([]);
  });

  it.each([
    ['syntax-error.yaml', /flow sequence|\]/, undefined],
    ['unknown-top-key.yaml', /unknown key "seeds"/, /did you mean "seed"\?/],
    ['unknown-matrix-key.yaml', /unknown key "batchsize"/, /did you mean "batchSize"\?/],
    ['unknown-model-in-matrix.yaml', /unknown model "cnnn"/, /did you mean "cnn"\?/],
  ])('rejects bad/%s: exit 2, file:line:col, no stack, nothing written', async (name, message, hint) => {
    const cwd = await freshDir('validate-bad');
    const file = bad(name);
    const result = await mpx(['validate', file], cwd);
    expectUsageError(result, new RegExp(`${escape(file)}:\\d+:\\d+: `));
    expect(result.stderr).toMatch(message);
    if (hint) expect(result.stderr).toMatch(hint);
    expect(result.stdout).toBe('');
    expect(await readdir(cwd)).toEqual([]);
  });

  it('points at the right line and column (unknown top-level key on line 2, column 1)', async () => {
    const cwd = await freshDir('validate-pos');
    const result = await mpx(['validate', bad('unknown-top-key.yaml')], cwd);
    expectUsageError(result, new RegExp(`${escape(bad('unknown-top-key.yaml'))}:2:1: `));
  });

  it('run on a bad spec fails before anything is written to the results dir', async () => {
    const cwd = await freshDir('run-bad');
    const results = join(cwd, 'out');
    const result = await mpx(['run', bad('unknown-model-in-matrix.yaml'), '--results-dir', results], cwd);
    expectUsageError(result, /unknown model "cnnn"/);
    expect(existsSync(results)).toBe(false);
    expect(await readdir(cwd)).toEqual([]);
  });
});

describe('spec arguments: globs and paths', () => {
  let cwd: string;
  const names = ['aliases.yaml', 'custom-layers.yaml', 'minimal.yaml'];
  beforeAll(async () => {
    cwd = await freshDir('globs');
    await mkdir(join(cwd, 'specs'));
    for (const name of names) await copyFile(good(name), join(cwd, 'specs', name));
    await copyFile(good('minimal.yaml'), join(cwd, 'specs', 'not-a-spec.txt'));
  });

  it('expands a quoted glob itself, in sorted order', async () => {
    const result = await mpx(['validate', 'specs/*.yaml'], cwd);
    expect(result.exitCode, result.stderr).toBe(0);
    const files = result.stdout.trim().split('\n').map((line) => line.slice(0, line.indexOf(': ok')));
    expect(files).toEqual(names.map((n) => `specs/${n}`));
  });

  it('a glob matching nothing → exit 2 with a clear message', async () => {
    const result = await mpx(['validate', 'specs/*.yml'], cwd);
    expectUsageError(result, /the pattern specs\/\*\.yml matches no file/);
  });

  it('a glob matching nothing is an error even next to a good file', async () => {
    const result = await mpx(['plan', 'specs/minimal.yaml', 'nothing/*.yaml'], cwd);
    expectUsageError(result, /nothing\/\*\.yaml matches no file/);
  });

  it('a missing file → exit 2 naming it', async () => {
    const result = await mpx(['validate', 'specs/missing.yaml'], cwd);
    expectUsageError(result, /specs\/missing\.yaml/);
    expect(result.stderr).toMatch(/not found|does not exist/);
  });

  it('a directory → exit 2 with a hint to its *.yaml', async () => {
    const result = await mpx(['validate', 'specs'], cwd);
    expectUsageError(result, /specs.*director|specs.*not a file/);
    expect(result.stderr).toContain('specs/*.yaml');
  });

  it('a glob with a bad file among good ones → exit 2 naming the bad one', async () => {
    const dir = await freshDir('globs-mixed');
    await copyFile(good('minimal.yaml'), join(dir, 'a.yaml'));
    await copyFile(bad('unknown-top-key.yaml'), join(dir, 'b.yaml'));
    const result = await mpx(['validate', '*.yaml'], dir);
    expectUsageError(result, /b\.yaml:2:1: unknown key "seeds"/);
  });
});

describe('mpx plan', () => {
  it('--json: one object per run with the axes and ids, in matrix order', async () => {
    const cwd = await freshDir('plan-json');
    const result = await mpx(['plan', '--json', '--max-runs', '24', fixture('too-many-runs.yaml')], cwd);
    expect(result.exitCode, result.stderr).toBe(0);
    const runs = JSON.parse(result.stdout) as PlannedRun[];
    expect(Array.isArray(runs)).toBe(true);
    expect(runs).toHaveLength(24);
    for (const run of runs) {
      expect(run.model).toBe('tiny');
      expect([8, 16, 32]).toContain(run.batchSize);
      expect(['float32', 'mixed_bfloat16']).toContain(run.policy);
      expect([1, 4]).toContain(run.accumulationSteps);
      expect(run.runId).toMatch(/^[0-9a-f]{16}$/);
      expect(run.cellId).toMatch(/^[0-9a-f]{16}$/);
      expect(run.microBatchSize * run.accumulationSteps).toBe(run.batchSize);
    }
    expect(new Set(runs.map((r) => r.runId)).size).toBe(runs.length);
    // GitHub Actions order: the first axis in the YAML varies slowest; repeats of a cell are adjacent.
    const expected: Array<[number, string, number]> = [];
    for (const batchSize of [8, 16, 32]) {
      for (const policy of ['float32', 'mixed_bfloat16']) {
        for (const accumulationSteps of [1, 4]) expected.push([batchSize, policy, accumulationSteps]);
      }
    }
    const cells = expected.flatMap((axes) => [axes, axes]);
    expect(runs.map((r) => [r.batchSize, r.policy, r.accumulationSteps])).toEqual(cells);
    expect(runs.map((r) => r.cell)).toEqual(expected.flatMap((_, i) => [i, i]));
    expect(runs.map((r) => r.repeat)).toEqual(expected.flatMap(() => [0, 1]));
    // both repeats of a cell share its cell id; different cells have different ones
    expect(new Set(runs.map((r) => r.cellId)).size).toBe(12);
    for (let i = 0; i < runs.length; i += 2) expect(runs[i]!.cellId).toBe(runs[i + 1]!.cellId);
  });

  it('--json of several specs (a quoted glob) concatenates them in file order', async () => {
    const cwd = await freshDir('plan-glob');
    await copyFile(good('minimal.yaml'), join(cwd, 'b.yaml'));
    await copyFile(good('aliases.yaml'), join(cwd, 'a.yaml'));
    const result = await mpx(['plan', '--json', '*.yaml'], cwd);
    expect(result.exitCode, result.stderr).toBe(0);
    const runs = JSON.parse(result.stdout) as PlannedRun[];
    expect(runs.map((r) => r.spec)).toEqual(['aliases', 'aliases', 'minimal', 'minimal']);
  });

  it('a matrix above maxRuns → exit 2 with the hint naming --max-runs', async () => {
    const cwd = await freshDir('plan-too-many');
    const file = fixture('too-many-runs.yaml');
    const result = await mpx(['plan', file], cwd);
    expectUsageError(result, new RegExp(`${escape(file)}:\\d+:\\d+: matrix expands to 24 runs`));
    expect(result.stderr).toContain('--max-runs 24');
    expect(result.stdout).toBe('');
  });

  it('--max-runs at or above the run count lets it through; below still fails', async () => {
    const cwd = await freshDir('plan-max-runs');
    const file = fixture('too-many-runs.yaml');
    const ok = await mpx(['plan', file, '--max-runs', '24'], cwd);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/24 runs in 12 cells/);
    const low = await mpx(['plan', file, '--max-runs', '23'], cwd);
    expectUsageError(low, /--max-runs 24/);
  });
});

describe('mpx run end to end (wasm, tiny spec)', () => {
  const spec = fixture('tiny-run.yaml');
  /** Columns that depend on timing or on the process, not on the seeded computation. */
  const NONDETERMINISTIC = new Set(['step_ms', 'step_ms_spread', 'samples_per_s', 'rss_peak_bytes', 'wasm_heap_bytes']);
  let plan: PlannedRun[];
  const outputs: Array<{ exitCode?: number; stdout: string; stderr: string; dir: string; csv: string }> = [];

  beforeAll(async () => {
    const cwd = await freshDir('run');
    const planned = await mpx(['plan', '--json', spec], cwd);
    expect(planned.exitCode, planned.stderr).toBe(0);
    plan = JSON.parse(planned.stdout) as PlannedRun[];
    for (const label of ['first', 'second']) {
      const dir = join(cwd, label);
      const result = await mpx(['run', spec, '--results-dir', dir, '--jobs', '2'], cwd);
      const csvPath = join(dir, 'cli-tiny.csv');
      outputs.push({ ...result, dir, csv: existsSync(csvPath) ? await readFile(csvPath, 'utf8') : '' });
    }
  }, 60_000);

  it('plans 4 cells: 2 batch sizes × 2 policies on wasm', () => {
    expect(plan.map((r) => [r.batchSize, r.policy])).toEqual([
      [4, 'float32'],
      [4, 'mixed_float16'],
      [8, 'float32'],
      [8, 'mixed_float16'],
    ]);
  });

  it('exits 0 and writes the csv, meta.json and runs.jsonl', async () => {
    for (const { exitCode, stderr, dir } of outputs) {
      expect(exitCode, stderr).toBe(0);
      expect(stderr).not.toMatch(STACK);
      expect((await readdir(dir)).sort()).toEqual(['cli-tiny.csv', 'cli-tiny.meta.json', 'cli-tiny.runs.jsonl']);
      const meta = JSON.parse(await readFile(join(dir, 'cli-tiny.meta.json'), 'utf8')) as { runs: { ok: number; planned: number } };
      expect(meta.runs).toMatchObject({ ok: 4, planned: 4 });
      const records = (await readFile(join(dir, 'cli-tiny.runs.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { runId: string; status: string; backend: string });
      expect(records.map((r) => r.runId).sort()).toEqual(plan.map((r) => r.runId).sort());
      expect(records.every((r) => r.status === 'ok' && r.backend === 'wasm')).toBe(true);
    }
  });

  it('each finished-run line shows its peak memory, modeled on wasm; the output ends with the summary on stdout', () => {
    for (const { stdout, stderr, csv } of outputs) {
      const finished = stderr.split('\n').filter((line) => /^\[\d\/4\] ok /.test(line));
      expect(finished).toHaveLength(4);
      for (const line of finished) expect(line).toMatch(/ ms\/step {2}\d+(\.\d+)? (B|kB|MB) modeled {2}\(/);
      const rows: string[][] = parse(csv);
      const peak = rows[0]!.indexOf('peak_tf_modeled_bytes');
      const float32At4 = rows.find((r) => r[rows[0]!.indexOf('batch_size')] === '4' && r.includes('float32'))!;
      const lines = stdout.trim().split('\n');
      expect(lines[0]).toBe('cli-tiny: peak memory per cell; float32 in bytes, mixed policies as a ratio to float32');
      expect(lines[1]).toBe('  modeled: peak_tf_modeled_bytes, what TensorFlow would hold under the policy, on tfjs engines');
      expect(lines[2]).toMatch(/^ {2}tiny acc=1 +batch +4 +8$/);
      expect(lines[3]).toContain(formatBytes(Number(float32At4[peak])));
      expect(lines[4]).toMatch(/^ +mixed_float16 +\d\.\d\d× +\d\.\d\d×/);
      expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(100);
      expect(stdout).not.toContain('\u001b'); // not a TTY: no colour
    }
  });

  it('the csv header is COLUMNS in order; one ok wasm row per cell in plan order', () => {
    for (const { csv } of outputs) {
      const rows: string[][] = parse(csv, { relax_column_count: false });
      expect(rows[0]).toEqual(COLUMNS.map((c) => c.name));
      const body = rows.slice(1);
      expect(body).toHaveLength(plan.length);
      const col = (name: string) => COLUMNS.findIndex((c) => c.name === name);
      body.forEach((row, i) => {
        expect(row[col('cell')]).toBe(String(i));
        expect(row[col('cell_id')]).toBe(plan[i]!.cellId);
        expect(row[col('model')]).toBe('tiny');
        expect(row[col('batch_size')]).toBe(String(plan[i]!.batchSize));
        expect(row[col('micro_batch_size')]).toBe(String(plan[i]!.microBatchSize));
        expect(row[col('policy')]).toBe(plan[i]!.policy);
        expect(row[col('accumulation_steps')]).toBe(String(plan[i]!.accumulationSteps));
        expect(row[col('status')]).toBe('ok');
        expect(row[col('backend')]).toBe('wasm');
        expect(row[col('runs_ok')]).toBe('1/1');
        expect(row[col('reason')]).toBe('');
        expect(row[col('final_loss')]).toMatch(/^-?\d/);
        expect(row[col('eval_accuracy')]).toMatch(/^\d/);
        expect(Number(row[col('peak_bytes')])).toBeGreaterThan(0);
      });
    }
  });

  it('stderr (not a TTY) has one line per finished run and no terminal control codes', () => {
    for (const { stderr } of outputs) {
      expect(stderr).not.toContain('\u001b[');
      const finished = stderr.split('\n').filter((line) => /^\[\s*\d+\/4\] /.test(line));
      expect(finished).toHaveLength(4);
      expect(finished.every((line) => /\] ok\s/.test(line))).toBe(true);
      expect(finished.map((line) => /^\[\s*(\d+)\/4\]/.exec(line)![1]).sort()).toEqual(['1', '2', '3', '4']);
      expect(stderr).toMatch(/cli-tiny: 4\/4 runs ok/);
    }
  });

  it('two runs give byte-identical values in every deterministic column', () => {
    const [a, b] = outputs.map(({ csv }): string[][] => parse(csv));
    // a header and one row per cell on each side, so the comparison below compares something
    expect(outputs).toHaveLength(2);
    expect(a).toHaveLength(plan.length + 1);
    expect(b).toHaveLength(plan.length + 1);
    const keep = COLUMNS.map((c, i) => [c.name, i] as const).filter(([name]) => !NONDETERMINISTIC.has(name));
    const project = (rows: string[][]) => rows.map((row) => Object.fromEntries(keep.map(([name, i]) => [name, row[i]])));
    expect(project(b!)).toEqual(project(a!));
    // the measured-but-seeded columns really are there to compare
    for (const name of ['initial_loss', 'final_loss', 'eval_accuracy', 'peak_bytes', 'resting_bytes', 'params']) {
      expect(keep.map(([n]) => n)).toContain(name);
    }
  });
});

describe('backend: tensorflow without tfjs-node-gpu', () => {
  const require = createRequire(import.meta.url);
  const installed = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'].some((name) => {
    try {
      require.resolve(name);
      return true;
    } catch {
      return false;
    }
  });

  it.skipIf(installed)('run → exit 2 naming file:line of backend and the tfjs-node-gpu install hint; nothing written', async () => {
    const cwd = await freshDir('tensorflow');
    const file = fixture('tensorflow-backend.yaml');
    const text = await readFile(file, 'utf8');
    const line = text.split('\n').findIndex((l) => l.startsWith('backend:')) + 1;
    expect(line).toBeGreaterThan(0);
    const results = join(cwd, 'out');
    const result = await mpx(['run', file, '--results-dir', results], cwd);
    expectUsageError(result, new RegExp(`${escape(file)}:${line}(:\\d+)?: `));
    expect(result.stderr).toMatch(/backend tensorflow/);
    expect(result.stderr).toMatch(/hint: .*npm install @tensorflow\/tfjs-node-gpu/);
    expect(existsSync(results)).toBe(false);
    expect(await readdir(cwd)).toEqual([]);
  });
});

describe('command-line usage errors → exit 2', () => {
  const spec = good('minimal.yaml');
  it.each([
    ['an unknown option', ['plan', '--bogus', spec], /unknown option '--bogus'/],
    ['an unknown command', ['frobnicate', spec], /unknown command 'frobnicate'/],
    ['no spec for plan', ['plan'], /missing required argument 'specs'/],
    ['no spec for run', ['run', '--jobs', '1'], /missing required argument 'specs'/],
    ['no spec for validate', ['validate'], /missing required argument 'specs'/],
    ['an option without its value', ['run', spec, '--results-dir'], /argument missing|option '--results-dir <dir>'/],
    ['--jobs 0', ['run', spec, '--jobs', '0'], /--jobs must be a whole number/],
    ['--jobs not a number', ['run', spec, '--jobs', 'many'], /--jobs must be a whole number/],
    ['--max-runs not a number', ['plan', spec, '--max-runs', '1.5'], /--max-runs must be a whole number/],
  ])('%s', async (_label, args, pattern) => {
    const cwd = await freshDir('usage');
    const result = await mpx(args, cwd);
    expectUsageError(result, pattern);
    expect(await readdir(cwd)).toEqual([]);
  });

  it('--help exits 0 and lists the commands', async () => {
    const cwd = await freshDir('help');
    const result = await mpx(['--help'], cwd);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/run \[options\] <specs\.\.\.>/);
    expect(result.stdout).toMatch(/plan \[options\]/);
    expect(result.stdout).toMatch(/validate \[options\]/);
    expect(result.stdout).toMatch(/diff \[options\] <base> \[head\]/);
    expect(result.stdout).toMatch(/env \[options\]/);
    expect(result.stdout).toMatch(/report \[options\] \[sources\.\.\.\]/);
  });
});
