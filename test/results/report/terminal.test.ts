import { describe, expect, it } from 'vitest';
import { POLICIES } from '../../../src/spec/types.js';
import { summarizeResults } from '../../../src/results/report/summary.js';
import { renderTerminalSummary, TERMINAL_WIDTH } from '../../../src/results/report/terminal.js';
import { expectGolden, fixtureInput, wasmRow } from './fixture.js';

const ESC = '\u001b';

describe('renderTerminalSummary', () => {
  it('prints the fixture as the golden file says: float32 in bytes, mixed as × float32, the verdicts, what did not finish', () => {
    const lines = renderTerminalSummary(summarizeResults('report-fixture', fixtureInput().table.rows));
    expectGolden('terminal.txt', `${lines.join('\n')}\n`, (actual, expected) => expect(actual).toBe(expected));
    expect(lines.join('\n')).not.toContain(ESC);
  });

  it('never passes 100 columns, however many batch sizes and however long the names', () => {
    const batches = Array.from({ length: 14 }, (_, i) => 2 ** (i + 1));
    const rows = POLICIES.flatMap((policy, p) =>
      batches.map((b) => wasmRow(`a-very-long-model-name-${'x'.repeat(20)}`, b, policy, (1 + p / 10) * b * 123_456_789, { accumulationSteps: 16 })),
    );
    rows.push(wasmRow('m', 8, 'float32', null, { status: 'failed', reason: 'E'.repeat(300) }));
    const lines = renderTerminalSummary(summarizeResults('wide', rows));
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(TERMINAL_WIDTH);
    // every batch size still appears, in chunks
    for (const b of batches) expect(lines.some((l) => l.includes(` ${b}`))).toBe(true);
  });

  it('is deterministic, and colours ratios (green saves, red costs) only when asked', () => {
    const rows = [wasmRow('m', 8, 'float32', 100), wasmRow('m', 8, 'mixed_float16', 50), wasmRow('m', 16, 'float32', 100), wasmRow('m', 16, 'mixed_float16', 150)];
    const plain = renderTerminalSummary(summarizeResults('s', rows));
    expect(renderTerminalSummary(summarizeResults('s', rows))).toEqual(plain);
    const colored = renderTerminalSummary(summarizeResults('s', rows), { color: true }).join('\n');
    expect(colored).toMatch(new RegExp(`${ESC}\\[32m *0\\.50×${ESC}\\[39m`));
    expect(colored).toMatch(new RegExp(`${ESC}\\[31m *1\\.50×${ESC}\\[39m`));
    // colour changes no width
    expect(colored.replace(new RegExp(`${ESC}\\[\\d+m`, 'g'), '')).toBe(plain.join('\n'));
  });

  it('says so when there is nothing to summarize', () => {
    expect(renderTerminalSummary(summarizeResults('empty', []))).toEqual(['empty: no results yet']);
  });
});
