import { describe, expect, it } from 'vitest';
import { parseFailOn } from '../../../src/cli/diff-flags.js';
import { type DiffOptions, diffResults, exceeds, isRowChanged } from '../../../src/results/diff/compare.js';
import { formatChange, formatNoiseBand } from '../../../src/results/diff/format.js';
import { parseRunMetadata } from '../../../src/results/metadata.js';
import { parseResultsCsv, type ResultTable } from '../../../src/results/table.js';

const HEADER = 'cell,cell_id,model,batch_size,micro_batch_size,policy,accumulation_steps,status,reason,step_ms,step_ms_spread,final_loss,final_loss_spread,eval_accuracy,peak_bytes,rss_peak_bytes';

/** A CSV with the header above; each row gives the values after the axes. */
function table(name: string, rows: string[], metadata: object | null = null, header = HEADER): ResultTable {
  return parseResultsCsv(`${header}\n${rows.join('\n')}\n`, name, `${name}.csv`, metadata === null ? null : parseRunMetadata(JSON.stringify(metadata)));
}

const OPTIONS: DiffOptions = { baseLabel: 'base', headLabel: 'head' };

const BASE_ROWS = [
  '0,aaaa,mlp,16,16,float32,1,ok,,10,,0.5,,0.75,1000,200000000',
  '1,bbbb,mlp,16,16,mixed_float16,1,ok,,20,4,0.51,,0.75,1000,200000000',
  '2,cccc,cnn,16,16,float32,1,ok,,30,,0.6,,0.7,5000,210000000',
];

describe('diffResults: matching', () => {
  it('identical tables: every metric unchanged, nothing added or removed', () => {
    const r = diffResults([table('s', BASE_ROWS)], [table('s', BASE_ROWS)], OPTIONS);
    expect(r.summary).toMatchObject({ tables: 1, cellsCompared: 3, cellsChanged: 0, metricsChanged: 0, metricsNoise: 0, cellsAdded: 0, cellsRemoved: 0 });
    expect(r.tables[0]!.rows.flatMap((row) => row.metrics.map((m) => m.verdict))).toSatisfy((v: string[]) => v.every((x) => x === 'unchanged'));
    expect(r.failures).toEqual([]);
  });

  it('matches by the axes, not by position: a reordered matrix is no change', () => {
    const r = diffResults([table('s', BASE_ROWS)], [table('s', [...BASE_ROWS].reverse())], OPTIONS);
    expect(r.summary.cellsChanged).toBe(0);
    expect(r.tables[0]!.rows.map((row) => row.cell.label)).toEqual(['cnn bs=16 float32 acc=1', 'mlp bs=16 mixed_float16 acc=1', 'mlp bs=16 float32 acc=1']);
  });

  it('lists added and removed cells', () => {
    const head = [BASE_ROWS[0]!, BASE_ROWS[1]!, '3,dddd,cnn,64,16,float32,4,ok,,30,,0.6,,0.7,5000,210000000'];
    const t = diffResults([table('s', BASE_ROWS)], [table('s', head)], OPTIONS).tables[0]!;
    expect(t.added.map((c) => c.label)).toEqual(['cnn bs=64 float32 acc=4']);
    expect(t.added[0]!.cellId).toBe('dddd');
    expect(t.removed.map((c) => c.label)).toEqual(['cnn bs=16 float32 acc=1']);
    expect(t.rows).toHaveLength(2);
  });

  it('flags a cell whose id changed (same axes, different resolved config) and still compares it', () => {
    const head = [BASE_ROWS[0]!.replace('aaaa', 'a2a2').replace(',0.5,', ',0.45,'), BASE_ROWS[1]!, BASE_ROWS[2]!];
    const r = diffResults([table('s', BASE_ROWS)], [table('s', head)], OPTIONS);
    const row = r.tables[0]!.rows[0]!;
    expect(row).toMatchObject({ isConfigChanged: true, baseCellId: 'aaaa', headCellId: 'a2a2' });
    expect(row.metrics.find((m) => m.metric === 'final_loss')).toMatchObject({ verdict: 'changed', base: 0.5, head: 0.45 });
    expect(r.summary.cellsConfigChanged).toBe(1);
  });

  it('whole specs only on one side are added or removed tables', () => {
    const r = diffResults([table('old', BASE_ROWS), table('both', BASE_ROWS)], [table('both', BASE_ROWS), table('new', BASE_ROWS)], OPTIONS);
    expect(r.tables.map((t) => [t.name, t.status])).toEqual([
      ['both', 'compared'],
      ['new', 'added'],
      ['old', 'removed'],
    ]);
    expect(r.tables[1]!.added).toHaveLength(3);
    expect(r.tables[2]!.removed).toHaveLength(3);
  });

  it('reports status and other info changes with the head reason', () => {
    const head = [BASE_ROWS[0]!, '1,bbbb,mlp,16,16,mixed_float16,1,oom,measured 2 GiB > budget,,,,,,,', BASE_ROWS[2]!];
    const row = diffResults([table('s', BASE_ROWS)], [table('s', head)], OPTIONS).tables[0]!.rows[1]!;
    expect(row.info).toEqual([{ column: 'status', base: 'ok', head: 'oom' }]);
    expect(row.headReason).toBe('measured 2 GiB > budget');
    // values that vanished are changes, not noise
    expect(row.metrics.find((m) => m.metric === 'peak_bytes')).toMatchObject({ verdict: 'changed', head: null });
  });

  it('compares only the columns both sides know, and lists the others', () => {
    const narrow = 'cell,cell_id,model,batch_size,micro_batch_size,policy,accumulation_steps,status,reason,step_ms,step_ms_spread,final_loss,final_loss_spread,eval_accuracy,peak_bytes';
    const base = table('s', BASE_ROWS.map((r) => r.slice(0, r.lastIndexOf(','))), null, narrow);
    const t = diffResults([base], [table('s', BASE_ROWS)], OPTIONS).tables[0]!;
    expect(t.columnsOnlyInHead).toEqual(['rss_peak_bytes']);
    expect(t.rows[0]!.metrics.find((m) => m.metric === 'rss_peak_bytes')).toBeUndefined();
    expect(t.rows.every((row) => !isRowChanged(row))).toBe(true);
  });
});

describe('diffResults: noise', () => {
  const metric = (baseRow: string, headRow: string, name: string, options: Partial<DiffOptions> = {}) =>
    diffResults([table('s', [baseRow])], [table('s', [headRow])], { ...OPTIONS, ...options }).tables[0]!.rows[0]!.metrics.find((m) => m.metric === name)!;

  it('timing within the default ±10% is noise; beyond it a change', () => {
    expect(metric(BASE_ROWS[0]!, BASE_ROWS[0]!.replace(',10,', ',10.9,'), 'step_ms')).toMatchObject({ verdict: 'noise', relative: expect.closeTo(0.09, 9) });
    expect(metric(BASE_ROWS[0]!, BASE_ROWS[0]!.replace(',10,', ',11.5,'), 'step_ms')).toMatchObject({ verdict: 'changed' });
  });

  it("the repeats' spread widens the band (the larger of base and head spread)", () => {
    // step_ms 20 with spread 4: 23.5 is +17.5% but within the spread
    const base = BASE_ROWS[1]!;
    const m = metric(base, base.replace(',20,4,', ',23.5,1,'), 'step_ms');
    expect(m).toMatchObject({ verdict: 'noise', noise: { bound: 4, source: 'spread' } });
    expect(formatNoiseBand(m)).toBe('spread ±4');
    expect(metric(base, base.replace(',20,4,', ',24.5,1,'), 'step_ms').verdict).toBe('changed');
  });

  it('tensor bytes are exact: one byte more is a change', () => {
    const m = metric(BASE_ROWS[0]!, BASE_ROWS[0]!.replace(',1000,', ',1001,'), 'peak_bytes');
    expect(m).toMatchObject({ verdict: 'changed', delta: 1, kind: 'bytes' });
    expect(formatNoiseBand(m)).toBe('exact');
  });

  it('process memory (rss) has a 10% band', () => {
    expect(metric(BASE_ROWS[0]!, BASE_ROWS[0]!.replace(',200000000', ',210000000'), 'rss_peak_bytes').verdict).toBe('noise');
  });

  it('losses: only the last printed digit is forgiven', () => {
    expect(metric(BASE_ROWS[0]!, BASE_ROWS[0]!.replace(',0.5,', ',0.5000005,'), 'final_loss').verdict).toBe('noise');
    expect(metric(BASE_ROWS[0]!, BASE_ROWS[0]!.replace(',0.5,', ',0.50001,'), 'final_loss').verdict).toBe('changed');
  });

  it('nan: both nan is unchanged, becoming nan is a change', () => {
    const nan = BASE_ROWS[0]!.replace(',0.5,', ',nan,');
    expect(metric(nan, nan, 'final_loss').verdict).toBe('unchanged');
    expect(metric(BASE_ROWS[0]!, nan, 'final_loss')).toMatchObject({ verdict: 'changed', delta: null });
  });

  it('--tolerance overrides a kind or one metric', () => {
    const head = BASE_ROWS[0]!.replace(',10,', ',12,').replace(',1000,', ',1010,');
    expect(metric(BASE_ROWS[0]!, head, 'step_ms', { tolerances: { timing: { relative: 0.25, absolute: 0 } } }).verdict).toBe('noise');
    expect(metric(BASE_ROWS[0]!, head, 'peak_bytes', { tolerances: { peak_bytes: { relative: 0, absolute: 16 } } }).verdict).toBe('noise');
    const r = diffResults([], [table('s', [head])], { ...OPTIONS, tolerances: { timing: { relative: 0.25, absolute: 0 } } });
    expect(r.tolerances.timing).toEqual({ relative: 0.25, absolute: 0 });
  });
});

describe('--fail-on thresholds', () => {
  it('fails only for real changes beyond the threshold in its direction', () => {
    const head = [
      BASE_ROWS[0]!.replace(',1000,', ',1060,'), // peak +6%
      BASE_ROWS[1]!.replace(',1000,', ',1040,'), // peak +4%
      BASE_ROWS[2]!.replace(',5000,', ',4000,'), // peak -20%
    ];
    const run = (rules: string[]) =>
      diffResults([table('s', BASE_ROWS)], [table('s', head)], { ...OPTIONS, failOn: rules.map((r) => parseFailOn(r)) }).failures;
    expect(run(['peak_bytes:+5%']).map((f) => f.cell)).toEqual(['mlp bs=16 float32 acc=1']);
    expect(run(['peak_bytes:+5%'])[0]).toMatchObject({ table: 's', metric: 'peak_bytes', rule: 'peak_bytes:+5%', baseText: '1000', headText: '1060', change: '+6.00%' });
    expect(run(['peak_bytes:-10%']).map((f) => f.cell)).toEqual(['cnn bs=16 float32 acc=1']);
    expect(run(['peak_bytes:5%']).map((f) => f.cell)).toEqual(['mlp bs=16 float32 acc=1', 'cnn bs=16 float32 acc=1']);
    expect(run(['peak_bytes:+50'])).toHaveLength(1);
    expect(run(['peak_bytes:+100%'])).toEqual([]);
  });

  it('noise never fails: a timing change inside the spread passes even a tight threshold', () => {
    const head = [BASE_ROWS[0]!, BASE_ROWS[1]!.replace(',20,4,', ',23,4,'), BASE_ROWS[2]!];
    const r = diffResults([table('s', BASE_ROWS)], [table('s', head)], { ...OPTIONS, failOn: [parseFailOn('step_ms:+1%')] });
    expect(r.failures).toEqual([]);
  });

  it('a value becoming nan breaks any rule on it; a vanished value breaks none', () => {
    const rule = { direction: 'down' as const, threshold: { relative: 0.5 } };
    expect(exceeds({ base: 0.5, head: Number.NaN, delta: null }, rule)).toBe(true);
    expect(exceeds({ base: 0.5, head: null, delta: null }, rule)).toBe(false);
    expect(exceeds({ base: Number.NaN, head: 0.5, delta: null }, rule)).toBe(false);
    expect(exceeds({ base: 0, head: 1, delta: 1 }, { direction: 'up', threshold: { relative: 0.05 } })).toBe(true);
    expect(exceeds({ base: 100, head: 105, delta: 5 }, { direction: 'up', threshold: { relative: 0.05 } })).toBe(false);
  });
});

describe('environment and provenance', () => {
  const meta = (cpu: string, core: string) => ({
    mpxVersion: '0.1.0',
    nodeVersion: 'v20.20.2',
    tfjsVersions: { '@tensorflow/tfjs-core': core },
    backends: ['wasm'],
    cpu: { model: cpu, cores: 2 },
    gpus: [],
    os: 'linux 6.8.0 x64',
    git: { commit: 'abcdef1234567890abcdef', dirty: false },
    date: '2026-01-01T00:00:00.000Z',
  });

  it('lists the facts that differ between the two meta.json files', () => {
    const r = diffResults([table('s', BASE_ROWS, meta('AMD EPYC', '4.22.0'))], [table('s', BASE_ROWS, meta('Intel Xeon', '4.23.0'))], OPTIONS);
    expect(r.tables[0]!.environment).toEqual([
      { field: 'tfjs-core', base: '4.22.0', head: '4.23.0' },
      { field: 'cpu', base: 'AMD EPYC', head: 'Intel Xeon' },
    ]);
    expect(r.tables[0]!.base).toEqual({ source: 's.csv', commit: 'abcdef123456', isDirty: false, date: '2026-01-01T00:00:00.000Z' });
  });

  it('says nothing without metadata', () => {
    expect(diffResults([table('s', BASE_ROWS)], [table('s', BASE_ROWS, meta('x', 'y'))], OPTIONS).tables[0]!.environment).toEqual([]);
  });
});

describe('formatChange', () => {
  it.each([
    [{ base: 100, head: 106, delta: 6, relative: 0.06 }, '+6.00%'],
    [{ base: 100, head: 50, delta: -50, relative: -0.5 }, '-50.0%'],
    [{ base: 1, head: 1.00001, delta: 0.00001, relative: 0.00001 }, '+0.001%'],
    [{ base: 0, head: 0.5, delta: 0.5, relative: null }, '+0.5'],
    [{ base: null, head: 1, delta: null, relative: null }, 'new'],
    [{ base: 1, head: null, delta: null, relative: null }, 'gone'],
    [{ base: 1, head: Number.NaN, delta: null, relative: null }, '—'],
    [{ base: 1, head: 1, delta: 0, relative: 0 }, '0'],
  ])('%j → %s', (m, text) => {
    expect(formatChange(m)).toBe(text);
  });
});
