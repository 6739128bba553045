import { describe, expect, it } from 'vitest';
import { aggregateCells } from '../../src/results/aggregate.js';
import { COLUMNS } from '../../src/results/columns.js';
import { csvExporter } from '../../src/results/export/csv.js';
import { parseResultsCsv } from '../../src/results/table.js';
import { mpxErrorOf } from '../helpers/mpx-error.js';
import { plan, records } from './fixture.js';

describe('parseResultsCsv', () => {
  it('parses a CSV written by the csv exporter', () => {
    const text = csvExporter.render(aggregateCells(plan, records), COLUMNS);
    const t = parseResultsCsv(text, 'golden', 'results/golden.csv');
    expect(t.header).toEqual(COLUMNS.map((c) => c.name));
    expect(t.rows).toHaveLength(7);
    expect(t.rows[0]).toMatchObject({ model: 'mlp', batchSize: 64, policy: 'float32' });
  });

  it('reads back exactly the rows the run wrote: every column parses what it formats', () => {
    const rows = aggregateCells(plan, records);
    const t = parseResultsCsv(csvExporter.render(rows, COLUMNS), 'golden', 'results/golden.csv');
    for (const [i, row] of rows.entries()) {
      for (const column of COLUMNS) expect(column.format(t.rows[i]!), `${column.name} of row ${i}`).toBe(column.format(row));
    }
    // nan, lists and fractions of runs survive as values, not only as text
    expect(t.rows.find((r) => r.cellIndex === 6)!.finalLoss).toBeNaN();
    expect(t.rows.find((r) => r.cellIndex === 2)!.backends).toEqual(['cpu', 'tensorflow']);
    expect(t.rows.find((r) => r.cellIndex === 6)).toMatchObject({ runsOk: 1, runsPlanned: 3 });
  });

  it('names the file, line and column of a value mpx would never write', () => {
    const text = csvExporter.render(aggregateCells(plan, records), COLUMNS).replace('\n0,', '\nzero,');
    expect(mpxErrorOf(() => parseResultsCsv(text, 'golden', 'results/golden.csv')).message).toBe(
      'results/golden.csv: line 2: column cell holds "zero", not a number',
    );
  });

  it('rejects a file that is not a results CSV, naming it', () => {
    expect(mpxErrorOf(() => parseResultsCsv('a,b\n1,2\n', 'x', 'out/x.csv')).message).toMatch(/out\/x\.csv is not an mpx results CSV/);
    expect(mpxErrorOf(() => parseResultsCsv('model,batch_size\n"mlp,16\n', 'x', 'out/x.csv')).message).toMatch(/out\/x\.csv is not a valid CSV/);
    expect(mpxErrorOf(() => parseResultsCsv('', 'x', 'e.csv')).code).toBe('RESULTS_IO');
  });
});
