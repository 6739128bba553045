import { describe, expect, it } from 'vitest';
import { formatRatioChange, formatVerdict, summarizeResults } from '../../../src/results/report/summary.js';
import { fixtureInput, wasmRow } from './fixture.js';

describe('summarizeResults', () => {
  it('groups the fixture by model, engine and accumulation, in row order, with the engine in the labels', () => {
    const summary = summarizeResults('report-fixture', fixtureInput().table.rows);
    expect(summary.groups.map((g) => [g.model, g.engine, g.accumulationSteps, g.source.kind])).toEqual([
      ['wide-mlp', 'wasm', 1, 'modeled'],
      ['wide-mlp', 'torch', 1, 'measured'],
      ['cnn', 'wasm', 1, 'modeled'],
      ['cnn', 'torch', 1, 'measured'],
    ]);
    expect(summary.hasSeveralEngines).toBe(true);
    expect(summary.sources.map((s) => s.column.name)).toEqual(['peak_bytes', 'peak_tf_modeled_bytes']);
    const count = (status: string) => summary.notOk.filter((r) => r.status === status).length;
    expect([summary.notOk.length, count('unsupported'), count('failed'), count('oom')]).toEqual([11, 8, 1, 2]);
  });

  it('divides each peak by float32\'s at the same batch size, and has no ratio where float32 has no peak', () => {
    const cnn = summarizeResults('f', fixtureInput().table.rows).groups[2]!;
    const at = (policy: 'float32' | 'mixed_bfloat16', batch: number) => cnn.cell(policy, batch)!;
    expect(at('float32', 128).ratio).toBe(1);
    expect(at('mixed_bfloat16', 128).ratio).toBeCloseTo(22_988_000 / 42_457_000, 3);
    expect(at('float32', 512).peak).toBeNull(); // oom
    expect(at('mixed_bfloat16', 512).ratio).toBeNull();
    expect(at('mixed_bfloat16', 32).peak).toBeNull(); // failed
  });

  it('finds where a mixed policy stops costing and starts saving memory, within ±0.5% counting as the same', () => {
    const rows = [
      ...[8, 32, 128, 512].map((b, i) => wasmRow('m', b, 'float32', [100, 100, 100, 100][i]!)),
      ...[8, 32, 128, 512].map((b, i) => wasmRow('m', b, 'mixed_float16', [105, 103, 100.3, 60][i]!)),
    ];
    const [verdict] = summarizeResults('s', rows).groups[0]!.verdicts;
    expect(verdict!.segments.map((s) => [s.effect, s.batches])).toEqual([
      ['costs', [8, 32]],
      ['same', [128]],
      ['saves', [512]],
    ]);
    expect(formatVerdict(verdict!)).toBe('more memory at 8–32 (up to +5% at 8), the same as float32 at 128, less at 512 (−40%)');
    expect(formatVerdict(verdict!, 'short')).toBe('costs 8–32, same 128, saves 512');
  });

  it('says "every batch size" only when the policy has a ratio at every batch size of the group', () => {
    const complete = summarizeResults('s', [wasmRow('m', 8, 'float32', 10), wasmRow('m', 16, 'float32', 20), wasmRow('m', 8, 'mixed_bfloat16', 8), wasmRow('m', 16, 'mixed_bfloat16', 10)]);
    expect(formatVerdict(complete.groups[0]!.verdicts[0]!)).toBe('less memory at every batch size (up to −50% at 16)');
    expect(formatVerdict(complete.groups[0]!.verdicts[0]!, 'short')).toBe('saves at every batch size');
    const partial = summarizeResults('s', [
      wasmRow('m', 8, 'float32', 10),
      wasmRow('m', 16, 'float32', 20),
      wasmRow('m', 8, 'mixed_bfloat16', 8),
      wasmRow('m', 16, 'mixed_bfloat16', null, { status: 'oom', oomReachedBytes: 25 }),
    ]);
    expect(formatVerdict(partial.groups[0]!.verdicts[0]!)).toBe('less memory at 8 (−20%)');
  });

  it('has no verdict without a float32 peak to compare with', () => {
    const summary = summarizeResults('s', [wasmRow('m', 8, 'mixed_float16', 10), wasmRow('m', 16, 'mixed_float16', 12)]);
    expect(summary.groups[0]!.verdicts).toEqual([]);
  });

  it.each([
    [1.053, '+5.3%'],
    [0.507, '−49%'],
    [1.0004, '±0%'],
    [0.993, '−0.7%'],
  ])('formatRatioChange(%d) = %s', (ratio, text) => {
    expect(formatRatioChange(ratio)).toBe(text);
  });
});
