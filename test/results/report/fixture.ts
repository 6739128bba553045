/** The report fixture (test/fixtures/results/report/README.md) as a ReportInput, and rows built by hand. */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ResultRow } from '../../../src/results/aggregate.js';
import { parseRunMetadata } from '../../../src/results/metadata.js';
import { parseCapacityCsv } from '../../../src/results/capacity.js';
import type { ReportInput } from '../../../src/results/report/index.js';
import { blankRow, parseResultsCsv } from '../../../src/results/table.js';

export const FIXTURE_DIR = fileURLToPath(new URL('../../fixtures/results/report/', import.meta.url));
export const BUDGET_BYTES = 150e6;

export function fixtureText(file: string): string {
  return readFileSync(`${FIXTURE_DIR}${file}`, 'utf8');
}

export function fixtureInput(overrides: Partial<ReportInput> = {}): ReportInput {
  const metadata = parseRunMetadata(fixtureText('report-fixture.meta.json'));
  return {
    table: parseResultsCsv(fixtureText('report-fixture.csv'), 'report-fixture', 'test/fixtures/results/report/report-fixture.csv', metadata),
    description: 'Report fixture: the seed-claims MLP and CNN on wasm and torch, batch 8..512, three policies, a 150 MB budget.',
    specFile: 'test/fixtures/results/report/report-fixture.yaml',
    budgetBytes: BUDGET_BYTES,
    capacity: parseCapacityCsv(fixtureText('report-fixture.capacity.csv'), 'report-fixture.capacity', 'test/fixtures/results/report/report-fixture.capacity.csv', metadata),
    ...overrides,
  };
}

/** An ok tfjs row whose planning peak (peak_tf_modeled_bytes) is `peak`. */
export function wasmRow(model: string, batchSize: number, policy: ResultRow['policy'], peak: number | null, overrides: Partial<ResultRow> = {}): ResultRow {
  return {
    ...blankRow(),
    model,
    batchSize,
    microBatchSize: batchSize,
    policy,
    backends: ['wasm'],
    runsOk: 1,
    runsPlanned: 1,
    peakBytes: peak === null ? null : peak * 2,
    peakTfModeledBytes: peak,
    ...overrides,
  };
}

/**
 * Compares `text` with a golden file under the fixture folder; `UPDATE_GOLDEN=1` rewrites it (then read the diff).
 */
export function expectGolden(file: string, text: string, expectEqual: (actual: string, expected: string) => void): void {
  const path = `${FIXTURE_DIR}${file}`;
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, text);
  expectEqual(text, readFileSync(path, 'utf8'));
}
