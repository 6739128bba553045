/**
 * runCapacitySearches on recorded probes: every run it asks for is found among the records, so no worker starts —
 * the resume path of `mpx run`, and a check that the committed capacity results are what their records replay to.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { planCapacity } from '../../src/matrix/capacity.js';
import { aggregateCapacity, CAPACITY_COLUMNS } from '../../src/results/capacity.js';
import { csvExporter } from '../../src/results/export/index.js';
import { readRunRecords } from '../../src/results/store.js';
import { runCapacitySearches } from '../../src/runner/capacity.js';
import type { StoredRecord } from '../../src/runner/protocol.js';
import { loadSpecText } from '../../src/spec/load.js';

describe('runCapacitySearches from recorded probes', () => {
  it('replays experiments/capacity.yaml from results/capacity.runs.jsonl to the committed capacity CSV, starting no worker', async () => {
    const { spec } = loadSpecText(readFileSync('experiments/capacity.yaml'), 'experiments/capacity.yaml');
    const plan = planCapacity(spec);
    const stored = new Map(readRunRecords('results', 'capacity').map((r) => [r.runId, r]));
    const asked = new Set<string>();
    const reusedProbes: boolean[] = [];
    const searches = await runCapacitySearches(spec, plan, {
      jobs: 2,
      // never started: every run is found among the records
      workerFile: '/nonexistent/mpx-worker.js',
      recordOf: (runId): StoredRecord => {
        asked.add(runId);
        const record = stored.get(runId);
        // A run without a record would start a worker: the committed results no longer match the spec.
        if (record === undefined) throw new Error(`run ${runId} has no record in results/capacity.runs.jsonl`);
        return record;
      },
      onRecord: () => {
        throw new Error('a new record: a worker ran');
      },
      onProbe: (_cell, _micro, _outcome, isReused) => reusedProbes.push(isReused),
    });
    expect(searches.map((s) => s.cell.index)).toEqual(plan.cells.map((c) => c.index));
    expect(reusedProbes.every(Boolean)).toBe(true);
    // every committed record is one the searches use: none is stale
    expect([...stored.keys()].filter((id) => !asked.has(id))).toEqual([]);
    const csv = csvExporter.render(aggregateCapacity(plan.capacity, searches), CAPACITY_COLUMNS);
    expect(csv).toBe(readFileSync('results/capacity.capacity.csv', 'utf8'));
  });
});
