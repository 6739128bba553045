import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectMetadata, type MetadataInput, readProvenance } from '../../src/results/metadata.js';
import { plan, records } from './fixture.js';

const input: MetadataInput = {
  mpxVersion: '0.1.0',
  nodeVersion: 'v20.20.2',
  tfjsVersions: { '@tensorflow/tfjs-core': '4.22.0', '@tensorflow/tfjs-backend-cpu': '4.22.0' },
  os: { platform: 'linux', release: '6.8.0', arch: 'x64' },
  cpus: [{ model: 'Test CPU @ 3.0GHz ' }, { model: 'Test CPU @ 3.0GHz' }],
  gpus: [],
  provenance: { commit: 'a'.repeat(40), dirty: true },
  spec: { name: 'golden', file: 'experiments/golden.yaml', sha256: 'b'.repeat(64) },
  date: new Date(Date.UTC(2025, 0, 30, 12, 0, 0)),
  plannedRuns: plan.runs.length,
  records,
};

describe('collectMetadata', () => {
  it('summarises the inputs', () => {
    expect(collectMetadata(input)).toEqual({
      mpxVersion: '0.1.0',
      nodeVersion: 'v20.20.2',
      tfjsVersions: { '@tensorflow/tfjs-backend-cpu': '4.22.0', '@tensorflow/tfjs-core': '4.22.0' },
      backends: ['cpu', 'tensorflow', 'wasm'],
      cpu: { model: 'Test CPU @ 3.0GHz', cores: 2 },
      gpus: [],
      os: 'linux 6.8.0 x64',
      git: { commit: 'a'.repeat(40), dirty: true },
      spec: { name: 'golden', file: 'experiments/golden.yaml', sha256: 'b'.repeat(64) },
      date: '2025-01-30T12:00:00.000Z',
      runs: { planned: 24, recorded: 19, reused: 0, ok: 10, failed: 1, timeout: 4, crashed: 1, oom: 3 },
    });
  });

  it('records GPUs (name, driver, memory) and how many records were reused from an earlier run', () => {
    const gpus = [{ index: 0, name: 'NVIDIA H100 80GB HBM3', memoryTotalBytes: 85_520_809_984, driverVersion: '550.54.15' }];
    const meta = collectMetadata({ ...input, gpus, reusedRuns: 7 });
    expect(meta.gpus).toEqual([{ name: 'NVIDIA H100 80GB HBM3', driverVersion: '550.54.15', memoryTotalBytes: 85_520_809_984 }]);
    expect(meta.runs.reused).toBe(7);
  });

  it('is pure: same input, same output; no CPU info gives a null model', () => {
    expect(collectMetadata(input)).toEqual(collectMetadata(input));
    expect(collectMetadata({ ...input, cpus: [], records: [] }).cpu).toEqual({ model: null, cores: 0 });
  });
});

describe('readProvenance', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpx-provenance-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('is null outside a git repository (never throws)', async () => {
    expect(await readProvenance(tempDir())).toBeNull();
    expect(await readProvenance(join(tempDir(), 'missing'))).toBeNull();
  });

  it('reads the commit and whether tracked files changed', async () => {
    const dir = tempDir();
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: dir, stdio: 'pipe' });
    git('init', '-q');
    writeFileSync(join(dir, 'a.txt'), 'one\n');
    git('add', 'a.txt');
    git('commit', '-q', '-m', 'init');
    const commit = git('rev-parse', 'HEAD').toString().trim();

    writeFileSync(join(dir, 'untracked.csv'), 'x\n');
    expect(await readProvenance(dir)).toEqual({ commit, dirty: false });
    writeFileSync(join(dir, 'a.txt'), 'two\n');
    expect(await readProvenance(dir)).toEqual({ commit, dirty: true });
  });

  it('ignores changes under ignorePaths (the results directory), from a subdirectory too', async () => {
    const dir = tempDir();
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: dir, stdio: 'pipe' });
    git('init', '-q');
    mkdirSync(join(dir, 'results'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'results', 'a.csv'), 'one\n');
    writeFileSync(join(dir, 'spec.yaml'), 'one\n');
    git('add', '.');
    git('commit', '-q', '-m', 'init');
    writeFileSync(join(dir, 'results', 'a.csv'), 'two\n');
    expect((await readProvenance(dir))?.dirty).toBe(true);
    expect((await readProvenance(dir, { ignorePaths: ['results'] }))?.dirty).toBe(false);
    expect((await readProvenance(join(dir, 'sub'), { ignorePaths: ['../results'] }))?.dirty).toBe(false);
    expect((await readProvenance(dir, { ignorePaths: [join(dir, 'results')] }))?.dirty).toBe(false);
    // a path outside the repository is simply not excluded
    expect((await readProvenance(dir, { ignorePaths: [tempDir()] }))?.dirty).toBe(true);
    writeFileSync(join(dir, 'spec.yaml'), 'two\n');
    expect((await readProvenance(dir, { ignorePaths: ['results'] }))?.dirty).toBe(true);
  });
});
