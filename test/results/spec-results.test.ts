import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readRecordFiles, recordsDir } from '../../src/results/record-files.js';
import { REBUILD_INTERVAL_MS, SpecResults } from '../../src/results/spec-results.js';
import { readRunRecords } from '../../src/results/store.js';
import { plan, records } from './fixture.js';
import { machineFacts } from '../helpers/builders.js';
import { useTempDirs } from '../helpers/temp-dirs.js';

const tempDir = useTempDirs('spec-results');

const machine = machineFacts();
const spec = { file: 'experiments/golden.yaml', sha256: 'b'.repeat(64) };
const everything = { isInScope: () => true, isCounted: () => true, hadStale: false, hasRecordFiles: false };

function results(dir: string, clock: { t: number }, shard: { index: number; count: number } | null = null): SpecResults {
  return new SpecResults('golden', spec, plan, [], dir, machine, { shard, host: 'node-7', toRun: plan.runs, schedulerJob: null, now: () => clock.t });
}

describe('SpecResults', () => {
  it('appends every record at once; rebuilds the CSV and meta.json at most every few seconds; merges at the end', async () => {
    const dir = tempDir();
    const clock = { t: 0 };
    const spec = results(dir, clock);
    const csv = join(dir, 'golden.csv');
    spec.add(records[0]!);
    clock.t += 1000;
    spec.add(records[1]!);
    // both on disk in the record file, stamped with the host; no CSV yet
    const [file] = readRecordFiles(dir, 'golden');
    expect(file!.records.map((r) => [r.runId, r.host])).toEqual([
      [records[0]!.runId, 'node-7'],
      [records[1]!.runId, 'node-7'],
    ]);
    expect(file!.isClosed).toBe(false);
    expect(existsSync(csv)).toBe(false);

    clock.t = REBUILD_INTERVAL_MS;
    spec.add(records[2]!);
    expect(readFileSync(csv, 'utf8').split('\n')).toHaveLength(3); // header, one cell, ''
    expect(existsSync(join(dir, 'golden.runs.jsonl'))).toBe(false); // records stay in the record file until the end
    spec.add(records[3]!);
    expect(readFileSync(csv, 'utf8').split('\n')).toHaveLength(3); // not yet: within the interval

    const summary = await spec.finish(everything);
    expect(summary).toMatchObject({ produced: 4, reused: 0, recorded: 4, planned: 24, ok: 4, failed: 0, keptFiles: 0 });
    expect(readRunRecords(dir, 'golden').map((r) => r.runId)).toEqual(records.slice(0, 4).map((r) => r.runId));
    expect(readFileSync(csv, 'utf8').split('\n')).toHaveLength(4);
    expect(existsSync(recordsDir(dir, 'golden'))).toBe(false);
  });

  it('a shard only appends: no CSV, no merge; its summary points at its record file', async () => {
    const dir = tempDir();
    const spec = results(dir, { t: 0 }, { index: 1, count: 2 });
    for (const record of records.slice(0, 3)) spec.add(record);
    const summary = await spec.finish(everything);
    expect(readdirSync(dir)).toEqual(['golden.records']);
    const [file] = readRecordFiles(dir, 'golden');
    expect(file!.isClosed).toBe(true);
    expect(file!.header!.writer.shard).toEqual({ index: 1, count: 2 });
    expect(summary!.written).toEqual({ records: file!.path });
  });

  it('counts oom and failures of the runs in scope', async () => {
    const dir = tempDir();
    const spec = results(dir, { t: 0 }, { index: 1, count: 2 });
    for (const record of records) spec.add(record);
    const inFirstCells = (runId: string) => Number(runId.slice(1, 2)) <= 4;
    const summary = await spec.finish({ ...everything, isInScope: inFirstCells, isCounted: inFirstCells });
    expect(summary).toMatchObject({ planned: 15, recorded: 15, oom: 2, failed: 4 });
  });
});
