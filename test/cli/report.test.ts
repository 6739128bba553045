/**
 * `mpx report` end to end with the BUILT CLI (run `npx tsc -p .` first): every kind of source (spec, results CSV,
 * results directory, git ref), where reports go, the budget, and bad input (exit 2, no stack, nothing written).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/cli/main.js');
const FIXTURE = join(ROOT, 'test/fixtures/results/report');
const SPEC_PATH = 'test/fixtures/results/report/report-fixture.yaml'; // as the fixture's meta.json names it
const STACK = /\n\s+at /;

let work: string;
let count = 0;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p .)`);
  work = await mkdtemp(join(tmpdir(), 'mpx-report-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A project with the fixture spec where its meta.json says, and its results (and capacity CSV) in results/. */
async function project(): Promise<string> {
  const dir = join(work, `p${count++}`);
  await mkdir(join(dir, 'results'), { recursive: true });
  await mkdir(join(dir, 'test/fixtures/results/report'), { recursive: true });
  await copyFile(join(FIXTURE, 'report-fixture.yaml'), join(dir, SPEC_PATH));
  for (const file of ['report-fixture.csv', 'report-fixture.meta.json', 'report-fixture.capacity.csv']) await copyFile(join(FIXTURE, file), join(dir, 'results', file));
  return dir;
}

async function mpx(args: string[], cwd: string) {
  const r = await execa(process.execPath, [CLI, 'report', ...args], { cwd, reject: false, env: { MPX_DEBUG: '' }, timeout: 60_000 });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

describe('mpx report', () => {
  it('a spec: writes results/<name>.md and .html beside its results, prints the summary, exit 0', async () => {
    const cwd = await project();
    const r = await mpx([SPEC_PATH], cwd);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr.trim()).toBe('mpx: report-fixture: report → results/report-fixture.md, results/report-fixture.html');
    expect(r.stdout.split('\n')[0]).toBe('report-fixture: peak memory per cell; float32 in bytes, mixed policies as a ratio to float32');
    const files = await readdir(join(cwd, 'results'));
    expect(files.filter((f) => /\.(md|html)$/.test(f)).sort()).toEqual(['report-fixture.html', 'report-fixture.md']);
    expect(files.some((f) => f.endsWith('.tmp'))).toBe(false);
    const md = await readFile(join(cwd, 'results/report-fixture.md'), 'utf8');
    // the spec's description, its memoryLimit as the budget, the capacity CSV beside the results
    expect(md).toContain('> Report fixture: the seed-claims MLP and CNN');
    expect(md).toContain('The budget (150.0 MB)');
    expect(md).toContain('## Capacity: the largest batch that fits the budget');
    expect(await readFile(join(cwd, 'results/report-fixture.html'), 'utf8')).toMatch(/^<!doctype html>/);
  });

  it('no source: every results CSV of the results directory (a capacity CSV is not one); the spec found through meta.json', async () => {
    const cwd = await project();
    const r = await mpx([], cwd);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual(['mpx: report-fixture: report → results/report-fixture.md, results/report-fixture.html']);
    expect(await readFile(join(cwd, 'results/report-fixture.md'), 'utf8')).toContain('> Report fixture:');
  });

  it('a results CSV with --out-dir and --budget', async () => {
    const cwd = await project();
    const r = await mpx(['results/report-fixture.csv', '--out-dir', 'out', '--budget', '50MB'], cwd);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await readdir(join(cwd, 'out'))).sort()).toEqual(['report-fixture.html', 'report-fixture.md']);
    expect(await readFile(join(cwd, 'out/report-fixture.md'), 'utf8')).toContain('🟥 budget (50.00 MB)');
  });

  it('a git ref: the results as committed there, written into the results directory', async () => {
    const cwd = await project();
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'commit.gpgsign=false', ...args], { cwd, stdio: 'pipe' });
    git('init', '-q', '-b', 'main');
    git('add', '.');
    git('commit', '-q', '-m', 'results');
    await writeFile(join(cwd, 'results/report-fixture.csv'), 'not,a,results,csv\n');
    const r = await mpx(['main', '--out-dir', 'from-main'], cwd);
    expect(r.exitCode, r.stderr).toBe(0);
    const md = await readFile(join(cwd, 'from-main/report-fixture.md'), 'utf8');
    expect(md).toContain('from `main:results/report-fixture.csv`');
    expect(md).toContain('| cnn | 1 | wasm (modeled) | float32 | 5.956 MB |');
  });

  it('a capacity CSV alone (a spec that only searches capacity): its table, chart and terminal lines', async () => {
    const cwd = await project();
    await rm(join(cwd, 'results/report-fixture.csv'));
    const r = await mpx([], cwd);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.split('\n')).toEqual([
      'report-fixture: largest batch that fits (modeled peak_tf_modeled_bytes, budget 150.0 MB)',
      '  wide-mlp float32 acc=1 wasm: at least 4096, recommended 4096',
      '  wide-mlp mixed_bfloat16 acc=1 wasm: at least 4096 (1.00× float32), recommended 4096',
      '  cnn float32 acc=1 wasm: 481, recommended 456',
      '  cnn mixed_bfloat16 acc=1 wasm: 963 (2.00× float32), recommended 914',
    ]);
    const md = await readFile(join(cwd, 'results/report-fixture.md'), 'utf8');
    expect(md).toContain('## Capacity: the largest batch that fits the budget');
    expect(md).not.toContain('## Peak memory by batch size');
    expect(md).not.toContain('No results yet');
    const html = await readFile(join(cwd, 'results/report-fixture.html'), 'utf8');
    expect([...html.matchAll(/data-chart="(\w+)"/g)].map((m) => m[1])).toEqual(['capacity']);
  });

  it.each([
    ['a spec without results', (cwd: string) => Promise.all(['csv', 'capacity.csv'].map((e) => rm(join(cwd, `results/report-fixture.${e}`)))), [SPEC_PATH], /results\/report-fixture\.csv does not exist: the spec .* has no results yet\n\s+hint: run it first: mpx run /],
    ['a bad --budget', () => Promise.resolve(), ['--budget', 'lots'], /--budget must be a size such as/],
    ['a source that is nothing', () => Promise.resolve(), ['no-such-thing'], /no-such-thing is neither a file, a directory nor a git ref/],
    ['a glob that matches nothing', () => Promise.resolve(), ['experiments/*.yaml'], /the pattern experiments\/\*\.yaml matches no file/],
    ['a spec with an error', (cwd: string) => writeFile(join(cwd, 'bad.yaml'), 'name: x\nseeds: 1\n'), ['bad.yaml'], /bad\.yaml:\d+:\d+: /],
  ])('%s: exit 2, a message without a stack, nothing written', async (_label, prepare, args, message) => {
    const cwd = await project();
    await prepare(cwd);
    const r = await mpx(args, cwd);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(STACK);
    expect((await readdir(join(cwd, 'results'))).filter((f) => /\.(md|html)$/.test(f))).toEqual([]);
  });
});
