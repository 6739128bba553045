/**
 * Capacity search end to end on the BUILT CLI (run `npx tsc -p .` first): `mpx plan` lists the searches, `mpx run`
 * finds each boundary with real wasm probes and writes `<name>.capacity.csv`, a rerun reuses every probe, a filtered
 * rerun keeps the other searches' rows, and `mpx diff` compares and gates capacity CSVs. And the committed
 * experiments/capacity.yaml replays from its recorded probes without a worker, changing no file.
 */
import { copyFile, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const SPEC = fileURLToPath(new URL('../fixtures/cli/tiny-capacity.yaml', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUDGET = 100_000;

let cwd: string;
const out = () => join(cwd, 'out');

async function mpx(...args: string[]) {
  const r = await execa(process.execPath, [CLI, ...args], { cwd, reject: false, env: { MPX_DEBUG: '' }, timeout: 120_000 });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}
const run = (...args: string[]) => mpx('run', SPEC, '--results-dir', out(), '--jobs', '2', ...args);
const readCsvText = (dir = out()) => readFile(join(dir, 'cli-capacity.capacity.csv'), 'utf8');
const rows = async (dir = out()): Promise<Record<string, string>[]> => parse<Record<string, string>>(await readCsvText(dir), { columns: true });
interface StoredRun {
  runId: string;
  status: string;
  measurements: { steps: number } | null;
}
async function records(): Promise<StoredRun[]> {
  const text = await readFile(join(out(), 'cli-capacity.runs.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as StoredRun);
}

beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'mpx-capacity-'));
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

describe('mpx plan on a capacity spec', () => {
  it('lists one search per policy with its micro-batch range, budget and metric', async () => {
    const r = await mpx('plan', SPEC);
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^spec\s+search\s+cell id\s+model\s+policy\s+accum\s+backend\s+micro batch\s+budget\s+metric$/);
    expect(lines[1]).toMatch(/^cli-capacity\s+0\s+[0-9a-f]{16}\s+tiny\s+float32\s+1\s+wasm\s+1–512\s+97\.7 KiB\s+auto$/);
    expect(lines[2]).toMatch(/^cli-capacity\s+1\s+[0-9a-f]{16}\s+tiny\s+mixed_bfloat16\s+1\s+wasm\s+1–512/);
    expect(lines.at(-1)).toBe('2 capacity searches (their probe runs are decided while they search)');
    const json = JSON.parse((await mpx('plan', '--json', SPEC)).stdout) as { kind: string; budgetBytes: number; microBatchSize: { min: number; max: number } }[];
    expect(json.map((s) => s.kind)).toEqual(['capacity-search', 'capacity-search']);
    expect(json[0]).toMatchObject({ budgetBytes: BUDGET, microBatchSize: { min: 1, max: 512 } });
  });
});

describe('mpx run on a capacity spec', () => {
  it('finds the exact boundary of each search with real probes and writes the capacity CSV', async () => {
    const r = await run();
    expect(r.exitCode, r.stderr).toBe(0);
    const [float32, mixed] = await rows();
    for (const row of [float32!, mixed!]) {
      expect(row.status).toBe('ok');
      expect(row.metric).toBe('peak_tf_modeled_bytes');
      expect(row.metric_kind).toBe('modeled');
      // the boundary: the largest batch fits, one more does not
      expect(Number(row.peak_at_max_bytes)).toBeLessThanOrEqual(BUDGET);
      expect(Number(row.peak_above_max_bytes)).toBeGreaterThan(BUDGET);
      expect(Number(row.recommended_batch_size)).toBeLessThanOrEqual(Number(row.max_batch_size));
      expect(Number(row.samples_per_s)).toBeGreaterThan(0);
    }
    // 16-bit activations: the mixed policy fits a larger batch, and says by how much
    expect(Number(mixed!.max_batch_size)).toBeGreaterThan(Number(float32!.max_batch_size));
    expect(Number(mixed!.batch_ratio_to_float32)).toBeCloseTo(Number(mixed!.max_batch_size) / Number(float32!.max_batch_size), 3);
    expect(Number(float32!.batch_ratio_to_float32)).toBe(1);

    // every probe and confirmation is a recorded run; a probe trains nothing (or is refused before a worker starts)
    const stored = await records();
    const confirmations = stored.filter((s) => s.measurements?.steps === 1);
    const probes = stored.filter((s) => s.measurements?.steps !== 1);
    expect(confirmations).toHaveLength(2);
    expect(probes.length).toBe(Number(float32!.probes) + Number(mixed!.probes));
    for (const probe of probes) expect(probe.status === 'oom' || probe.measurements?.steps === 0, JSON.stringify(probe)).toBe(true);
    expect(r.stderr).toContain(`cli-capacity: 2/2 searches done (2 ok; ${stored.length} runs new, 0 reused)`);
  });

  it('reuses every recorded probe on a rerun and leaves the CSV unchanged', async () => {
    const before = await readCsvText();
    const r = await run();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/cli-capacity: 2\/2 searches done \(2 ok; 0 runs new, \d+ reused\)/);
    expect(r.stderr).not.toMatch(/does not fit/); // no probe was run again
    expect(await readCsvText()).toBe(before);
  });

  it('a filtered, forced rerun searches only the selected cell and keeps the other row', async () => {
    const [, mixedBefore] = await rows();
    const r = await run('--filter', 'policy=float32', '--force');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('tiny float32 acc=1 wasm: largest batch');
    expect(r.stderr).not.toContain('tiny mixed_bfloat16 acc=1 wasm:');
    const after = await rows();
    expect(after).toHaveLength(2);
    expect(after[1]).toEqual(mixedBefore);
  });
});

describe('mpx diff on capacity CSVs', () => {
  it('reports a smaller largest batch and gates on it with --fail-on', async () => {
    const head = join(cwd, 'head');
    await cp(out(), head, { recursive: true });
    const csv = (await readCsvText()).split('\n');
    const header = csv[0]!.split(',');
    const max = header.indexOf('max_batch_size');
    const cells = csv[1]!.split(',');
    const base = Number(cells[max]);
    cells[max] = String(Math.floor(base * 0.8));
    csv[1] = cells.join(',');
    await writeFile(join(head, 'cli-capacity.capacity.csv'), csv.join('\n'));

    const plain = await mpx('diff', out(), head);
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(new RegExp(`tiny float32 acc=1 wasm\\s+max_batch_size\\s+${base}\\s+${Math.floor(base * 0.8)}\\s+-`));
    const gated = await mpx('diff', out(), head, '--fail-on', 'max_batch_size:-5%');
    expect(gated.exitCode).toBe(1);
    expect(gated.stdout).toMatch(/FAIL\s+tiny float32 acc=1 wasm\s+max_batch_size/);
  });
});

describe('mpx run of the committed capacity spec, every probe recorded', () => {
  let project: string;
  beforeAll(async () => {
    project = join(cwd, 'project');
    await mkdir(join(project, 'experiments'), { recursive: true });
    await mkdir(join(project, 'results'));
    await copyFile(join(ROOT, 'experiments/capacity.yaml'), join(project, 'experiments/capacity.yaml'));
    for (const ext of ['capacity.csv', 'runs.jsonl', 'meta.json']) await copyFile(join(ROOT, `results/capacity.${ext}`), join(project, `results/capacity.${ext}`));
  });

  /** The results directory, file name → text. */
  async function results(): Promise<Record<string, string>> {
    const names = (await readdir(join(project, 'results'))).sort();
    const texts = await Promise.all(names.map((name) => readFile(join(project, 'results', name), 'utf8')));
    return Object.fromEntries(names.map((name, i) => [name, texts[i]!]));
  }
  const replay = async (...args: string[]) => {
    const r = await execa(process.execPath, [CLI, 'run', 'experiments/capacity.yaml', ...args], { cwd: project, reject: false, env: { MPX_DEBUG: '' }, timeout: 60_000 });
    return { exitCode: r.exitCode, summary: String(r.stderr).split('\n').find((line) => line.startsWith('mpx: capacity: ') && line.includes('searches done')) };
  };

  it('replays every search from its records and leaves the results as committed, meta.json included', async () => {
    const before = await results();
    const { exitCode, summary } = await replay();
    expect(exitCode).toBe(0);
    // results/capacity.runs.jsonl holds 65 records, every one used
    expect(summary).toBe('mpx: capacity: 12/12 searches done (10 ok, 2 oom; 0 runs new, 65 reused) results/capacity.capacity.csv unchanged');
    expect(await results()).toEqual(before);
  });

  it('--filter counts only the searches it ran and keeps the others', async () => {
    const before = await results();
    const { exitCode, summary } = await replay('--filter', 'model=cnn');
    expect(exitCode).toBe(0);
    expect(summary).toBe('mpx: capacity: 6/6 searches done (6 ok; 0 runs new, 32 reused) results/capacity.capacity.csv unchanged');
    expect(await results()).toEqual(before);
  });
});
