import { parse } from 'csv-parse/sync';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { aggregateCells } from '../../src/results/aggregate.js';
import { COLUMNS } from '../../src/results/columns.js';
import { collectMetadata } from '../../src/results/metadata.js';
import { aggregateCapacity, CAPACITY_COLUMNS } from '../../src/results/capacity.js';
import { assertResultsDirWritable, hasSameCapacityResults, hasSameResults, readRunRecords, renderCapacityResults, renderResults, writeCapacityResults, writeResults, type CapacityBundle } from '../../src/results/store.js';
import type { StoredRecord } from '../../src/runner/protocol.js';
import { capacitySpec, linear, searchAll } from './capacity-fixture.js';
import { plan, records } from './fixture.js';
import { mpxErrorOf } from '../helpers/mpx-error.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mpx-store-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const metadata = collectMetadata({
  mpxVersion: '0.1.0',
  nodeVersion: 'v20.20.2',
  tfjsVersions: { '@tensorflow/tfjs-core': '4.22.0' },
  os: { platform: 'linux', release: '6.8.0', arch: 'x64' },
  cpus: [{ model: 'Test CPU' }],
  gpus: [],
  provenance: null,
  spec: { name: 'golden', file: 'experiments/golden.yaml', sha256: 'b'.repeat(64) },
  date: new Date(Date.UTC(2025, 0, 30)),
  plannedRuns: plan.runs.length,
  records,
});
const bundle = { rows: aggregateCells(plan, records), records: [...records].reverse(), metadata };


describe('writeResults', () => {
  it('creates the directory, writes the three files and leaves no temp file', () => {
    const dir = join(tempDir(), 'results', 'nested');
    const paths = writeResults(dir, 'golden', bundle);
    expect(paths).toEqual({
      csv: join(dir, 'golden.csv'),
      meta: join(dir, 'golden.meta.json'),
      runs: join(dir, 'golden.runs.jsonl'),
    });
    expect(readdirSync(dir).sort()).toEqual(['golden.csv', 'golden.meta.json', 'golden.runs.jsonl']);

    const csv: string[][] = parse(readFileSync(paths.csv, 'utf8'));
    expect(csv[0]).toEqual(COLUMNS.map((c) => c.name));
    expect(csv).toHaveLength(1 + bundle.rows.length);

    const meta = readFileSync(paths.meta, 'utf8');
    expect(JSON.parse(meta)).toEqual(metadata);
    expect(meta).toMatch(/^\{\n {2}"backends"/); // pretty, keys sorted
  });

  it('writes runs.jsonl in matrix order and reads it back, NaN included', () => {
    const dir = tempDir();
    const paths = writeResults(dir, 'golden', bundle);
    const lines = readFileSync(paths.runs, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(records.length);
    for (const line of lines) expect(() => JSON.parse(line) as unknown).not.toThrow();

    const back = readRunRecords(dir, 'golden');
    expect(back).toEqual(records); // fixture records are already in matrix order
    expect(back.at(-1)?.measurements?.finalLoss).toBeNaN();
    expect(aggregateCells(plan, back)).toEqual(bundle.rows);
  });

  it('is byte-identical when written twice, and replaces older files', () => {
    const dir = tempDir();
    const paths = writeResults(dir, 'golden', { ...bundle, rows: [], records: [] });
    writeResults(dir, 'golden', bundle);
    const first = [paths.csv, paths.meta, paths.runs].map((p) => readFileSync(p, 'utf8'));
    writeResults(dir, 'golden', { ...bundle, records });
    expect([paths.csv, paths.meta, paths.runs].map((p) => readFileSync(p, 'utf8'))).toEqual(first);
  });

  it('gives RESULTS_IO naming the path when the directory cannot be created', () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, '');
    const error = mpxErrorOf(() => writeResults(join(file, 'sub'), 'golden', bundle));
    expect(error.code).toBe('RESULTS_IO');
    expect(error.file).toBe(join(file, 'sub'));
    expect(error.message).toMatch(/ENOTDIR/);
    expect(error.hint).toMatch(/is a file, not a directory/);
  });

  it('gives RESULTS_IO and cleans up its temp file when a file cannot be replaced', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'golden.csv')); // a directory where the CSV should go: rename fails
    const error = mpxErrorOf(() => writeResults(dir, 'golden', bundle));
    expect(error.code).toBe('RESULTS_IO');
    expect(error.file).toBe(join(dir, 'golden.csv'));
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });
});

describe('assertResultsDirWritable', () => {
  it('creates a missing directory and leaves nothing in it', () => {
    const dir = join(tempDir(), 'new', 'results');
    assertResultsDirWritable(dir);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('gives RESULTS_IO with a hint when the path is a file or under one', () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, '');
    for (const dir of [file, join(file, 'sub')]) {
      const error = mpxErrorOf(() => assertResultsDirWritable(dir));
      expect(error.code).toBe('RESULTS_IO');
      expect(error.file).toBe(dir);
      expect(error.hint).toMatch(/is a file, not a directory/);
    }
  });
});

describe('readRunRecords', () => {
  it('returns [] when nothing was written yet', () => {
    expect(readRunRecords(tempDir(), 'golden')).toEqual([]);
    expect(readRunRecords(join(tempDir(), 'missing-dir'), 'golden')).toEqual([]);
  });

  it('points at a corrupt line', () => {
    const dir = tempDir();
    writeResults(dir, 'golden', bundle);
    const path = join(dir, 'golden.runs.jsonl');
    writeFileSync(path, `${readFileSync(path, 'utf8')}{"runId": 1}\n`);
    const error = mpxErrorOf(() => readRunRecords(dir, 'golden'));
    expect(error.code).toBe('RESULTS_IO');
    expect(error.where).toBe(`${path}:${records.length + 1}`);
  });
});

describe('hasSameResults', () => {
  it('is true right after writing the same bundle (whatever the metadata), false after a change or without files', () => {
    const dir = tempDir();
    expect(hasSameResults(dir, 'golden', bundle)).toBe(false);
    writeResults(dir, 'golden', bundle);
    expect(hasSameResults(dir, 'golden', bundle)).toBe(true);
    expect(hasSameResults(dir, 'golden', { ...bundle, metadata: { ...metadata, date: '2030-01-01T00:00:00.000Z' } })).toBe(true);
    const fewer = { ...bundle, records: records.slice(1), rows: aggregateCells(plan, records.slice(1)) };
    expect(hasSameResults(dir, 'golden', fewer)).toBe(false);
  });

  it('renderResults gives exactly the bytes writeResults writes', () => {
    const dir = tempDir();
    const paths = writeResults(dir, 'golden', bundle);
    const text = renderResults(bundle);
    expect(readFileSync(paths.csv, 'utf8')).toBe(text.csv);
    expect(readFileSync(paths.runs, 'utf8')).toBe(text.runs);
    expect(readFileSync(paths.meta, 'utf8')).toBe(text.meta);
  });
});

describe('capacity results files', () => {
  async function capacityBundle(): Promise<CapacityBundle> {
    const { plan: capacityPlan, searches } = await searchAll(capacitySpec(), {
      'mlp float32 1 cpu': { peak: linear(200_000, 2_000) },
      'mlp mixed_float16 1 cpu': { peak: linear(200_000, 1_000) },
    });
    const capacityRecords = searches.flatMap((s) => [...s.probeRecords, ...(s.confirm === null ? [] : [s.confirm])]);
    return { rows: aggregateCapacity(capacityPlan.capacity, searches), records: [...capacityRecords].reverse(), metadata };
  }

  it('writeCapacityResults writes <name>.capacity.csv beside the records and meta.json, the bytes renderCapacityResults gives', async () => {
    const capacity = await capacityBundle();
    const dir = join(tempDir(), 'results');
    const paths = writeCapacityResults(dir, 'cap', capacity);
    expect(paths).toEqual({ csv: join(dir, 'cap.capacity.csv'), meta: join(dir, 'cap.meta.json'), runs: join(dir, 'cap.runs.jsonl') });
    expect(readdirSync(dir).sort()).toEqual(['cap.capacity.csv', 'cap.meta.json', 'cap.runs.jsonl']);
    const text = renderCapacityResults(capacity);
    expect([paths.csv, paths.runs, paths.meta].map((p) => readFileSync(p, 'utf8'))).toEqual([text.csv, text.runs, text.meta]);
    expect(text.csv.split('\n')[0]).toBe(CAPACITY_COLUMNS.map((c) => c.name).join(','));
    // every record read back as it was, in cell order whatever order they came in
    const read = readRunRecords(dir, 'cap');
    const byRunId = (list: readonly StoredRecord[]) => [...list].sort((a, b) => a.runId.localeCompare(b.runId));
    expect(byRunId(read)).toEqual(byRunId(capacity.records));
    expect(read.map((r) => r.cellIndex)).toEqual(read.map((r) => r.cellIndex).sort((a, b) => a - b));
    expect(new Set(read.map((r) => r.cellIndex)).size).toBe(2);
  });

  it('writeCapacityResults gives RESULTS_IO and leaves no temp file when the CSV cannot be replaced', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'cap.capacity.csv'));
    const error = mpxErrorOf(() => writeCapacityResults(dir, 'cap', { rows: [], records: [], metadata }));
    expect(error.code).toBe('RESULTS_IO');
    expect(error.file).toBe(join(dir, 'cap.capacity.csv'));
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('hasSameCapacityResults: true after writing the same rows and records (whatever the metadata), false after a change or without a file', async () => {
    const capacity = await capacityBundle();
    const dir = tempDir();
    expect(hasSameCapacityResults(dir, 'cap', capacity)).toBe(false);
    const paths = writeCapacityResults(dir, 'cap', capacity);
    expect(hasSameCapacityResults(dir, 'cap', capacity)).toBe(true);
    expect(hasSameCapacityResults(dir, 'cap', { ...capacity, metadata: { ...metadata, date: '2030-01-01T00:00:00.000Z' } })).toBe(true);
    expect(hasSameCapacityResults(dir, 'cap', { ...capacity, records: capacity.records.slice(1) })).toBe(false);
    expect(hasSameCapacityResults(dir, 'cap', { ...capacity, rows: capacity.rows.slice(1) })).toBe(false);
    // the run matrix's own CSV is another file: a capacity bundle is never compared with it
    expect(hasSameResults(dir, 'cap', bundle)).toBe(false);
    rmSync(paths.meta);
    expect(hasSameCapacityResults(dir, 'cap', capacity)).toBe(false);
  });
});

describe('records written by an older mpx', () => {
  it('fill new record fields with their unknown value and drop ok records that lack a measurement', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpx-old-'));
    const full = { ...records.find((r) => r.status === 'ok')! };
    const { attempts: _a, gpuPeakBytes: _g, reachedBytes: _r, ...old } = full;
    const { peakModeledBytes: _p, ...oldMeasurements } = full.measurements!;
    const failed = { ...records.find((r) => r.status === 'failed')!, runId: 'old-failed' };
    const { attempts: _fa, ...oldFailed } = failed;
    const lines = [
      { ...old, runId: 'old-complete' },
      { ...old, runId: 'old-incomplete', measurements: oldMeasurements },
      oldFailed,
    ];
    writeFileSync(join(dir, 'old.runs.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n'));
    const read = readRunRecords(dir, 'old');
    expect(read.map((r) => r.runId)).toEqual(['old-complete', 'old-failed']);
    expect(read[0]).toMatchObject({ attempts: 1, gpuPeakBytes: null, reachedBytes: null });
  });
});
