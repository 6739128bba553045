import { describe, expect, it } from 'vitest';
import { median, range } from '../../src/util/stats.js';

describe('median and range', () => {
  it('summarise repeats: null when empty, NaN when any is NaN', () => {
    expect(median([])).toBeNull();
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([1, Number.NaN])).toBeNaN();
    expect(median([Number.MAX_VALUE, Number.MAX_VALUE * 0.5])).toBe(Number.MAX_VALUE * 0.75);
    expect(range([])).toBeNull();
    expect(range([5])).toBe(0);
    expect(range([2, 7, 3])).toBe(5);
    expect(range([Infinity, Infinity])).toBe(0);
  });
});
