/**
 * `mpx run` of a capacity spec whose probes are all recorded, on the BUILT CLI (run `npx tsc -p .` first): the
 * committed experiments/capacity.yaml and its results replay without starting a worker, change no file, and a
 * --filter run counts only the searches it ran.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let cwd: string;
beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p .)`);
  cwd = await mkdtemp(join(tmpdir(), 'mpx-capacity-cli-'));
  await mkdir(join(cwd, 'experiments'));
  await mkdir(join(cwd, 'results'));
  await copyFile(join(ROOT, 'experiments/capacity.yaml'), join(cwd, 'experiments/capacity.yaml'));
  for (const ext of ['capacity.csv', 'runs.jsonl', 'meta.json']) await copyFile(join(ROOT, `results/capacity.${ext}`), join(cwd, `results/capacity.${ext}`));
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

/** The results directory, file name → text. */
async function results(): Promise<Record<string, string>> {
  const names = (await readdir(join(cwd, 'results'))).sort();
  const texts = await Promise.all(names.map((name) => readFile(join(cwd, 'results', name), 'utf8')));
  return Object.fromEntries(names.map((name, i) => [name, texts[i]!]));
}
const mpx = async (...args: string[]) => {
  const r = await execa(process.execPath, [CLI, 'run', 'experiments/capacity.yaml', ...args], { cwd, reject: false, env: { MPX_DEBUG: '' }, timeout: 60_000 });
  return { exitCode: r.exitCode, stderr: String(r.stderr) };
};
const summaryLine = (stderr: string) => stderr.split('\n').find((line) => line.startsWith('mpx: capacity: ') && line.includes('searches done'));

describe('mpx run of a recorded capacity spec', () => {
  it('replays every search from its records and leaves the results as committed', async () => {
    const before = await results();
    const { exitCode, stderr } = await mpx();
    expect(exitCode).toBe(0);
    // results/capacity.runs.jsonl holds 65 records, every one used
    expect(summaryLine(stderr)).toBe('mpx: capacity: 12/12 searches done (10 ok, 2 oom; 0 runs new, 65 reused) results/capacity.capacity.csv unchanged');
    expect(await results()).toEqual(before);
  });

  it('--filter counts only the searches it ran and keeps the others', async () => {
    const before = await results();
    const { exitCode, stderr } = await mpx('--filter', 'model=cnn');
    expect(exitCode).toBe(0);
    expect(summaryLine(stderr)).toBe('mpx: capacity: 6/6 searches done (6 ok; 0 runs new, 32 reused) results/capacity.capacity.csv unchanged');
    expect(await results()).toEqual(before);
  });
});
