import { describe, expect, it } from 'vitest';
import { parseByteSize } from '../../src/spec/size.js';
import { loadSpecText } from '../../src/spec/load.js';
import { formatMpxError, MpxError } from '../../src/errors.js';

describe('parseByteSize', () => {
  it('reads bytes, decimal and binary units, any case, with or without a space', () => {
    expect(parseByteSize('1000')).toBe(1000);
    expect(parseByteSize(4096)).toBe(4096);
    expect(parseByteSize('2GiB')).toBe(2 * 2 ** 30);
    expect(parseByteSize('512 MiB')).toBe(512 * 2 ** 20);
    expect(parseByteSize('1.5GB')).toBe(1.5e9);
    expect(parseByteSize('64kb')).toBe(64_000);
    expect(parseByteSize('3 b')).toBe(3);
  });

  it('refuses what is not a positive whole number of bytes', () => {
    for (const bad of ['', 'GiB', '-1', '0', '2 GiBs', '1e9', '0.1B', 1.5, 0, Number.NaN]) {
      expect(parseByteSize(bad), String(bad)).toBeNull();
    }
  });
});

describe('memoryLimit in a spec', () => {
  const spec = (limit: string) => `name: m\nmodels: { mlp: { preset: mlp } }\nmatrix: { policy: [float32] }\nmemoryLimit: ${limit}\n`;

  it('resolves to bytes', () => {
    expect(loadSpecText(spec('2GiB'), 'm.yaml').spec.memoryLimitBytes).toBe(2 ** 31);
    expect(loadSpecText(spec('1000000'), 'm.yaml').spec.memoryLimitBytes).toBe(1_000_000);
    expect(loadSpecText('name: m\nmodels: { mlp: { preset: mlp } }\nmatrix: { policy: [float32] }\n', 'm.yaml').spec.memoryLimitBytes).toBeNull();
  });

  it('points at a size it cannot read', () => {
    let error: unknown;
    try {
      loadSpecText(spec('lots'), 'm.yaml');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(MpxError);
    expect(formatMpxError(error as MpxError)).toMatch(/^m\.yaml:4:14: memoryLimit must be a size such as 2GiB, 512MiB, 1\.5GB or a number of bytes/);
  });
});
