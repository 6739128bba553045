import { describe, expect, it } from 'vitest';
import { capacityRows } from '../../src/bench/report.js';

describe('the capacity bench rows', () => {
  it('judge the wall time against a minute and the most probes any search used against 6', () => {
    const [wall, probes] = capacityRows({ searches: 12, wallMs: 43_400, probes: [9, 4, 7, 7, 4, 4, 4, 5, 4, 5], mostProbes: 'wide-mlp float32 acc=1' });
    expect(wall).toMatchObject({ id: 'capacity.wall', value: '43.4 s', pass: true });
    expect(wall!.ratio).toBeCloseTo(43.4 / 60, 6);
    expect(probes).toMatchObject({ id: 'capacity.probes', value: 'median 4, most 9 (wide-mlp float32 acc=1)', ratio: 1.5, pass: false });
  });

  it('turn a failed measurement into one error row', () => {
    expect(capacityRows({ error: 'spawn failed' })).toMatchObject([{ id: 'capacity', pass: null }]);
  });
});
