import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellQuote } from '../../src/util/shell-quote.js';

describe('shellQuote', () => {
  it('leaves safe words as they are and single-quotes the rest', () => {
    expect(shellQuote('a/b-c.yaml')).toBe('a/b-c.yaml');
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('$HOME')).toBe("'$HOME'");
  });

  it('bash reads every quoted word back as it was', () => {
    const words = ["it's", '$HOME', 'a b', 'policy=float32|mixed_bfloat16', '"', '`x`', '\\', ''];
    const echoed = execFileSync('bash', ['-c', `printf '%s\\n' ${words.map((w) => (w === '' ? "''" : shellQuote(w))).join(' ')}`], { encoding: 'utf8' });
    expect(echoed.split('\n').slice(0, -1)).toEqual(words);
  });
});
