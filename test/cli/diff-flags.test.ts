import { describe, expect, it } from 'vitest';
import { parseFailOn, parseTolerance } from '../../src/cli/diff-flags.js';
import { mpxErrorOf } from '../helpers/mpx-error.js';

describe('--fail-on', () => {
  it('parses signed relative and absolute thresholds, and aliases', () => {
    expect(parseFailOn('peak_bytes:+5%')).toEqual({ metric: 'peak_bytes', direction: 'up', threshold: { relative: 0.05 }, text: 'peak_bytes:+5%' });
    expect(parseFailOn('samples_per_second:-10%')).toMatchObject({ metric: 'samples_per_s', direction: 'down', threshold: { relative: 0.1 } });
    expect(parseFailOn('peakBytes:+1000')).toMatchObject({ metric: 'peak_bytes', direction: 'up', threshold: { absolute: 1000 } });
    expect(parseFailOn('final_loss:0.01')).toMatchObject({ direction: 'any', threshold: { absolute: 0.01 } });
    expect(parseFailOn('final_loss:1e-3')).toMatchObject({ threshold: { absolute: 0.001 } });
  });

  it.each([
    ['peak_bytes', /expected <metric>:<threshold>/],
    ['peak_bytes:+5 %', /expected <metric>:<threshold>/],
    ['peak_bytes:lots', /expected <metric>:<threshold>/],
    [':+5%', /expected <metric>:<threshold>/],
    ['peak_byte:+5%', /"peak_byte" is not a metric/],
    ['status:+5%', /"status" is not a metric/],
  ])('rejects %s', (text, pattern) => {
    const error = mpxErrorOf(() => parseFailOn(text));
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(pattern);
  });

  it('suggests the closest metric', () => {
    expect(mpxErrorOf(() => parseFailOn('peak_byte:+5%')).hint).toBe('did you mean "peak_bytes"?');
  });
});

describe('--tolerance', () => {
  it('parses kinds and metrics', () => {
    expect(parseTolerance('timing=25%')).toEqual(['timing', { relative: 0.25, absolute: 0 }]);
    expect(parseTolerance('final_loss=1e-4')).toEqual(['final_loss', { relative: 0, absolute: 0.0001 }]);
    expect(parseTolerance('samples_per_second=5%')[0]).toBe('samples_per_s');
  });

  it('rejects signs, unknown names and a missing amount', () => {
    expect(mpxErrorOf(() => parseTolerance('timing=+25%')).message).toMatch(/expected <metric or kind>=<amount>/);
    expect(mpxErrorOf(() => parseTolerance('timming=25%')).hint).toBe('did you mean "timing"?');
    expect(mpxErrorOf(() => parseTolerance('timing')).code).toBe('USAGE');
  });
});
