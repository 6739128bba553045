import { describe, expect, it } from 'vitest';
import { COLUMNS, formatInteger, formatSignificant, METRIC_COLUMNS, renderColumnReference } from '../../src/results/columns.js';
import { DEFAULT_TOLERANCES } from '../../src/results/diff/compare.js';

describe('COLUMNS', () => {
  it('has unique snake_case names in the documented order', () => {
    const names = COLUMNS.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/);
    expect(names).toEqual([
      'cell', 'cell_id', 'model', 'batch_size', 'micro_batch_size', 'policy', 'accumulation_steps', 'requested_backend', 'backend',
      'precision', 'device', 'status', 'runs_ok', 'reason', 'params', 'step_ms', 'step_ms_spread', 'samples_per_s',
      'initial_loss', 'final_loss', 'final_loss_spread', 'eval_accuracy', 'loss_scale_final', 'skipped_steps',
      'params_bytes', 'grads_bytes', 'optimizer_bytes', 'accumulator_bytes', 'activations_peak_bytes', 'peak_bytes',
      'resting_bytes', 'peak_modeled_bytes', 'activations_peak_modeled_bytes', 'peak_tf_modeled_bytes',
      'activations_peak_tf_modeled_bytes', 'peak_torch_modeled_bytes', 'reserved_peak_bytes', 'rss_peak_bytes', 'wasm_heap_bytes',
      'gpu_peak_bytes', 'oom_reached_bytes',
    ]);
  });

  it('documents every column', () => {
    for (const c of COLUMNS) expect(c.description.length, c.name).toBeGreaterThan(10);
    expect(COLUMNS.find((c) => c.name === 'peak_bytes')?.description).toMatch(/fp32 graph/);
    // Never present a modeled number as a measurement.
    for (const c of COLUMNS) expect(c.kind === 'modeled', c.name).toBe(c.name.includes('modeled'));
  });
});

describe('renderColumnReference', () => {
  it('is a Markdown table with one row per column, in order', () => {
    const lines = renderColumnReference().trimEnd().split('\n');
    expect(lines[0]).toBe('| column | unit | kind | description |');
    expect(lines[1]).toBe('| --- | --- | --- | --- |');
    expect(lines.slice(2).map((l) => /^\| `([a-z_0-9]+)` \|/.exec(l)?.[1])).toEqual(COLUMNS.map((c) => c.name));
    // Every row has exactly four cells: a `|` inside a description is escaped.
    for (const line of lines) expect(line.split(/(?<!\\)\|/).length, line).toBe(6);
    expect(renderColumnReference()).toContain('| `step_ms` | ms | measured |');
  });
});

describe('number formatting', () => {
  it.each([
    [12.5, 4, '12.5'],
    [12, 4, '12'],
    [13.75, 4, '13.75'],
    [2126.246, 4, '2126'],
    [123456.7, 4, '123500'],
    [0.000012345678, 4, '0.00001235'],
    [1e-7, 4, '0.0000001'],
    [0.4123456789, 6, '0.412346'],
    [2.302585093, 6, '2.30259'],
    [0.99996, 4, '1'],
    [1.6875, 4, '1.688'], // exact tie in binary: rounds up
    [9.9999, 4, '10'],
    [-1.5, 4, '-1.5'],
    [-0, 4, '0'],
    [0, 6, '0'],
    [1e21, 4, '1000000000000000000000'],
    [Number.NaN, 4, 'nan'],
    [Number.POSITIVE_INFINITY, 4, 'inf'],
    [Number.NEGATIVE_INFINITY, 6, '-inf'],
  ])('formatSignificant(%s, %i) = %s', (value, digits, expected) => {
    expect(formatSignificant(value, digits)).toBe(expected);
  });

  it.each([
    [8_421_376, '8421376'],
    [1e21, '1000000000000000000000'],
    [100.5, '101'],
    [-0, '0'],
    [Number.NaN, 'nan'],
    [Number.POSITIVE_INFINITY, 'inf'],
  ])('formatInteger(%s) = %s', (value, expected) => {
    expect(formatInteger(value)).toBe(expected);
  });
});

describe('columns that diff compares', () => {
  it('are the measured and modeled numbers, without their spreads', () => {
    const names = METRIC_COLUMNS.map((c) => c.name);
    for (const name of ['step_ms', 'samples_per_s', 'final_loss', 'eval_accuracy', 'peak_bytes', 'resting_bytes', 'rss_peak_bytes']) {
      expect(names).toContain(name);
    }
    expect(names).not.toContain('step_ms_spread');
    expect(names).not.toContain('final_loss_spread');
    expect(names).not.toContain('model');
    expect(names).not.toContain('status');
    // every measured/modeled column that is not a spread is a metric: a column added to columns.ts diffs by itself
    const spreads = new Set(COLUMNS.flatMap((c) => (c.spread === null ? [] : [c.spread])));
    const expected = COLUMNS.filter((c) => (c.kind === 'measured' || c.kind === 'modeled') && !spreads.has(c.name)).map((c) => c.name);
    expect(names).toEqual(expected);
  });

  it('each declare how their noise band is set', () => {
    const kind = (name: string) => COLUMNS.find((c) => c.name === name)!.noise;
    expect(kind('step_ms')).toBe('timing');
    expect(kind('samples_per_s')).toBe('timing');
    expect(kind('peak_bytes')).toBe('bytes');
    expect(kind('resting_bytes')).toBe('bytes');
    expect(kind('peak_modeled_bytes')).toBe('bytes');
    expect(kind('rss_peak_bytes')).toBe('process-memory');
    expect(kind('wasm_heap_bytes')).toBe('process-memory');
    expect(kind('gpu_peak_bytes')).toBe('process-memory');
    expect(kind('skipped_steps')).toBe('count');
    expect(kind('final_loss')).toBe('value');
    expect(kind('eval_accuracy')).toBe('value');
    expect(DEFAULT_TOLERANCES.bytes).toEqual({ relative: 0, absolute: 0 });
    expect(DEFAULT_TOLERANCES.count).toEqual({ relative: 0, absolute: 0 });
  });

  it('name their spread column, which exists', () => {
    for (const c of METRIC_COLUMNS.filter((m) => m.spread !== null)) expect(COLUMNS.map((x) => x.name)).toContain(c.spread);
    expect(COLUMNS.find((c) => c.name === 'step_ms')!.spread).toBe('step_ms_spread');
  });
});
