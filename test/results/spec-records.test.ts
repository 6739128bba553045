import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Shard } from '../../src/matrix/shard.js';
import { aggregateCells, type ResultRow } from '../../src/results/aggregate.js';
import { collectMetadata } from '../../src/results/metadata.js';
import { openRecordFile, parseRecordFile, readRecordFiles, recordsDir, type RecordFileCell } from '../../src/results/record-files.js';
import { mergeSpecRecords, overlayRecordFiles, readSpecRecords } from '../../src/results/spec-records.js';
import { readRunRecords, renderResults, writeResults } from '../../src/results/store.js';
import { parseResultsCsv } from '../../src/results/table.js';
import type { StoredRecord } from '../../src/runner/protocol.js';
import { mpxErrorOf } from '../helpers/mpx-error.js';
import { cells, plan, records } from './fixture.js';
import { machineFacts } from '../helpers/builders.js';
import { useTempDirs } from '../helpers/temp-dirs.js';

const tempDir = useTempDirs('spec-records');

const machine = machineFacts({ tfjsVersions: { '@tensorflow/tfjs-core': '4.22.0' }, cpus: [{ model: 'Test CPU' }, { model: 'Test CPU' }] });
const spec = { name: 'golden', file: 'experiments/golden.yaml', sha256: 'b'.repeat(64) };
const fileCells: RecordFileCell[] = cells.map((cell) => ({ ...cell, runsPlanned: 3 }));
/** A pid that is not alive (pid_max is far below). */
const DEAD_PID = 2 ** 30;

interface WriterOptions {
  shard?: Shard | null;
  host?: string;
  pid?: number;
  startedAt?: string;
}

function writeRecordFile(dir: string, recs: readonly StoredRecord[], options: WriterOptions & { close?: boolean } = {}): string {
  const writer = openRecordFile(dir, 'golden', {
    writer: {
      host: options.host ?? hostname(),
      pid: options.pid ?? process.pid,
      shard: options.shard ?? null,
      startedAt: options.startedAt ?? '2025-01-30T12:00:00.000Z',
      slurmJob: null,
    },
    spec,
    plannedRuns: plan.runs.length,
    cells: fileCells,
    machine,
  });
  for (const record of recs) writer.append(record);
  if (options.close !== false) writer.close();
  return writer.path;
}

/** The records split over `count` shards, round robin. */
function shardsOf(recs: readonly StoredRecord[], count: number): StoredRecord[][] {
  return Array.from({ length: count }, (_, s) => recs.filter((_, i) => i % count === s));
}

describe('record files', () => {
  it('hold a header, one line per record (the bytes runs.jsonl holds) and a footer; read back as written', () => {
    const dir = tempDir();
    const path = writeRecordFile(dir, records.slice(0, 3), { shard: { index: 2, count: 12 } });
    expect(path).toMatch(new RegExp(`/golden\\.records/shard-02-of-12\\.[^/]+\\.${process.pid}\\.[0-9a-f]{6}\\.jsonl$`));
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines).toHaveLength(6); // header, 3 records, footer, ''
    expect(JSON.parse(lines[0]!)).toMatchObject({ mpxRecords: 1, kind: 'header', writer: { shard: { index: 2, count: 12 } }, plannedRuns: 24 });
    expect(JSON.parse(lines[4]!)).toMatchObject({ mpxRecords: 1, kind: 'end', records: 3 });
    writeResults(dir, 'golden', { ...renderable(records.slice(0, 3)) });
    const merged = readFileSync(join(dir, 'golden.runs.jsonl'), 'utf8').split('\n');
    expect(lines.slice(1, 4).sort()).toEqual(merged.slice(0, 3).sort());

    const [file] = readRecordFiles(dir, 'golden');
    expect(file).toMatchObject({ path, isClosed: true, records: readRunRecords(dir, 'golden') });
  });

  it('a last line cut off by a crash is skipped; a file without footer is still open', () => {
    const dir = tempDir();
    const path = writeRecordFile(dir, records.slice(0, 2), { close: false });
    appendFileSync(path, '{"attempts":1,"backend":"cpu","cellId":"c0');
    const file = parseRecordFile(readFileSync(path, 'utf8'), path);
    expect(file.records.map((r) => r.runId)).toEqual(records.slice(0, 2).map((r) => r.runId));
    expect(file.isClosed).toBe(false);
  });

  it('an empty file (a writer that died at once) holds nothing; a bad line in the middle names the file and line', () => {
    expect(parseRecordFile('', 'x.jsonl')).toEqual({ path: 'x.jsonl', header: null, records: [], isClosed: false });
    const dir = tempDir();
    const path = writeRecordFile(dir, records.slice(0, 2));
    const lines = readFileSync(path, 'utf8').split('\n');
    lines[2] = '{"not": "a record"}';
    writeFileSync(path, lines.join('\n'));
    const error = mpxErrorOf(() => readRecordFiles(dir, 'golden'));
    expect(error).toMatchObject({ code: 'RESULTS_IO', file: path, line: 3, message: 'this line is not a run record' });
    writeFileSync(path, `${lines[1]}\n`);
    expect(mpxErrorOf(() => readRecordFiles(dir, 'golden')).message).toBe('this record file has records but no header line');
    writeFileSync(path, `${lines[0]!.replace('"mpxRecords":1', '"mpxRecords":2')}\n`);
    expect(mpxErrorOf(() => readRecordFiles(dir, 'golden')).message).toMatch(/has format 2, which this mpx cannot read/);
  });
});

const metadata = collectMetadata({ ...machine, spec, date: new Date(0), plannedRuns: plan.runs.length, records: [] });

function renderable(recs: readonly StoredRecord[]) {
  return { rows: aggregateCells(plan, recs), records: recs, metadata };
}

/** The CSV text of some rows. */
const csvOf = (rows: ResultRow[]) => renderResults({ rows, records: [], metadata }).csv;

describe('readSpecRecords', () => {
  it('reads runs.jsonl and every record file; a later record of a run replaces an earlier one', () => {
    const dir = tempDir();
    writeResults(dir, 'golden', renderable(records.slice(0, 6)));
    const rerun: StoredRecord = { ...records[2]!, status: 'ok', reason: null, measurements: records[0]!.measurements, wallMs: 1 };
    writeRecordFile(dir, [records[6]!], { startedAt: '2025-01-30T12:00:00.000Z' });
    writeRecordFile(dir, [rerun, records[7]!], { startedAt: '2025-01-30T13:00:00.000Z' });
    const read = readSpecRecords(dir, 'golden');
    expect(read.merged).toHaveLength(6);
    expect(read.files).toHaveLength(2);
    const latest = new Map(read.all.map((r) => [r.runId, r]));
    expect(latest.size).toBe(8);
    expect(latest.get(records[2]!.runId)).toEqual(rerun);
  });
});

describe('mergeSpecRecords', () => {
  it('folds shard files into the same files one writer would have written, removes them, and is idempotent', async () => {
    const whole = tempDir();
    writeResults(whole, 'golden', renderable(records));
    const dir = tempDir();
    const paths = shardsOf(records, 4).map((part, s) => writeRecordFile(dir, part, { shard: { index: s + 1, count: 4 } }));

    const first = await mergeSpecRecords(dir, spec, plan, { machine });
    expect(first.written).not.toBeNull();
    expect(first).toMatchObject({ fromFiles: records.length, kept: [], stale: 0 });
    expect(first.removed.sort()).toEqual(paths.sort());
    expect(existsSync(recordsDir(dir, 'golden'))).toBe(false);
    expect(readFileSync(join(dir, 'golden.runs.jsonl'), 'utf8')).toBe(readFileSync(join(whole, 'golden.runs.jsonl'), 'utf8'));
    expect(readFileSync(join(dir, 'golden.csv'), 'utf8')).toBe(readFileSync(join(whole, 'golden.csv'), 'utf8'));
    const meta = JSON.parse(readFileSync(join(dir, 'golden.meta.json'), 'utf8')) as { runs: { recorded: number; reused: number }; hosts: string[] };
    expect(meta.runs).toMatchObject({ recorded: records.length, reused: 0 });

    const files = Object.fromEntries(readdirSync(dir).map((name) => [name, readFileSync(join(dir, name), 'utf8')]));
    const second = await mergeSpecRecords(dir, spec, plan, { machine });
    expect(second.written).toBeNull();
    expect(Object.fromEntries(readdirSync(dir).map((name) => [name, readFileSync(join(dir, name), 'utf8')]))).toEqual(files);
  });

  it('after a crash between writing runs.jsonl and removing the files, merging again changes nothing but removes them', async () => {
    const dir = tempDir();
    const path = writeRecordFile(dir, records);
    const kept = join(tempDir(), 'copy.jsonl');
    copyFileSync(path, kept);
    await mergeSpecRecords(dir, spec, plan, { machine });
    const runs = readFileSync(join(dir, 'golden.runs.jsonl'), 'utf8');
    mkdirSync(recordsDir(dir, 'golden'));
    copyFileSync(kept, path); // as if the removal never happened
    const again = await mergeSpecRecords(dir, spec, plan, { machine });
    expect(again.written).toBeNull();
    expect(again.removed).toEqual([path]);
    expect(readFileSync(join(dir, 'golden.runs.jsonl'), 'utf8')).toBe(runs);
  });

  it('keeps the files of writers that may still append (alive here, or on another host), folding their records; removes dead ones', async () => {
    const dir = tempDir();
    const [a, b, c, d] = shardsOf(records, 4);
    const alive = writeRecordFile(dir, a!, { close: false }); // this process: alive
    const elsewhere = writeRecordFile(dir, b!, { close: false, host: 'other-host', pid: DEAD_PID });
    const dead = writeRecordFile(dir, c!, { close: false, pid: DEAD_PID });
    const closed = writeRecordFile(dir, d!, { host: 'other-host' });
    const outcome = await mergeSpecRecords(dir, spec, plan);
    expect(outcome.records).toHaveLength(records.length);
    expect(outcome.kept.map((f) => f.path).sort()).toEqual([alive, elsewhere].sort());
    expect(outcome.removed.sort()).toEqual([dead, closed].sort());
    expect(readRunRecords(dir, 'golden')).toHaveLength(records.length);
  });

  it('drops records of runs the plan no longer has and moves records to their cell\'s position', async () => {
    const dir = tempDir();
    const smaller = { ...plan, cells: plan.cells.slice(0, 2), runs: plan.runs.filter((r) => r.cellIndex < 2) };
    writeRecordFile(dir, records);
    const outcome = await mergeSpecRecords(dir, spec, smaller, { machine });
    expect(outcome.records).toHaveLength(6);
    expect(outcome.stale).toBe(records.length - 6);
    expect(readRunRecords(dir, 'golden').map((r) => r.cellIndex)).toEqual([0, 0, 0, 1, 1, 1]);
  });

  it('takes the machine facts for meta.json from the newest writer when none are given, and lists the hosts', async () => {
    const dir = tempDir();
    const [a, b] = shardsOf(records, 2);
    writeRecordFile(dir, a!.map((r) => ({ ...r, host: 'node-1' })), { startedAt: '2025-01-30T12:00:00.000Z' });
    writeRecordFile(dir, b!.map((r) => ({ ...r, host: 'node-2' })), { startedAt: '2025-01-30T12:00:01.000Z' });
    await mergeSpecRecords(dir, spec, plan);
    const meta = JSON.parse(readFileSync(join(dir, 'golden.meta.json'), 'utf8')) as { hosts: string[]; cpu: { cores: number } };
    expect(meta.hosts).toEqual(['node-1', 'node-2']);
    expect(meta.cpu.cores).toBe(2);
  });

  it('nothing to merge: writes nothing', async () => {
    const dir = tempDir();
    const outcome = await mergeSpecRecords(dir, spec, plan);
    expect(outcome).toMatchObject({ written: null, records: [], removed: [], kept: [] });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('merges of one spec take turns', async () => {
    const dir = tempDir();
    shardsOf(records, 3).forEach((part, s) => writeRecordFile(dir, part, { shard: { index: s + 1, count: 3 } }));
    const outcomes = await Promise.all([mergeSpecRecords(dir, spec, plan, { machine }), mergeSpecRecords(dir, spec, plan, { machine })]);
    expect(outcomes.map((o) => o.removed.length).sort()).toEqual([0, 3]);
    expect(readRunRecords(dir, 'golden')).toHaveLength(records.length);
    expect(existsSync(join(dir, '.golden.merge.lock'))).toBe(false);
  });
});

describe('overlayRecordFiles', () => {
  it('rebuilds the rows of cells with unmerged records from all their records; other rows stay as the CSV has them', () => {
    const dir = tempDir();
    const mergedPart = records.filter((r) => r.repeat === 0);
    writeResults(dir, 'golden', renderable(mergedPart));
    writeRecordFile(dir, records.filter((r) => r.repeat > 0 && r.cellIndex < 3));
    const csv = parseResultsCsv(readFileSync(join(dir, 'golden.csv'), 'utf8'), 'golden', 'results/golden.csv');
    const { merged, files } = readSpecRecords(dir, 'golden');
    const table = overlayRecordFiles(csv, 'golden', 'results/golden.csv', merged, files)!;
    const expected = aggregateCells(plan, [...mergedPart, ...records.filter((r) => r.repeat > 0 && r.cellIndex < 3)]);
    expect(csvOf(table.rows)).toBe(csvOf(expected));
    expect(table.rows.find((r) => r.cellIndex === 0)!.runsOk).toBe(3);
    expect(table.rows.find((r) => r.cellIndex === 3)!.runsPlanned).toBe(3); // from the CSV
  });

  it('with no CSV yet, builds the table from the record files alone', () => {
    const dir = tempDir();
    writeRecordFile(dir, records.slice(0, 3));
    const { merged, files } = readSpecRecords(dir, 'golden');
    const table = overlayRecordFiles(null, 'golden', 'results/golden', merged, files)!;
    expect(table.rows).toHaveLength(1);
    expect(table.rows[0]).toMatchObject({ cellIndex: 0, runsOk: 3, runsPlanned: 3, model: 'mlp' });
    expect(table.metadata?.spec.name).toBe('golden');
  });
});
