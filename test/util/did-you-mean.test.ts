import { describe, expect, it } from 'vitest';
import { closestMatch, didYouMean } from '../../src/util/did-you-mean.js';

describe('didYouMean', () => {
  it('suggests a likely typo', () => {
    expect(didYouMean('hiden', ['preset', 'input', 'hidden', 'classes'])).toBe('did you mean "hidden"?');
    expect(didYouMean('peak_byte', ['peak_bytes', 'step_ms'])).toBe('did you mean "peak_bytes"?');
    expect(didYouMean('0.25', ['policy=float32'], (m) => `policy=${m}`)).toBeUndefined();
  });

  it('matches another case at any distance', () => {
    expect(closestMatch('BatchSize', ['batchSize', 'policy'])).toBe('batchSize');
  });

  it('says nothing when no candidate is close (a wrong guess is worse than none)', () => {
    expect(didYouMean('gpu', ['model', 'batchSize', 'policy'])).toBeUndefined();
    expect(didYouMean('anything', [])).toBeUndefined();
    expect(didYouMean('', ['a'])).toBeUndefined();
  });

  it('shows the match the way the caller writes it', () => {
    expect(didYouMean('flot32', ['float32', 'mixed_float16'], (m) => `policy=${m}`)).toBe('did you mean policy=float32?');
  });
});
