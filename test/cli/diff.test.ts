/**
 * `mpx diff` end to end on the BUILT CLI (run `npx tsc -p .` first), in a scratch git repository with two commits of
 * results: sides as CSV files, directories, git refs and REF:PATH; the three formats; --fail-on exit codes; bad input.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const HEADER = 'cell,cell_id,model,batch_size,micro_batch_size,policy,accumulation_steps,status,reason,step_ms,step_ms_spread,final_loss,eval_accuracy,peak_bytes';

const V1 = {
  'results/seed.csv': [
    HEADER,
    '0,aaaa,mlp,16,16,float32,1,ok,,10,,0.5,0.75,1000',
    '1,bbbb,mlp,16,16,mixed_float16,1,ok,,20,,0.51,0.75,1000',
    '2,cccc,cnn,16,16,float32,1,ok,,30,,0.6,0.7,5000',
  ],
  'results/other.csv': [HEADER, '0,dddd,mlp,8,8,float32,1,ok,,1,,0.25,0.5,100'],
};
/** Commit 2: peak +6% in one cell, a timing change within noise, a cell added, one removed. */
const V2 = {
  'results/seed.csv': [
    HEADER,
    '0,aaaa,mlp,16,16,float32,1,ok,,10.5,,0.5,0.75,1060',
    '1,bbbb,mlp,16,16,mixed_float16,1,ok,,20,,0.51,0.75,1000',
    '3,eeee,cnn,64,64,float32,1,ok,,40,,0.4,0.8,9000',
  ],
  'results/other.csv': V1['results/other.csv'],
};
/** Working tree: a further drop in throughput-ish time, peak back to the base. */
const WORKING = {
  'results/seed.csv': [
    HEADER,
    '0,aaaa,mlp,16,16,float32,1,ok,,10,,0.5,0.75,1000',
    '1,bbbb,mlp,16,16,mixed_float16,1,ok,,30,,0.51,0.75,1000',
    '2,cccc,cnn,16,16,float32,1,ok,,30,,0.6,0.7,5000',
  ],
};

let repo: string;
let outside: string;
const git = (...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'commit.gpgsign=false', ...args], { cwd: repo, stdio: 'pipe' }).toString();

async function writeFiles(files: { [path: string]: string[] }): Promise<void> {
  for (const [path, lines] of Object.entries(files)) {
    await mkdir(join(repo, path, '..'), { recursive: true });
    await writeFile(join(repo, path), `${lines.join('\n')}\n`);
  }
}

async function mpx(args: string[], cwd = repo) {
  const r = await execa(process.execPath, [CLI, 'diff', ...args], { cwd, reject: false, env: { MPX_DEBUG: '' }, timeout: 30_000 });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p .)`);
  repo = await mkdtemp(join(tmpdir(), 'mpx-diff-'));
  outside = await mkdtemp(join(tmpdir(), 'mpx-diff-outside-'));
  git('init', '-q', '-b', 'main');
  await writeFiles(V1);
  await writeFile(join(repo, 'results', 'seed.meta.json'), JSON.stringify({ cpu: { model: 'AMD EPYC', cores: 2 }, git: { commit: 'a'.repeat(40), dirty: false } }));
  git('add', '.');
  git('commit', '-q', '-m', 'v1');
  git('checkout', '-q', '-b', 'feature');
  await writeFiles(V2);
  await writeFile(join(repo, 'results', 'seed.meta.json'), JSON.stringify({ cpu: { model: 'Intel Xeon', cores: 4 }, git: { commit: 'b'.repeat(40), dirty: true } }));
  git('add', '.');
  git('commit', '-q', '-m', 'v2');
  await writeFiles(WORKING);
  await mkdir(join(repo, 'sub'));
});
afterAll(async () => {
  await rm(repo, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

describe('mpx diff: git refs (no checkout)', () => {
  it('main vs feature: matched cells, added/removed, noise, environment; exit 0 without --fail-on', async () => {
    const before = git('status', '--porcelain');
    const r = await mpx(['main', 'feature']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('mpx diff: main:results → feature:results');
    expect(r.stdout).toMatch(/\*\s+mlp bs=16 float32 acc=1\s+peak_bytes\s+1000\s+1060\s+\+6\.00%\s+exact metric/);
    expect(r.stdout).toMatch(/~\s+mlp bs=16 float32 acc=1\s+step_ms\s+10\s+10\.5\s+\+5\.00%\s+noise \(±10%\)/);
    expect(r.stdout).toContain('added:   cnn bs=64 float32 acc=1');
    expect(r.stdout).toContain('removed: cnn bs=16 float32 acc=1');
    expect(r.stdout).toContain('different environment: cpu AMD EPYC → Intel Xeon; cores 2 → 4');
    expect(r.stdout).toContain('other: main:results/other.csv → feature:results/other.csv');
    expect(r.stdout).toContain('no change in 1 matched cell');
    // the working tree and HEAD are untouched
    expect(git('status', '--porcelain')).toBe(before);
    expect(git('rev-parse', '--abbrev-ref', 'HEAD').trim()).toBe('feature');
  });

  it('mpx diff <ref> compares that ref with the working tree results', async () => {
    const r = await mpx(['HEAD']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('mpx diff: HEAD:results → results');
    expect(r.stdout).toMatch(/mlp bs=16 float32 acc=1\s+peak_bytes\s+1060\s+1000\s+-5\.66%/);
    expect(r.stdout).toMatch(/mlp bs=16 mixed_float16 acc=1\s+step_ms\s+20\s+30\s+\+50\.0%/);
  });

  it('--fail-on: exit 1 when exceeded (only in its direction), 0 when not', async () => {
    const up = await mpx(['main', 'feature', '--fail-on', 'peak_bytes:+5%']);
    expect(up.exitCode).toBe(1);
    expect(up.stdout).toMatch(/FAIL\s+mlp bs=16 float32 acc=1\s+peak_bytes.*exceeds peak_bytes:\+5%/);
    expect(up.stdout).toContain('1 threshold exceeded:');
    expect(up.stderr).toContain('mpx: 1 --fail-on threshold(s) exceeded');
    expect((await mpx(['main', 'feature', '--fail-on', 'peak_bytes:+10%'])).exitCode).toBe(0);
    expect((await mpx(['main', 'feature', '--fail-on', 'peak_bytes:-5%'])).exitCode).toBe(0);
    // a change within noise never fails: step_ms +5% is inside the ±10% timing band
    expect((await mpx(['main', 'feature', '--fail-on', 'step_ms:+1%'])).exitCode).toBe(0);
    // ...unless the band is narrowed
    expect((await mpx(['main', 'feature', '--fail-on', 'step_ms:+1%', '--tolerance', 'timing=2%'])).exitCode).toBe(1);
    // the spelling of the throughput metric is accepted
    expect((await mpx(['main', 'feature', '--fail-on', 'samples_per_second:-10%'])).exitCode).toBe(0);
  });

  it('REF:PATH reads one file at a ref; paired with the same-named working-tree file', async () => {
    const r = await mpx(['main:results/seed.csv', 'results/seed.csv']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('seed: main:results/seed.csv (aaaaaaa) → results/seed.csv (bbbbbbb, dirty)');
    expect(r.stdout).toMatch(/mlp bs=16 mixed_float16 acc=1\s+step_ms\s+20\s+30\s+\+50\.0%/);
    expect(r.stdout).toContain('3 cells compared in 1 spec');
    expect(r.stdout).not.toContain('other');
  });

  it('works from a subdirectory with --results-dir ../results', async () => {
    const r = await mpx(['main', '--results-dir', '../results'], join(repo, 'sub'));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('mpx diff: main:../results → ../results');
  });

  it('a ref without the results directory: every table is new', async () => {
    const empty = await mpx(['main', 'results', '--results-dir', 'nothing-here']);
    expect(empty.exitCode, empty.stderr).toBe(0);
    expect(empty.stdout).toContain('seed: new, 3 cells in results/seed.csv');
  });
});

describe('mpx diff: files and directories', () => {
  it('two CSV files are compared whatever their names', async () => {
    const r = await mpx(['results/other.csv', 'results/seed.csv']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('added:   mlp bs=16 float32 acc=1, mlp bs=16 mixed_float16 acc=1, cnn bs=16 float32 acc=1');
  });

  it('--format markdown: a PR comment with the threshold table and noise in <details>', async () => {
    const r = await mpx(['main', 'feature', '--format', 'markdown', '--fail-on', 'peak_bytes:+5%']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^### mpx diff: `main:results` → `feature:results`\n/);
    expect(r.stdout).toContain('| ❌ | seed | mlp bs=16 float32 acc=1 | `peak_bytes` | 1000 | 1060 | +6.00% | `peak_bytes:+5%` |');
    expect(r.stdout).toContain('<details><summary>1 value within noise</summary>');
    expect(r.stdout).toContain('**Added cells:** `cnn bs=64 float32 acc=1`');
    expect(r.stdout).toContain('**Removed cells:** `cnn bs=16 float32 acc=1`');
  });

  it('--format json: the whole diff for tools', async () => {
    const r = await mpx(['main', 'feature', '--format', 'json']);
    expect(r.exitCode).toBe(0);
    const json = JSON.parse(r.stdout) as {
      version: number;
      summary: { cellsCompared: number; cellsAdded: number; cellsRemoved: number };
      tables: Array<{ name: string; rows: Array<{ metrics: Array<{ metric: string; base: number; head: number; relative: number; verdict: string }> }> }>;
    };
    expect(json.version).toBe(1);
    expect(json.summary).toMatchObject({ cellsCompared: 3, cellsAdded: 1, cellsRemoved: 1 });
    const peak = json.tables.find((t) => t.name === 'seed')!.rows[0]!.metrics.find((m) => m.metric === 'peak_bytes');
    expect(peak).toMatchObject({ base: 1000, head: 1060, verdict: 'changed' });
    expect(peak!.relative).toBeCloseTo(0.06, 10);
  });

  it('a directory against a directory compares every CSV by name', async () => {
    const copy = join(outside, 'copy');
    await mkdir(copy);
    await writeFile(join(copy, 'seed.csv'), `${WORKING['results/seed.csv'].join('\n')}\n`);
    const r = await mpx(['results', copy]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`seed: results/seed.csv (bbbbbbb, dirty) → ${join(copy, 'seed.csv')}`);
    expect(r.stdout).toContain('no change in 3 matched cells');
    expect(r.stdout).toContain('other: removed (1 cell in results/other.csv)');
  });
});

describe('mpx diff: bad input → exit 2', () => {
  it.each([
    [['no-such-ref'], /no-such-ref is neither a file, a directory nor a git ref/],
    [['main', '--fail-on', 'peak_byte:+5%'], /"peak_byte" is not a metric[\s\S]*did you mean "peak_bytes"\?/],
    [['main', '--fail-on', 'peak_bytes'], /expected <metric>:<threshold>/],
    [['main', '--tolerance', 'timming=5%'], /did you mean "timing"\?/],
    [['main', '--format', 'xml'], /argument 'xml' is invalid\. Allowed choices are terminal, markdown, json/],
    [['main:results/missing.csv'], /results\/missing\.csv does not exist at main/],
    [['main', '--results-dir', 'not-there'], /not-there does not exist/],
  ])('%j', async (args, pattern) => {
    const r = await mpx(args);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at |internal error/);
  });

  it('a file that is not a results CSV', async () => {
    await writeFile(join(outside, 'notes.csv'), 'a,b\n1,2\n');
    await writeFile(join(outside, 'notes.txt'), 'hello\n');
    const csv = await mpx([join(outside, 'notes.csv'), 'results/seed.csv']);
    expect(csv.exitCode).toBe(2);
    expect(csv.stderr).toMatch(/notes\.csv is not an mpx results CSV/);
    const txt = await mpx([join(outside, 'notes.txt'), 'results/seed.csv']);
    expect(txt.exitCode).toBe(2);
    expect(txt.stderr).toMatch(/notes\.txt is not a results CSV/);
  });

  it('a ref outside a git repository says so', async () => {
    const r = await mpx(['main', 'main'], outside);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/main is neither a file, a directory nor a git ref \(and this is not a git repository\)/);
  });
});
