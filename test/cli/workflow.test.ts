/**
 * The example GitHub Actions workflow (.github/workflows/mpx.yml): its shape, and its `run:` scripts executed for real
 * (with `npx mpx` → the BUILT CLI; run `npx tsc -p .` first) in a scratch repository whose `origin/main` plays the
 * base branch — validate every spec, run the CI spec, diff against the base through git, gate on exit codes.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/cli/main.js');

interface Step {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: { [key: string]: unknown };
}
interface Workflow {
  on: { pull_request?: unknown };
  permissions: { [key: string]: string };
  jobs: { [name: string]: { steps: Step[] } };
}

const workflow = parse(readFileSync(join(ROOT, '.github/workflows/mpx.yml'), 'utf8')) as Workflow;
const steps = Object.values(workflow.jobs)[0]!.steps;
const mpxSteps = steps.filter((s) => s.run?.includes('npx mpx'));
const step = (pattern: RegExp) => {
  const found = mpxSteps.find((s) => pattern.test(s.run ?? ''));
  if (!found) throw new Error(`no workflow step runs ${pattern}`);
  return found;
};

describe('the workflow file', () => {
  it('runs on pull requests, with full history, Node 20 and npm ci (which builds dist/ through prepare)', () => {
    expect(workflow.on).toHaveProperty('pull_request');
    expect(workflow.permissions['pull-requests']).toBe('write');
    const checkout = steps.find((s) => s.uses?.startsWith('actions/checkout@'));
    expect(checkout?.with?.['fetch-depth']).toBe(0);
    const node = steps.find((s) => s.uses?.startsWith('actions/setup-node@'));
    expect(String(node?.with?.['node-version'])).toBe('20');
    expect(steps.some((s) => s.run?.trim() === 'npm ci')).toBe(true);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; bin: { mpx: string }; scripts: { prepare: string } };
    // `npx mpx` inside this package runs its own bin
    expect(pkg.name).toBe('mpx');
    expect(pkg.bin.mpx).toBe('dist/cli/main.js');
    expect(pkg.scripts.prepare).toMatch(/build/);
  });

  it('calls exactly four mpx commands: validate, run of the CI spec, diff against the base branch as Markdown, report', () => {
    expect(mpxSteps.map((s) => /npx mpx (\w+)/.exec(s.run!)![1])).toEqual(['validate', 'run', 'diff', 'report']);
    expect(step(/mpx run/).run).toContain('experiments/ci/smoke.yaml');
    expect(step(/mpx diff/).run).toMatch(/npx mpx diff "origin\/\$GITHUB_BASE_REF" --format markdown/);
    expect(step(/mpx report/).run).toContain('npx mpx report results/ci-smoke.csv $changed --out-dir mpx-report');
  });

  it('posts the diff and the charts as a PR comment, uploads the reports, then fails the job when a threshold was exceeded', () => {
    const diffIndex = steps.indexOf(step(/mpx diff/));
    const reportIndex = steps.indexOf(step(/mpx report/));
    const upload = steps.findIndex((s) => s.uses?.startsWith('actions/upload-artifact@') && s.with?.path === 'mpx-report/');
    const comment = steps.findIndex((s) => s.uses?.startsWith('actions/github-script@') && String(s.with?.script).includes("readFileSync('comment.md'"));
    const gate = steps.findIndex((s) => s.if?.includes(`steps.${step(/mpx diff/).id}.outputs.exit`));
    expect(diffIndex).toBeGreaterThan(-1);
    expect(reportIndex).toBeGreaterThan(diffIndex);
    expect(upload).toBeGreaterThan(reportIndex);
    expect(comment).toBeGreaterThan(reportIndex);
    expect(gate).toBeGreaterThan(Math.max(comment, upload));
  });

  it('the CI spec is outside the quick start\'s experiments/*.yaml', () => {
    expect(existsSync(join(ROOT, 'experiments/ci/smoke.yaml'))).toBe(true);
    expect(existsSync(join(ROOT, 'experiments/smoke.yaml'))).toBe(false);
  });
});

describe('the workflow\'s commands, run in a scratch repository', () => {
  let repo: string;
  let output: string;
  let summary: string;
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'commit.gpgsign=false', ...args], { cwd: repo, stdio: 'pipe' }).toString();

  /** Runs a step's script as Actions does (bash -eo pipefail), with `npx mpx` → the built CLI. */
  async function runStep(s: Step) {
    const script = s.run!.replaceAll('npx mpx', `node ${JSON.stringify(CLI)}`);
    const r = await execa('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', script], {
      cwd: repo,
      reject: false,
      env: { GITHUB_BASE_REF: 'main', GITHUB_OUTPUT: output, GITHUB_STEP_SUMMARY: summary, MPX_DEBUG: '' },
      timeout: 60_000,
    });
    return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  }
  const outputs = async () => (await readFile(output, 'utf8')).trim().split('\n');
  /** Makes the current commit the base branch, as actions/checkout with fetch-depth 0 leaves it. */
  const setBase = () => git('update-ref', 'refs/remotes/origin/main', 'HEAD');

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p .)`);
    repo = await mkdtemp(join(tmpdir(), 'mpx-workflow-'));
    output = join(repo, '..', `${repo.split(/[\\/]/).pop()}-output`);
    summary = `${output}-summary`;
    await writeFile(output, '');
    await cp(join(ROOT, 'experiments'), join(repo, 'experiments'), { recursive: true });
    await writeFile(join(repo, '.gitignore'), 'diff.md\ncharts.md\ncomment.md\nmpx-report/\n');
    git('init', '-q', '-b', 'main');
    git('add', '.');
    git('commit', '-q', '-m', 'base without results');
    setBase();
    git('checkout', '-q', '-b', 'pr');
  });
  afterAll(async () => {
    await rm(repo, { recursive: true, force: true });
    await rm(output, { force: true });
    await rm(summary, { force: true });
  });

  it('validate: every spec under experiments/ (the CI spec included) is valid', async () => {
    const r = await runStep(step(/mpx validate/));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('experiments/ci/smoke.yaml: ok (4 cells, 8 runs)');
  });

  it('run: the CI spec runs in seconds and writes results/ci-smoke.*', async () => {
    const started = performance.now();
    const r = await runStep(step(/mpx run/));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('ci-smoke: 8/8 runs ok');
    expect(performance.now() - started).toBeLessThan(20_000);
    expect(existsSync(join(repo, 'results/ci-smoke.csv'))).toBe(true);
  });

  it('diff against a base without results: the table is new, exit 0, the summary gets the Markdown', async () => {
    const r = await runStep(step(/mpx diff/));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await outputs()).toEqual(['exit=0']);
    const md = await readFile(join(repo, 'diff.md'), 'utf8');
    expect(md).toContain('### mpx diff: `origin/main:results` → `results`');
    expect(md).toContain('#### ci-smoke — new (4 cells) in `results/ci-smoke.csv`');
    expect(await readFile(summary, 'utf8')).toBe(md);
  });

  it('diff against a base with the same results: no change beyond noise, exit 0', async () => {
    git('add', 'results');
    git('commit', '-q', '-m', 'results');
    setBase();
    await writeFile(output, '');
    const r = await runStep(step(/mpx diff/));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await outputs()).toEqual(['exit=0']);
    const md = await readFile(join(repo, 'diff.md'), 'utf8');
    expect(md).toContain('✅ no change');
    expect(md).toContain('No change beyond noise in 4 matched cells.');
  });

  it.each(['peak_bytes', 'peak_tf_modeled_bytes'])('diff against a base whose %s were 10%% lower: exit=1 recorded for the gate step, ❌ in the comment', async (metric) => {
    const csvPath = join(repo, 'results/ci-smoke.csv');
    const current = await readFile(csvPath, 'utf8');
    const [header, ...rows] = current.trim().split('\n');
    const peak = header!.split(',').indexOf(metric);
    const lowered = rows.map((row) => row.split(',').map((v, i) => (i === peak ? String(Math.round(Number(v) / 1.1)) : v)).join(','));
    await writeFile(csvPath, `${[header, ...lowered].join('\n')}\n`);
    git('commit', '-q', '-am', 'a base that used less memory');
    setBase();
    await writeFile(csvPath, current); // the PR's results: back to the measured ones
    await writeFile(output, '');
    const r = await runStep(step(/mpx diff/));
    expect(r.exitCode, r.stderr).toBe(0); // the step itself passes, so the comment is still posted
    expect(await outputs()).toEqual(['exit=1']);
    const md = await readFile(join(repo, 'diff.md'), 'utf8');
    expect(md).toContain('**4 thresholds exceeded**');
    expect(md).toMatch(new RegExp(`\\| ❌ \\| ci-smoke \\| mlp bs=8 float32 acc=1 wasm \\| \`${metric}\` \\| \\d+ \\| \\d+ \\| \\+10\\.0\\d*%`));
  });

  it('report: the comment is the diff, then the charts of ci-smoke and of every other results CSV the PR changed; HTML for the artifact', async () => {
    // the pull request also adds results of another spec, with capacity searches (charted beside its peaks)
    await cp(join(repo, 'results/ci-smoke.csv'), join(repo, 'results/extra.csv'));
    await cp(join(ROOT, 'test/fixtures/results/report/report-fixture.capacity.csv'), join(repo, 'results/extra.capacity.csv'));
    git('add', 'results/extra.csv', 'results/extra.capacity.csv');
    git('commit', '-q', '-m', 'extra results');
    await writeFile(summary, '');
    expect((await runStep(step(/mpx diff/))).exitCode).toBe(0);
    const r = await runStep(step(/mpx report/));
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await readdir(join(repo, 'mpx-report'))).sort()).toEqual(['ci-smoke.html', 'ci-smoke.md', 'extra.html', 'extra.md']);
    const diff = await readFile(join(repo, 'diff.md'), 'utf8');
    const comment = await readFile(join(repo, 'comment.md'), 'utf8');
    expect(comment.startsWith(diff)).toBe(true);
    const charts = comment.slice(diff.length);
    expect(charts.match(/^<!-- mpx:charts:start -->$/gm)).toHaveLength(2);
    expect(charts).toContain('### ci-smoke: peak memory vs batch size');
    expect(charts).toContain('### extra: peak memory vs batch size');
    expect(charts).toContain('### extra: largest batch that fits the budget');
    expect(charts.match(/^```mermaid$/gm)).toHaveLength(3);
    expect(charts).not.toContain('## Provenance'); // only the charts section of each report
    expect(await readFile(summary, 'utf8')).toBe(`${diff}${charts}`);
    expect(await readFile(join(repo, 'mpx-report/extra.html'), 'utf8')).toContain('data-chart="peak"');
  });

  it('bad input stops the step itself (exit 2)', async () => {
    const broken = step(/mpx diff/).run!.replace('origin/$GITHUB_BASE_REF', 'origin/no-such-branch');
    await writeFile(output, '');
    const r = await runStep({ run: broken });
    expect(r.exitCode).toBe(2);
    expect(await outputs()).toEqual(['exit=2']);
  });
});
