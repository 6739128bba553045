import { describe, expect, it } from 'vitest';
import { assertFilterMatches, matchesFilter, parseFilters, type RunFilter, selectRuns } from '../../src/cli/select-runs.js';
import type { StoredRecord } from '../../src/runner/protocol.js';
import { plan, records } from '../results/fixture.js';
import { mpxErrorOf } from '../helpers/mpx-error.js';

const NONE: RunFilter = new Map();
const defaults = { filter: NONE, force: false, retryFailed: false };


/** The fixture's records by status: cell 0-1 ok, 2 ok/failed/ok, 3 timeout ×3, 4 oom/ok/oom, 5 oom/crashed/timeout, 6 ok (1 of 3), 7 none. */
describe('selectRuns (resume)', () => {
  it('with no records runs everything', () => {
    const s = selectRuns(plan, [], defaults);
    expect(s.toRun).toEqual(plan.runs);
    expect(s).toMatchObject({ selected: 24, reused: 0, reusedFailed: 0, stale: 0, stored: [] });
  });

  it('reuses ok and oom records, keeps failed ones (not re-run) and runs the runs without a record', () => {
    const s = selectRuns(plan, records, defaults);
    const recorded = new Set(records.map((r) => r.runId));
    expect(s.toRun.map((r) => r.runId)).toEqual(plan.runs.filter((r) => !recorded.has(r.runId)).map((r) => r.runId));
    expect(s.reused).toBe(records.length);
    // cell 2 r1 failed, cell 3 ×3 timeout, cell 5 r1 crashed, r2 timeout
    expect(s.reusedFailed).toBe(6);
    expect(s.stored).toHaveLength(records.length);
  });

  it('--retry-failed re-runs failed, timeout and crashed runs only (oom is an answer)', () => {
    const s = selectRuns(plan, records, { ...defaults, retryFailed: true });
    const rerun = s.toRun.filter((r) => records.some((x) => x.runId === r.runId));
    expect(rerun.map((r) => r.runId).sort()).toEqual(
      records.filter((r) => ['failed', 'timeout', 'crashed'].includes(r.status)).map((r) => r.runId).sort(),
    );
    expect(s.reusedFailed).toBe(0);
    // the failed records are still kept until their re-run replaces them
    expect(s.stored).toHaveLength(records.length);
  });

  it('--force re-runs everything selected', () => {
    const s = selectRuns(plan, records, { ...defaults, force: true });
    expect(s.toRun).toEqual(plan.runs);
    expect(s.reused).toBe(0);
  });

  it('drops records of runs the plan no longer has, and keeps the latest record per run id', () => {
    const stale: StoredRecord = { ...records[0]!, runId: 'gone-run', cellId: 'gone-cell' };
    const newer: StoredRecord = { ...records[0]!, wallMs: 1 };
    const s = selectRuns(plan, [...records, stale, newer], defaults);
    expect(s.stale).toBe(1);
    expect(s.stored.find((r) => r.runId === records[0]!.runId)!.wallMs).toBe(1);
    expect(s.stored.some((r) => r.runId === 'gone-run')).toBe(false);
  });

  it('moves a reused record to its cell\'s current position (a reordered matrix)', () => {
    const moved: StoredRecord = { ...records[0]!, cellIndex: 5 };
    const s = selectRuns(plan, [moved], defaults);
    expect(s.stored[0]!.cellIndex).toBe(0);
  });

  it('--filter limits what runs; records outside the filter are kept as they are', () => {
    const filter = parseFilters(['model=cnn,policy=float32']);
    const s = selectRuns(plan, [], { ...defaults, filter });
    expect(new Set(s.toRun.map((r) => `${r.model.name} ${r.policy}`))).toEqual(new Set(['cnn float32']));
    expect(s.selected).toBe(3 * 3); // cells 3, 5, 7 × 3 repeats
    const withRecords = selectRuns(plan, records, { ...defaults, filter, force: true });
    expect(withRecords.stored).toHaveLength(records.length);
  });
});

describe('--filter', () => {
  it('parses pairs, snake_case keys, alternatives and repeated flags', () => {
    const filter = parseFilters(['policy=float32|mixed_bfloat16,batch_size=64', 'policy=mixed_float16', 'model=cnn']);
    expect([...filter].map(([k, v]) => [k, [...v]])).toEqual([
      ['policy', ['float32', 'mixed_bfloat16', 'mixed_float16']],
      ['batchSize', ['64']],
      ['model', ['cnn']],
    ]);
  });

  it('ANDs keys and ORs the values of one key', () => {
    const filter = parseFilters(['model=cnn', 'policy=float32|mixed_bfloat16']);
    const picked = plan.runs.filter((r) => matchesFilter(filter, r));
    expect(new Set(picked.map((r) => r.cellIndex))).toEqual(new Set([3, 4, 5, 7]));
    expect(plan.runs.filter((r) => matchesFilter(parseFilters(['batchSize=064']), r)).map((r) => r.cellIndex)).toContain(0);
  });

  it('matches micro batch size and cell id too', () => {
    expect(new Set(plan.runs.filter((r) => matchesFilter(parseFilters(['microBatchSize=128']), r)).map((r) => r.cellIndex))).toEqual(new Set([5, 7]));
    expect(plan.runs.filter((r) => matchesFilter(parseFilters([`cell_id=${plan.cells[2]!.cellId}`]), r))).toHaveLength(3);
  });

  it.each([
    [['polcy=float32'], /unknown key "polcy"/, 'did you mean "policy"?'],
    [['batchsize=64'], /unknown key "batchsize"/, 'did you mean "batchSize"?'],
    [['policy'], /expected key=value/, undefined],
    [['policy='], /expected key=value/, undefined],
    [['policy=a||b'], /empty value for policy/, undefined],
  ])('%j → exit 2 with %s', (args, message, hint) => {
    const error = mpxErrorOf(() => parseFilters(args));
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(message);
    if (hint) expect(error.hint).toBe(hint);
  });

  it('a value that matches nothing is an error with the values that exist', () => {
    const error = mpxErrorOf(() => assertFilterMatches(parseFilters(['policy=mixed_float61']), [plan]));
    expect(error.message).toBe('--filter policy=mixed_float61 matches no run (policy values: float32, mixed_float16, mixed_bfloat16)');
    expect(error.hint).toBe('did you mean policy=mixed_float16?');
  });

  it('values that each exist but never together are an error too', () => {
    const error = mpxErrorOf(() => assertFilterMatches(parseFilters(['model=mlp,batchSize=512']), [plan]));
    expect(error.message).toMatch(/matches no run: each value exists, but no cell has them all/);
  });

  it('an empty filter matches everything', () => {
    expect(() => assertFilterMatches(NONE, [plan])).not.toThrow();
    expect(plan.runs.every((r) => matchesFilter(NONE, r))).toBe(true);
  });
});
