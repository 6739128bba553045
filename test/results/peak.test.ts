import { describe, expect, it } from 'vitest';
import { formatBytes, planningPeak, planningPeakOfRun, peakSourceOf } from '../../src/results/peak.js';
import { blankRow } from '../../src/results/table.js';
import type { ResultRow } from '../../src/results/aggregate.js';

const row = (overrides: Partial<ResultRow>): ResultRow => ({ ...blankRow(), ...overrides });

describe('planningPeak: the one peak a row is summed up by', () => {
  it('tfjs rows: peak_tf_modeled_bytes, modeled (never the fp32 graph peak_bytes)', () => {
    const peak = planningPeak(row({ backends: ['wasm'], peakBytes: 42_401_952, peakTfModeledBytes: 29_876_896 }));
    expect(peak).toMatchObject({ bytes: 29_876_896, kind: 'modeled' });
    expect(peak?.column.name).toBe('peak_tf_modeled_bytes');
    expect(peak?.column.kind).toBe('modeled');
    for (const backend of ['cpu', 'tensorflow'] as const) expect(planningPeak(row({ backends: [backend], peakBytes: 1, peakTfModeledBytes: 2 }))?.bytes).toBe(2);
  });

  it('torch rows: peak_bytes, measured', () => {
    const peak = planningPeak(row({ backends: ['torch'], requestedBackend: 'torch', peakBytes: 30_080_000, peakTfModeledBytes: null }));
    expect(peak).toMatchObject({ bytes: 30_080_000, kind: 'measured' });
    expect(peak?.column.name).toBe('peak_bytes');
    expect(peak?.column.kind).toBe('measured');
  });

  it('a row that never ran is judged by the engine it asks for; no value means null, not zero', () => {
    expect(peakSourceOf(row({ backends: [], requestedBackend: 'torch' })).kind).toBe('measured');
    expect(peakSourceOf(row({ backends: [], requestedBackend: 'auto' })).kind).toBe('modeled');
    expect(planningPeak(row({ backends: ['wasm'], status: 'oom', peakBytes: null, peakTfModeledBytes: null }))).toBeNull();
    expect(planningPeak(row({ backends: ['wasm'], peakBytes: 5, peakTfModeledBytes: Number.NaN }))).toBeNull();
  });

  it('the progress line makes the same choice from a run\'s measurements', () => {
    expect(planningPeakOfRun({ backend: 'wasm', peakBytes: 10, peakTfModeledBytes: 7 }, 'auto')).toMatchObject({ bytes: 7, kind: 'modeled' });
    expect(planningPeakOfRun({ backend: 'torch', peakBytes: 10, peakTfModeledBytes: null }, 'torch')).toMatchObject({ bytes: 10, kind: 'measured' });
  });
});

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [880, '880 B'],
    [38_460, '38.46 kB'],
    [5_956_000, '5.956 MB'],
    [29_876_896, '29.88 MB'],
    [34_501_000, '34.50 MB'],
    [532_720_000, '532.7 MB'],
    [999_960, '1.000 MB'],
    [1_234_000_000, '1.234 GB'],
    [17_179_869_184, '17.18 GB'],
  ])('%d → %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});
