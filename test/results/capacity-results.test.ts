/**
 * CapacityResults, one capacity spec's files during `mpx run`: written after every probe and search, resumed from the
 * stored records, left untouched when nothing changed, and keeping what a filtered run did not search.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CapacityPlan } from '../../src/matrix/capacity.js';
import { CapacityResults } from '../../src/results/capacity-results.js';
import { aggregateCapacity, CAPACITY_COLUMNS, parseCapacityCsv, type FinishedSearch } from '../../src/results/capacity.js';
import { csvExporter } from '../../src/results/export/index.js';
import { readRunRecords } from '../../src/results/store.js';
import type { StoredRecord } from '../../src/runner/protocol.js';
import { capacitySpec, linear, searchAll } from './capacity-fixture.js';
import { machineFacts } from '../helpers/builders.js';
import { useTempDirs } from '../helpers/temp-dirs.js';

const tempDir = useTempDirs('capacity-results');

const machine = machineFacts();
const specInfo = { name: 'cap', file: 'experiments/cap.yaml', sha256: 'c'.repeat(64) };
const spec = capacitySpec();

/** Every search of the spec, each on a line of its own steepness. */
async function allSearches(): Promise<{ plan: CapacityPlan; searches: FinishedSearch[] }> {
  const curves = Object.fromEntries(
    ['mlp', 'cnn'].flatMap((model, i) =>
      ['float32', 'mixed_float16'].flatMap((policy, j) => [1, 4].map((k) => [`${model} ${policy} ${k} cpu`, { peak: linear(100_000 * (i + 1), 4_000 / (j + 1)) }])),
    ),
  );
  return searchAll(spec, curves);
}

const recordsOf = (search: FinishedSearch): StoredRecord[] => [...search.probeRecords, ...(search.confirm === null ? [] : [search.confirm])];
const read = (dir: string) => Object.fromEntries(readdirSync(dir).sort().map((name) => [name, readFileSync(join(dir, name), 'utf8')]));
const csvRows = (dir: string) => parseCapacityCsv(readFileSync(join(dir, 'cap.capacity.csv'), 'utf8'), 'cap.capacity', 'cap.capacity.csv').rows;

/** Runs `searches` through a CapacityResults as `mpx run` does: a stored record is reused, a new one added. */
function run(dir: string, plan: CapacityPlan, searches: readonly FinishedSearch[]) {
  const results = new CapacityResults(specInfo, plan, readRunRecords(dir, 'cap'), dir, machine);
  for (const search of searches) {
    for (const record of recordsOf(search)) if (results.recordOf(record.runId) === undefined) results.add(record);
    results.finishSearch(search);
  }
  return results.finish();
}

describe('CapacityResults', () => {
  it('writes every new record at once and the CSV after every search, then sums up', async () => {
    const dir = tempDir();
    const { plan, searches } = await allSearches();
    const results = new CapacityResults(specInfo, plan, [], dir, machine);
    const [first] = searches;
    results.add(first!.probeRecords[0]!);
    // an interrupt now loses nothing: the probe is on disk, the CSV has no search yet
    expect(readRunRecords(dir, 'cap')).toEqual([first!.probeRecords[0]]);
    expect(csvRows(dir)).toEqual([]);
    for (const record of recordsOf(first!).slice(1)) results.add(record);
    results.finishSearch(first!);
    expect(csvRows(dir).map((r) => r.cellId)).toEqual([first!.cell.cellId]);
    for (const search of searches.slice(1)) {
      for (const record of recordsOf(search)) results.add(record);
      results.finishSearch(search);
    }
    const summary = results.finish();
    const total = searches.flatMap(recordsOf).length;
    expect(summary).toEqual({
      written: { csv: join(dir, 'cap.capacity.csv'), meta: join(dir, 'cap.meta.json'), runs: join(dir, 'cap.runs.jsonl') },
      rows: aggregateCapacity(plan.capacity, searches),
      produced: total,
      reused: 0,
    });
    expect(readFileSync(summary.written!.csv, 'utf8')).toBe(csvExporter.render(summary.rows, CAPACITY_COLUMNS));
    expect(readRunRecords(dir, 'cap')).toHaveLength(total);
    expect(JSON.parse(readFileSync(summary.written!.meta, 'utf8'))).toMatchObject({ spec: { name: 'cap', sha256: specInfo.sha256 } });
  });

  it('a re-run reuses every stored record and leaves all three files as they were', async () => {
    const dir = tempDir();
    const { plan, searches } = await allSearches();
    run(dir, plan, searches);
    const before = read(dir);
    const summary = run(dir, plan, searches);
    expect(summary).toMatchObject({ written: null, produced: 0, reused: searches.flatMap(recordsOf).length });
    expect(summary.rows).toEqual(aggregateCapacity(plan.capacity, searches));
    // meta.json too: its date would change if it were rewritten
    expect(read(dir)).toEqual(before);
  });

  it('a filtered run keeps the rows and records of the searches it did not run', async () => {
    const dir = tempDir();
    const { plan, searches } = await allSearches();
    run(dir, plan, searches.slice(0, 4));
    expect(csvRows(dir).map((r) => r.cellIndex)).toEqual([0, 1, 2, 3]);
    const summary = run(dir, plan, searches.slice(4));
    expect(summary.produced).toBe(searches.slice(4).flatMap(recordsOf).length);
    expect(summary.reused).toBe(0);
    expect(summary.written).not.toBeNull();
    expect(csvRows(dir)).toEqual(aggregateCapacity(plan.capacity, searches).map((r) => ({ ...r, batchRatioToFloat32: r.batchRatioToFloat32 === null ? null : Number(r.batchRatioToFloat32.toPrecision(4)) })));
    expect(readRunRecords(dir, 'cap').map((r) => r.runId).sort()).toEqual(searches.flatMap(recordsOf).map((r) => r.runId).sort());
  });

  it('a filtered re-run of one search counts only that search\'s records as reused, and changes nothing', async () => {
    const dir = tempDir();
    const { plan, searches } = await allSearches();
    run(dir, plan, searches);
    const before = read(dir);
    const summary = run(dir, plan, [searches[5]!]);
    expect(summary).toMatchObject({ written: null, produced: 0, reused: recordsOf(searches[5]!).length });
    expect(summary.rows).toHaveLength(8);
    expect(read(dir)).toEqual(before);
  });

  it('drops the records of searches no longer in the plan; keeps those of searches not finished', async () => {
    const dir = tempDir();
    const { plan, searches } = await allSearches();
    run(dir, plan, searches);
    // the same spec with a larger budget: every search is a new one
    const larger = capacitySpec({ budgetBytes: 2_000_000 });
    const next = await searchAll(larger, { 'mlp float32 1 cpu': { peak: linear(100_000, 4_000) } });
    const results = new CapacityResults(specInfo, next.plan, readRunRecords(dir, 'cap'), dir, machine);
    expect(results.recordOf(searches[0]!.probeRecords[0]!.runId)).toEqual(searches[0]!.probeRecords[0]);
    const [search] = next.searches;
    for (const record of recordsOf(search!)) results.add(record);
    results.finishSearch(search!);
    // an interrupted search of the new plan: one probe recorded, the search not finished
    const unfinished = (await searchAll(larger, { 'cnn float32 1 cpu': { peak: linear(100_000, 4_000) } })).searches[0]!.probeRecords[0]!;
    results.add(unfinished);
    const summary = results.finish();
    expect(summary.rows.map((r) => r.cellId)).toEqual([search!.cell.cellId]);
    expect(readRunRecords(dir, 'cap').map((r) => r.runId).sort()).toEqual([...recordsOf(search!), unfinished].map((r) => r.runId).sort());
    expect(csvRows(dir)).toEqual(summary.rows);
  });
});
