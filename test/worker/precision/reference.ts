/**
 * Independent reference for the float16 / bfloat16 rounding in src/worker/precision/round.ts, written the
 * textbook way: float32 bits -> 16-bit pattern with explicit integer round-to-nearest-even on the
 * mantissa, then the 16-bit pattern -> float32 bits. (round.ts instead adds a rounding bias to the float32
 * pattern and uses a float addition for float16 subnormals.)
 */

/** float32 bit pattern -> float16 bit pattern, round to nearest even; NaN quiet with payload truncated. */
export function f32BitsToF16Bits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 127 + 15; // biased half exponent
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Half subnormal (or zero): value = m * 2^(exp - 150) = (m / 2^(14 - e)) * 2^-24.
    if (e < -10) return sign; // |x| < 2^-25: rounds to zero (fp32 subnormals included)
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h; // h === 0x400 is exactly the smallest normal
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry may reach 0x7c00 = Infinity
  return sign | h;
}

const f = new Float32Array(1);
const u = new Uint32Array(f.buffer);

/** float16 bit pattern -> float32 bit pattern (exact). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 31) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp === 0) {
    f[0] = mant * 2 ** -24;
    return (u[0]! | sign) >>> 0;
  }
  return (sign | ((exp - 15 + 127) << 23) | (mant << 13)) >>> 0;
}

export function refFloat16Bits(b: number): number {
  return f16BitsToF32Bits(f32BitsToF16Bits(b));
}

/** float32 bit pattern -> bfloat16 (as float32 bits): compare the dropped half with the tie explicitly. */
export function refBfloat16Bits(b: number): number {
  let hi = b >>> 16;
  const lo = b & 0xffff;
  if ((hi & 0x7f80) === 0x7f80 && ((hi & 0x7f) !== 0 || lo !== 0)) return ((hi | 0x40) << 16) >>> 0; // NaN
  if (lo > 0x8000 || (lo === 0x8000 && (hi & 1) === 1)) hi++;
  return (hi << 16) >>> 0;
}

export function bitsOf(x: number): number {
  f[0] = x;
  return u[0]!;
}

export function floatOf(bits: number): number {
  u[0] = bits;
  return f[0]!;
}

/** Deterministic xorshift32 stream of uint32 values. */
export function randomBits(count: number, seed = 0x9e3779b9): Uint32Array {
  const out = new Uint32Array(count);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s;
  }
  return out;
}
