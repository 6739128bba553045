import { describe, expect, it } from 'vitest';
import { aggregateCells, shortenReason, sortRecords } from '../../src/results/aggregate.js';
import type { StoredRecord } from '../../src/runner/protocol.js';
import { plan, records } from './fixture.js';

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('aggregateCells', () => {
  const rows = aggregateCells(plan, records);
  const byCell = new Map(rows.map((r) => [r.cellIndex, r]));

  it('gives one row per cell with records, in matrix order', () => {
    expect(rows.map((r) => r.cellIndex)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('takes the median and max − min of ok repeats', () => {
    const row = byCell.get(0)!;
    expect(row.stepMs).toBe(12.5);
    expect(row.stepMsSpread).toBe(13.75 - 12.0625);
    expect(row.finalLoss).toBe(0.4123456789);
    expect(row.finalLossSpread).toBeCloseTo(0.4129 - 0.41, 12);
    expect(`${row.runsOk}/${row.runsPlanned}`).toBe('3/3');
    expect(row.status).toBe('ok');
    expect(row.reason).toBeNull();
    expect(row.lossScaleFinal).toBeNull();
    expect(row.wasmHeapBytes).toBeNull();
  });

  it('ranks statuses crashed > timeout > failed > oom > ok', () => {
    expect(rows.map((r) => r.status)).toEqual(['ok', 'ok', 'failed', 'timeout', 'oom', 'crashed', 'ok']);
    expect(byCell.get(5)!.reason).toBe('Worker exited unexpectedly with signal SIGSEGV during setup');
  });

  it('keeps measurements of the ok repeats of a partly failed cell', () => {
    const row = byCell.get(2)!;
    expect(row.runsOk).toBe(2);
    expect(row.backends).toEqual(['cpu', 'tensorflow']);
    expect(row.stepMs).toBe((8.000123 + 9.5) / 2);
    expect(row.reason).toBe('Error: Kernel "Cast" not registered for backend cpu, dtype float16');
  });

  it('leaves values empty where they do not exist', () => {
    const timeout = byCell.get(3)!;
    expect(timeout.runsOk).toBe(0);
    expect(timeout.stepMs).toBeNull();
    expect(timeout.precisions).toEqual([]);
    // one ok repeat: a median, but no spread
    expect(byCell.get(4)!.stepMs).toBe(12.5);
    expect(byCell.get(4)!.stepMsSpread).toBeNull();
  });

  it('counts planned repeats, not recorded ones, and propagates NaN', () => {
    const row = byCell.get(6)!;
    expect([row.runsOk, row.runsPlanned]).toEqual([1, 3]);
    expect(row.finalLoss).toBeNaN();
  });

  it('does not depend on record order', () => {
    for (const seed of [1, 2, 3, 42]) expect(aggregateCells(plan, shuffled(records, seed))).toEqual(rows);
  });

  it('ignores records of runs the plan does not have, and lets a rerun replace a record', () => {
    const stale: StoredRecord = { ...records[0]!, runId: 'not-in-plan', status: 'crashed' };
    expect(aggregateCells(plan, [...records, stale])).toEqual(rows);
    const rerun: StoredRecord = { ...records.find((r) => r.cellIndex === 3)!, status: 'ok', measurements: records[0]!.measurements };
    const after = aggregateCells(plan, [...records, rerun]);
    expect(after.find((r) => r.cellIndex === 3)).toMatchObject({ status: 'timeout', runsOk: 1, runsPlanned: 3 });
  });

  it('returns no rows before any record', () => {
    expect(aggregateCells(plan, [])).toEqual([]);
  });
});

describe('helpers', () => {


  it('shortenReason keeps the first line, bounded', () => {
    expect(shortenReason('\n  a   b \nstack')).toBe('a b');
    const long = shortenReason('x'.repeat(500));
    expect(long.length).toBe(120);
    expect(long.endsWith('...')).toBe(true);
  });

  it('sortRecords gives matrix order whatever the input order', () => {
    const sorted = sortRecords(shuffled(records, 7));
    expect(sorted.map((r) => [r.cellIndex, r.repeat])).toEqual(records.map((r) => [r.cellIndex, r.repeat]));
  });
});
