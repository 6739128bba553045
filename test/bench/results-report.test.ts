import { describe, expect, it } from 'vitest';
import { REPORT_ROWS, syntheticRows } from '../../src/bench/results-report.js';
import { COLUMNS } from '../../src/results/columns.js';
import { csvExporter } from '../../src/results/export/index.js';
import { parseResultsCsv } from '../../src/results/table.js';

describe('the report benchmark\'s results CSV', () => {
  it('has 1,000 rows that survive the CSV round trip, with oom and failed cells among them', () => {
    const rows = syntheticRows(REPORT_ROWS);
    expect(rows).toHaveLength(1000);
    const csv = csvExporter.render(rows, COLUMNS);
    const table = parseResultsCsv(csv, 'bench', 'bench.csv');
    expect(table.rows).toHaveLength(1000);
    expect(csvExporter.render(table.rows, COLUMNS)).toBe(csv);
    const statuses = new Set(rows.map((r) => r.status));
    expect(statuses).toEqual(new Set(['ok', 'oom', 'failed']));
    expect(new Set(rows.map((r) => `${r.model}|${r.accumulationSteps}`)).size).toBe(48);
  });
});
