/**
 * Capacity rows from finished searches (the real search over memory curves, records as `mpx run` writes them), the
 * CSV they render to and read back from, and the committed capacity CSV.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { aggregateCapacity, CAPACITY_COLUMNS, parseCapacityCsv, type CapacityRow } from '../../src/results/capacity.js';
import { csvExporter } from '../../src/results/export/index.js';
import { capacitySpec, cellKey, linear, searchAll, type SearchCurve } from './capacity-fixture.js';

const BUDGET = 1_000_000;

/** One curve per search of `capacitySpec()` (cpu), each a case of its own. */
const CURVES: Record<string, SearchCurve> = {
  // boundary at 400 exactly (200 000 + 2 000 × 400 = the budget)
  'mlp float32 1 cpu': { peak: linear(200_000, 2_000) },
  // micro batches 1…256 all fit (256 × 2 000 + 300 000 < 1 MB)
  'mlp float32 4 cpu': { peak: linear(300_000, 2_000) },
  // half the bytes per sample: twice the batch
  'mlp mixed_float16 1 cpu': { peak: linear(200_000, 1_000) },
  // not even micro batch 1 fits
  'mlp mixed_float16 4 cpu': { peak: linear(1_100_000, 1) },
  'cnn float32 1 cpu': { peak: linear(100_000, 3_000) },
  // boundary at micro batch 75; the confirmation at it runs out of memory
  'cnn float32 4 cpu': { peak: linear(100_000, 12_000), confirm: { status: 'oom', reason: 'the worker passed its share of memory', reachedBytes: 3e9 } },
  // micro batch 4 peaks higher than larger ones
  'cnn mixed_float16 1 cpu': { peak: (m) => (m === 4 ? 900_000 : linear(100_000, 1_500)(m)) },
  // the second probe crashes
  'cnn mixed_float16 4 cpu': { peak: (m) => (m === 1 ? 500_000 : { status: 'crashed', reason: 'signal SIGSEGV' }) },
};

async function rowsOf(curves = CURVES, spec = capacitySpec()): Promise<CapacityRow[]> {
  const { plan, searches } = await searchAll(spec, curves);
  return aggregateCapacity(plan.capacity, searches);
}

const byKey = (rows: CapacityRow[]) => new Map(rows.map((r) => [cellKey({ ...r, backend: r.requestedBackend }), r]));

describe('aggregateCapacity', () => {
  it('one row per search in cell order, with the boundary, the fit and the confirmation\'s speed', async () => {
    const rows = await rowsOf();
    expect(rows.map((r) => [r.cellIndex, cellKey({ ...r, backend: r.requestedBackend })])).toEqual(Object.keys(CURVES).map((key, i) => [i, key]));
    const row = byKey(rows).get('mlp float32 1 cpu')!;
    expect(row).toEqual({
      cellIndex: 0,
      cellId: row.cellId,
      model: 'mlp',
      policy: 'float32',
      accumulationSteps: 1,
      requestedBackend: 'cpu',
      backends: ['cpu'],
      status: 'ok',
      reason: null,
      budgetBytes: BUDGET,
      metric: 'peak_tf_modeled_bytes',
      metricKind: 'modeled',
      maxBatchSize: 400,
      maxMicroBatchSize: 400,
      peakAtMaxBytes: 1_000_000,
      peakAboveMaxBytes: 1_002_000,
      fixedBytes: 200_000,
      bytesPerSample: 2_000,
      probes: row.probes,
      // (0.95 MB − 200 000) / 2 000
      recommendedBatchSize: 375,
      batchRatioToFloat32: 1,
      samplesPerSecond: 1234,
      stepMs: 12.5,
      isRangeLimited: false,
      isMonotonic: true,
    });
    expect(row.cellId).toMatch(/^[0-9a-f]{16}$/);
    expect(row.probes).toBeGreaterThanOrEqual(3);
  });

  it('with accumulation the search bounds the micro batch: max_batch_size is micro × accumulation', async () => {
    const row = byKey(await rowsOf()).get('cnn float32 4 cpu')!;
    // 100 000 + 12 000 × 75 = the budget
    expect(row).toMatchObject({ maxMicroBatchSize: 75, maxBatchSize: 300, peakAtMaxBytes: 1_000_000, peakAboveMaxBytes: 1_012_000, fixedBytes: 100_000, bytesPerSample: 12_000 });
    // (0.95 MB − 100 000) / 12 000 = 70.8: 70 micro batches, 280 samples
    expect(row.recommendedBatchSize).toBe(280);
  });

  it('batch_ratio_to_float32 divides by the float32 row of the same model and accumulation', async () => {
    const rows = byKey(await rowsOf());
    expect(rows.get('mlp mixed_float16 1 cpu')).toMatchObject({ maxBatchSize: 800, batchRatioToFloat32: 2, recommendedBatchSize: 750 });
    expect(rows.get('cnn mixed_float16 1 cpu')).toMatchObject({ maxBatchSize: 600, batchRatioToFloat32: 2 });
    expect(rows.get('cnn float32 1 cpu')).toMatchObject({ maxBatchSize: 300, batchRatioToFloat32: 1 });
    // no batch of its own: no ratio
    expect(rows.get('mlp mixed_float16 4 cpu')!.batchRatioToFloat32).toBeNull();
  });

  it('never divides by a float32 row of another backend', async () => {
    const spec = capacitySpec({}, ['cpu', 'wasm']);
    const curves: Record<string, SearchCurve> = {
      'mlp float32 1 cpu': { peak: linear(200_000, 2_000) },
      'mlp mixed_float16 1 cpu': { peak: linear(200_000, 1_000) },
      'mlp float32 1 wasm': { peak: linear(200_000, 4_000) },
      'mlp mixed_float16 1 wasm': { peak: linear(200_000, 1_000) },
      // no float32 search on wasm at accumulation 4
      'mlp mixed_float16 4 wasm': { peak: linear(200_000, 1_000) },
    };
    const rows = byKey(await rowsOf(curves, spec));
    expect(rows.get('mlp mixed_float16 1 cpu')).toMatchObject({ maxBatchSize: 800, batchRatioToFloat32: 2, backends: ['cpu'] });
    expect(rows.get('mlp mixed_float16 1 wasm')).toMatchObject({ maxBatchSize: 800, batchRatioToFloat32: 4, backends: ['wasm'] });
    expect(rows.get('mlp mixed_float16 4 wasm')!.batchRatioToFloat32).toBeNull();
  });

  it('nothing fits: an oom row with the smallest batch\'s figure in the reason and no batch', async () => {
    expect(byKey(await rowsOf()).get('mlp mixed_float16 4 cpu')).toMatchObject({
      status: 'oom',
      reason: 'not even the smallest batch of the range fits: micro batch 1 peaks at 1100001 bytes, above the budget of 1000000',
      maxBatchSize: null,
      maxMicroBatchSize: null,
      peakAtMaxBytes: null,
      recommendedBatchSize: null,
      samplesPerSecond: null,
      probes: 1,
      isRangeLimited: null,
      isMonotonic: true,
    });
  });

  it('a probe that fails for another reason gives the row its status and says which probe', async () => {
    expect(byKey(await rowsOf()).get('cnn mixed_float16 4 cpu')).toMatchObject({
      status: 'crashed',
      reason: 'the probe at micro batch 8 ended crashed: signal SIGSEGV',
      probes: 2,
      samplesPerSecond: null,
      stepMs: null,
    });
  });

  it('a confirmation that does not end ok gives the row its status and reason', async () => {
    expect(byKey(await rowsOf()).get('cnn float32 4 cpu')).toMatchObject({
      status: 'oom',
      reason: 'the confirmation run at batch 300 ended oom: the worker passed its share of memory',
      samplesPerSecond: null,
      stepMs: null,
    });
  });

  it('a range that all fits says so: the true maximum is at least the end of the range', async () => {
    expect(byKey(await rowsOf()).get('mlp float32 4 cpu')).toMatchObject({
      status: 'ok',
      reason: 'the whole range fits: the largest batch is at least 1024 (raise capacity.batchSize.max)',
      maxMicroBatchSize: 256,
      maxBatchSize: 1024,
      peakAboveMaxBytes: null,
      // the fit would allow 325 micro batches; never more than the maximum found
      recommendedBatchSize: 1024,
      isRangeLimited: true,
    });
  });

  it('non-monotonic memory is reported in the reason and in is_monotonic, not hidden', async () => {
    const row = byKey(await rowsOf()).get('cnn mixed_float16 1 cpu')!;
    expect(row.status).toBe('ok');
    expect(row.isMonotonic).toBe(false);
    expect(row.reason).toMatch(/^memory is not monotonic in the batch size: micro batch \d+ peaks at \d+ bytes, below the 900000 of micro batch 4(; |$)/);
  });

  it('recommended_batch_size leaves the margin free on the fit, never above the maximum', async () => {
    const spec = (margin: number) => capacitySpec({ margin });
    const curve = { 'mlp float32 1 cpu': { peak: linear(200_000, 2_000) } };
    const recommended = async (margin: number) => (await rowsOf(curve, spec(margin)))[0]!.recommendedBatchSize;
    expect(await recommended(0)).toBe(400);
    expect(await recommended(0.05)).toBe(375);
    // 0.5 MB − 200 000 = 150 batches of 2 000 bytes
    expect(await recommended(0.5)).toBe(150);
    // the fixed part alone is above 1 − 0.9 of the budget: no batch leaves the margin
    expect(await recommended(0.9)).toBeNull();
  });

  it('recommended_batch_size honours the margin where memory is flat at small batches', async () => {
    // The optimizer's peak (970 000) dominates up to micro batch 200, then activations grow the peak:
    // every batch is above 95% of the budget, so none leaves the 5% margin free.
    const curve = { 'mlp float32 1 cpu': { peak: (m: number) => Math.max(970_000, 800_000 + 850 * m) } };
    const [row] = await rowsOf(curve);
    expect(row!.maxBatchSize).toBe(235);
    expect(row!.recommendedBatchSize).toBeNull();
    // flat at 900 000 instead: the fit's 176 is right, as the flat part leaves the margin free
    const [below] = await rowsOf({ 'mlp float32 1 cpu': { peak: (m: number) => Math.max(900_000, 800_000 + 850 * m) } });
    expect(below!.recommendedBatchSize).toBe(176);
  });

  it('recommended_batch_size without a fit (only the smallest batch fits) is that batch if it leaves the margin free', async () => {
    // micro batch 4 fits at 960 000, above 95% of the budget; 5 does not fit
    const [tight] = await rowsOf({ 'mlp float32 1 cpu': { peak: linear(0, 240_000) } });
    expect(tight).toMatchObject({ maxBatchSize: 4, fixedBytes: null, bytesPerSample: null, recommendedBatchSize: null });
    const [roomy] = await rowsOf({ 'mlp float32 1 cpu': { peak: (m: number) => (m === 4 ? 900_000 : 1_100_000) } });
    expect(roomy).toMatchObject({ maxBatchSize: 4, fixedBytes: null, recommendedBatchSize: 4 });
  });

  it('compares what the engine measures on torch, what mpx models on tfjs, or the metric asked for', async () => {
    const curve = { peak: linear(200_000, 2_000) };
    const torch = (await rowsOf({ 'mlp float32 1 torch': curve }, capacitySpec({}, ['torch'])))[0]!;
    // the fixture's peak_bytes is twice the modeled figure: 400 000 + 4 000 × 150 = the budget
    expect(torch).toMatchObject({ metric: 'peak_bytes', metricKind: 'measured', maxBatchSize: 150, peakAtMaxBytes: 1_000_000, backends: ['torch'] });
    const measured = (await rowsOf({ 'mlp float32 1 cpu': curve }, capacitySpec({ metric: 'peak_bytes' })))[0]!;
    expect(measured).toMatchObject({ metric: 'peak_bytes', metricKind: 'measured', maxBatchSize: 150 });
    const modeled = (await rowsOf({ 'mlp float32 1 cpu': curve }, capacitySpec({ metric: 'peak_modeled_bytes' })))[0]!;
    expect(modeled).toMatchObject({ metric: 'peak_modeled_bytes', metricKind: 'modeled', maxBatchSize: 400 });
  });

  it('keeps the earlier rows of searches not run this time, and their ratios follow the new float32 row', async () => {
    const earlier = await rowsOf();
    const snapshot = structuredClone(earlier);
    const { plan, searches } = await searchAll(capacitySpec(), { 'mlp float32 1 cpu': { peak: linear(200_000, 4_000) } });
    const rows = aggregateCapacity(plan.capacity, searches, earlier);
    expect(rows.map((r) => r.cellIndex)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(rows[0]).toMatchObject({ maxBatchSize: 200, batchRatioToFloat32: 1 });
    // the mixed row is the earlier one, compared with the new float32 row: 800 / 200
    expect(rows[2]).toEqual({ ...earlier[2], batchRatioToFloat32: 4 });
    expect(rows.filter((r) => r.cellIndex !== 0 && r.cellIndex !== 2)).toEqual(earlier.filter((r) => r.cellIndex !== 0 && r.cellIndex !== 2));
    // the earlier rows themselves are left as they were
    expect(earlier).toEqual(snapshot);
  });

  it('an earlier float32 row still gives a new search its ratio', async () => {
    const earlier = await rowsOf();
    const { plan, searches } = await searchAll(capacitySpec(), { 'mlp mixed_float16 1 cpu': { peak: linear(200_000, 500) } });
    const rows = aggregateCapacity(plan.capacity, searches, earlier);
    expect(rows[2]).toMatchObject({ maxBatchSize: 1024, batchRatioToFloat32: 1024 / 400 });
    expect(rows).toHaveLength(8);
  });
});

describe('the capacity CSV', () => {
  it('has the columns of CAPACITY_COLUMNS and reads back the rows it was rendered from', async () => {
    const rows = await rowsOf();
    const text = csvExporter.render(rows, CAPACITY_COLUMNS);
    expect(text.split('\n')[0]).toBe(CAPACITY_COLUMNS.map((c) => c.name).join(','));
    const table = parseCapacityCsv(text, 'cap.capacity', 'results/cap.capacity.csv');
    // ratios are written with 4 significant digits
    const written = rows.map((r) => ({ ...r, batchRatioToFloat32: r.batchRatioToFloat32 === null ? null : Number(r.batchRatioToFloat32.toPrecision(4)) }));
    expect(table.rows).toEqual(written);
    expect(csvExporter.render(table.rows, CAPACITY_COLUMNS)).toBe(text);
  });

  it('the committed results/capacity.capacity.csv reads back to the same bytes', () => {
    const text = readFileSync('results/capacity.capacity.csv', 'utf8');
    const table = parseCapacityCsv(text, 'capacity.capacity', 'results/capacity.capacity.csv');
    expect(table.rows).toHaveLength(12);
    expect(table.header).toEqual(CAPACITY_COLUMNS.map((c) => c.name));
    expect(csvExporter.render(table.rows, CAPACITY_COLUMNS)).toBe(text);
  });
});
