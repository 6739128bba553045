import { describe, expect, it } from 'vitest';
import {
  roundScalarToBfloat16,
  roundScalarToFloat16,
  roundToBfloat16,
  roundToFloat16,
} from '../../../src/worker/precision/round.js';
import { bitsOf, f16BitsToF32Bits, floatOf, randomBits, refBfloat16Bits, refFloat16Bits } from './reference.js';

const f16 = (x: number): number => roundScalarToFloat16(x);
const bf16 = (x: number): number => roundScalarToBfloat16(x);

describe('exhaustive over the float16 grid', () => {
  it('keeps every float16 value, and rounds every midpoint (and its float32 neighbours) correctly', () => {
    const next = (x: number): number => floatOf(bitsOf(x) + 1); // next float32 towards +Infinity (x > 0)
    const prev = (x: number): number => floatOf(bitsOf(x) - 1);
    const failures: string[] = [];
    const check = (input: number, expected: number): void => {
      const got = f16(input);
      if (!Object.is(got, expected)) failures.push(`${input} -> ${got}, expected ${expected}`);
    };
    for (let h = 0; h <= 0x7bff; h++) {
      const a = floatOf(f16BitsToF32Bits(h));
      const b = h === 0x7bff ? 65536 : floatOf(f16BitsToF32Bits(h + 1));
      const upper = h === 0x7bff ? Infinity : b;
      const mid = (a + b) / 2; // exact in float32: one more bit than a half has
      const even = (h & 1) === 0 ? a : upper;
      check(a, a);
      check(-a, -a);
      check(mid, even);
      check(-mid, -even);
      check(next(mid), upper);
      if (mid > 0) check(prev(mid), a);
      if (refFloat16Bits(bitsOf(mid)) !== bitsOf(even)) failures.push(`reference disagrees at ${mid}`);
    }
    expect(failures.slice(0, 5)).toEqual([]);
  });
});

describe('roundToFloat16 edge cases', () => {
  const cases: Array<[string, number, number]> = [
    ['1 + 2^-11 (tie) -> 1', 1 + 2 ** -11, 1],
    ['1 + 3*2^-11 (tie) -> 1 + 2^-9', 1 + 3 * 2 ** -11, 1 + 2 ** -9],
    ['1 + 2^-11 + 2^-23 -> 1 + 2^-10', 1 + 2 ** -11 + 2 ** -23, 1 + 2 ** -10],
    ['1 + 2^-11 - 2^-23 -> 1', 1 + 2 ** -11 - 2 ** -23, 1],
    ['2049 (tie at 2^11) -> 2048', 2049, 2048],
    ['2051 (tie at 2^11) -> 2052', 2051, 2052],
    ['1024.5 (tie at 2^10) -> 1024', 1024.5, 1024],
    ['1025.5 (tie at 2^10) -> 1026', 1025.5, 1026],
    ['2^-14 * (1 + 2^-11) (tie at min normal) -> 2^-14', 2 ** -14 * (1 + 2 ** -11), 2 ** -14],
    ['2 - 2^-11 (tie, carries into next binade) -> 2', 2 - 2 ** -11, 2],
    ['0.1 -> 0.0999755859375', 0.1, 0.0999755859375],
    ['smallest subnormal 2^-24', 2 ** -24, 2 ** -24],
    ['2^-25 (tie) -> 0', 2 ** -25, 0],
    ['2^-25 + 2^-40 -> 2^-24', 2 ** -25 + 2 ** -40, 2 ** -24],
    ['3*2^-26 -> 2^-24', 3 * 2 ** -26, 2 ** -24],
    ['3*2^-25 (tie) -> 2^-23', 3 * 2 ** -25, 2 ** -23],
    ['5*2^-25 (tie, 2.5 ulp) -> 2^-23', 5 * 2 ** -25, 2 ** -23],
    ['7*2^-25 (tie, 3.5 ulp) -> 2^-22', 7 * 2 ** -25, 2 ** -22],
    ['largest subnormal 1023*2^-24', 1023 * 2 ** -24, 1023 * 2 ** -24],
    ['1023.5*2^-24 (tie) -> 2^-14', 1023.5 * 2 ** -24, 2 ** -14],
    ['min normal 2^-14', 2 ** -14, 2 ** -14],
    ['fp32 subnormal 2^-149 -> 0', 2 ** -149, 0],
    ['65504', 65504, 65504],
    ['65519.99 -> 65504', 65519.99, 65504],
    ['65519 -> 65504', 65519, 65504],
    ['65520 -> Infinity', 65520, Infinity],
    ['-65520 -> -Infinity', -65520, -Infinity],
    ['1e6 -> Infinity', 1e6, Infinity],
    ['3.4e38 -> Infinity', 3.4e38, Infinity],
    ['Infinity', Infinity, Infinity],
    ['-Infinity', -Infinity, -Infinity],
    ['-1 - 3*2^-11 -> -(1 + 2^-9)', -1 - 3 * 2 ** -11, -(1 + 2 ** -9)],
  ];
  it.each(cases)('%s', (_name, input, expected) => {
    expect(f16(input)).toBe(expected);
    expect(bitsOf(f16(input))).toBe(refFloat16Bits(bitsOf(input)));
  });

  it('keeps the sign of zero, also for negatives that round to zero', () => {
    expect(Object.is(f16(-0), -0)).toBe(true);
    expect(Object.is(f16(0), 0)).toBe(true);
    expect(Object.is(f16(-(2 ** -26)), -0)).toBe(true);
    expect(Object.is(f16(-(2 ** -25)), -0)).toBe(true);
    expect(Object.is(f16(2 ** -26), 0)).toBe(true);
  });

  it('keeps NaN a NaN, quiet, sign kept, payload truncated to 10 bits', () => {
    expect(f16(NaN)).toBeNaN();
    const signalling = 0x7f800001; // payload only in the dropped low bits
    expect(bitsOf(f16(floatOf(signalling)))).toBe(0x7fc00000);
    expect(bitsOf(f16(floatOf(0xffa12345)))).toBe(refFloat16Bits(0xffa12345));
    expect(bitsOf(f16(floatOf(0xffa12345)))).toBe(0xffe12000);
  });
});

describe('roundToBfloat16 edge cases', () => {
  const max = floatOf(0x7f7f0000);
  const cases: Array<[string, number, number]> = [
    ['1 + 2^-8 (tie) -> 1', 1 + 2 ** -8, 1],
    ['1 + 3*2^-8 (tie) -> 1 + 2^-6', 1 + 3 * 2 ** -8, 1 + 2 ** -6],
    ['1 + 2^-8 + 2^-23 -> 1 + 2^-7', 1 + 2 ** -8 + 2 ** -23, 1 + 2 ** -7],
    ['257 (tie) -> 256', 257, 256],
    ['259 (tie) -> 260', 259, 260],
    ['2 - 2^-8 (tie, carries) -> 2', 2 - 2 ** -8, 2],
    ['0.1 -> 0.10009765625', 0.1, 0.10009765625],
    ['bf16 max stays', max, max],
    ['fp32 max -> Infinity', floatOf(0x7f7fffff), Infinity],
    ['tie past bf16 max (0x7f7f8000) -> Infinity', floatOf(0x7f7f8000), Infinity],
    ['just below that tie -> bf16 max', floatOf(0x7f7f7fff), max],
    ['-fp32 max -> -Infinity', floatOf(0xff7fffff), -Infinity],
    ['fp32 subnormal tie 0x00008000 -> 0', floatOf(0x00008000), 0],
    ['fp32 subnormal tie 0x00018000 -> 0x00020000', floatOf(0x00018000), floatOf(0x00020000)],
    ['fp32 subnormal 0x00008001 -> 0x00010000', floatOf(0x00008001), floatOf(0x00010000)],
    ['1e-40 (fp32 subnormal)', 1e-40, floatOf(refBfloat16Bits(bitsOf(1e-40)))],
    ['Infinity', Infinity, Infinity],
    ['-Infinity', -Infinity, -Infinity],
    ['65520 (finite in bf16)', 65520, 65536],
  ];
  it.each(cases)('%s', (_name, input, expected) => {
    expect(bf16(input)).toBe(expected);
    expect(bitsOf(bf16(input))).toBe(refBfloat16Bits(bitsOf(input)));
  });

  it('keeps the sign of zero and NaN-ness (quiet)', () => {
    expect(Object.is(bf16(-0), -0)).toBe(true);
    expect(Object.is(bf16(-floatOf(0x00008000)), -0)).toBe(true);
    expect(bf16(NaN)).toBeNaN();
    expect(bitsOf(bf16(floatOf(0x7f800001)))).toBe(0x7fc00000);
    expect(bitsOf(bf16(floatOf(0xff812345)))).toBe(0xffc10000);
  });
});

describe('random bit patterns', () => {
  const N = 1_000_000;
  const bits = randomBits(N);
  const src = new Float32Array(bits.buffer.slice(0));

  it('float16 matches the reference on 1e6 random uint32 patterns (NaN, Inf and subnormals included)', () => {
    const dst = new Float32Array(N);
    roundToFloat16(src, dst);
    const out = new Uint32Array(dst.buffer);
    let mismatches = 0;
    let first = -1;
    for (let i = 0; i < N; i++) {
      if (out[i] !== refFloat16Bits(bits[i]!)) {
        mismatches++;
        if (first < 0) first = i;
      }
    }
    expect(mismatches, first >= 0 ? `first at input 0x${bits[first]!.toString(16)}` : '').toBe(0);
  });

  it('float16 matches the reference on every pattern near the float16 range', () => {
    // |x| in [2^-26, 2^17): every exponent that matters, 2^16 mantissas each (stride 128 bits).
    let mismatches = 0;
    const chunk = new Float32Array(1 << 16);
    const cu = new Uint32Array(chunk.buffer);
    for (let exp = 101; exp <= 143; exp++) {
      for (const sign of [0, 0x80000000]) {
        for (let j = 0; j < cu.length; j++) cu[j] = (sign | (exp << 23) | (j << 7) | (j & 0x7f)) >>> 0;
        const expected = Array.from(cu, refFloat16Bits);
        roundToFloat16(chunk, chunk); // in place
        for (let j = 0; j < cu.length; j++) if (cu[j] !== expected[j]) mismatches++;
      }
    }
    expect(mismatches).toBe(0);
  });

  it('bfloat16 matches the reference on 1e6 random uint32 patterns', () => {
    const dst = new Float32Array(N);
    roundToBfloat16(src, dst);
    const out = new Uint32Array(dst.buffer);
    let mismatches = 0;
    for (let i = 0; i < N; i++) if (out[i] !== refBfloat16Bits(bits[i]!)) mismatches++;
    expect(mismatches).toBe(0);
  });

  it('in place (dst === src) and the scalar versions agree with the array versions', () => {
    const a = src.slice(0, 10_000);
    const b = new Float32Array(a.length);
    roundToFloat16(a, b);
    const inPlace = a.slice();
    roundToFloat16(inPlace, inPlace);
    expect(new Uint32Array(inPlace.buffer)).toEqual(new Uint32Array(b.buffer));
    for (let i = 0; i < 1000; i++) expect(bitsOf(f16(a[i]!))).toBe(bitsOf(b[i]!));
    roundToBfloat16(a, b);
    for (let i = 0; i < 1000; i++) expect(bitsOf(bf16(a[i]!))).toBe(bitsOf(b[i]!));
  });

  it('works on views with a byte offset and rejects mismatched lengths', () => {
    const buf = new Float32Array([0, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 0]);
    const view = buf.subarray(1, 3);
    roundToFloat16(view, view);
    expect(Array.from(buf)).toEqual([0, 1, 1 + 2 ** -9, 0]);
    expect(() => roundToFloat16(new Float32Array(2), new Float32Array(3))).toThrow(RangeError);
  });
});
