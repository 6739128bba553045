import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { aggregateCells } from '../../../src/results/aggregate.js';
import { COLUMNS } from '../../../src/results/columns.js';
import { csvExporter } from '../../../src/results/export/csv.js';
import { plan, records } from '../fixture.js';

const render = (input = records) => csvExporter.render(aggregateCells(plan, input), COLUMNS);

describe('csvExporter', () => {
  it('matches the golden file', async () => {
    // Update after an intended change with `npx vitest run test/results -u`, then review the diff.
    await expect(render()).toMatchFileSnapshot('../../fixtures/results/golden.csv');
  });

  it('is byte-identical for the same input, and for shuffled records', () => {
    const first = render();
    expect(render()).toBe(first);
    expect(render([...records].reverse())).toBe(first);
    expect(render([...records.slice(7), ...records.slice(0, 7)])).toBe(first);
  });

  it('has the column names as header, \\n line endings, and parses back', () => {
    const text = render();
    expect(text).not.toContain('\r');
    expect(text.endsWith('\n')).toBe(true);
    const parsed: string[][] = parse(text);
    expect(parsed[0]).toEqual(COLUMNS.map((c) => c.name));
    expect(parsed).toHaveLength(1 + 7);
    for (const row of parsed) expect(row).toHaveLength(COLUMNS.length);
  });

  it('writes only the header when there are no rows', () => {
    expect(csvExporter.render([], COLUMNS)).toBe(`${COLUMNS.map((c) => c.name).join(',')}\n`);
  });
});
