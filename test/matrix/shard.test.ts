import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assignShards, formatShard, parseShard, selectShard, type ShardKey } from '../../src/matrix/shard.js';
import { mpxErrorOf } from '../helpers/mpx-error.js';

const keys = (n: number, specName = 'a'): ShardKey[] =>
  Array.from({ length: n }, (_, i) => ({ runId: (i * 2654435761 >>> 0).toString(16).padStart(16, '0'), specName }));

describe('parseShard', () => {
  it('reads <index>/<count>, 1-based', () => {
    expect(parseShard('1/4')).toEqual({ index: 1, count: 4 });
    expect(parseShard(' 4 / 4 ')).toEqual({ index: 4, count: 4 });
    expect(formatShard(parseShard('3/10'))).toBe('3/10');
  });

  it.each(['0/4', '5/4', '1/0', '4', 'a/b', '-1/4', '1.5/4', '', '1/2000000'])('rejects %j with the form and a hint (exit 2)', (text) => {
    const error = mpxErrorOf(() => parseShard(text));
    expect(error.code).toBe('USAGE');
    expect(error.message).toBe(`--shard must be <index>/<count> with 1 ≤ index ≤ count (1-based), got "${text}"`);
    expect(error.hint).toMatch(/JOB_COMPLETION_INDEX \+ 1/);
  });
});

describe('assignShards', () => {
  it('is a partition: every run in exactly one shard, sizes within one of each other', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 40 }), (n, count) => {
        const items = keys(n);
        const shards = assignShards(items, count);
        const sizes = Array.from({ length: count }, (_, s) => shards.filter((x) => x === s + 1).length);
        expect(sizes.reduce((a, b) => a + b, 0)).toBe(n);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        for (let s = 1; s <= count; s++) {
          expect(selectShard(items, { index: s, count })).toEqual(items.filter((_, i) => shards[i] === s));
        }
      }),
    );
  });

  it('does not depend on the order of the runs (the matrix may be reordered)', () => {
    fc.assert(
      fc.property(fc.shuffledSubarray(keys(60), { minLength: 60, maxLength: 60 }), fc.integer({ min: 1, max: 9 }), (shuffled, count) => {
        const byId = (items: ShardKey[]) => {
          const shards = assignShards(items, count);
          return Object.fromEntries(items.map((item, i) => [item.runId, shards[i]]));
        };
        expect(byId(shuffled)).toEqual(byId(keys(60)));
      }),
    );
  });

  it('tells two specs apart that share a run id, and stays balanced across specs', () => {
    const items = [...keys(5, 'a'), ...keys(5, 'b')];
    const shards = assignShards(items, 2);
    expect(shards.filter((s) => s === 1)).toHaveLength(5);
    // the same run id of the two specs goes to different shards (they are neighbours in the order)
    for (let i = 0; i < 5; i++) expect(shards[i]).not.toBe(shards[i + 5]);
  });
});
