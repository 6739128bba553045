/**
 * Bit-exact rounding of float32 values onto the float16 and bfloat16 grids (the result stays float32).
 *
 * tfjs has no 16-bit float dtype, so mixed precision is emulated by keeping float32 storage and rounding
 * values wherever Keras would cast to a 16-bit dtype. Both functions are IEEE 754 round-to-nearest,
 * ties-to-even, i.e. exactly what a float32 -> float16/bfloat16 -> float32 round trip gives on hardware:
 *
 * - float16: subnormals down to 2^-24; |x| >= 65520 (the tie between 65504, the largest finite half, and
 *   2^16) becomes +-Infinity; +-0 and +-Infinity keep their sign; NaN stays NaN, made quiet, sign kept,
 *   payload truncated to the 10 bits a half can hold (as x86 F16C / ARM FCVT do).
 * - bfloat16: the top 16 bits of the float32 pattern, rounded to nearest even on the dropped 16 bits
 *   (this rule also covers float32 subnormals, and overflows to +-Infinity past the largest bfloat16);
 *   NaN stays NaN, made quiet (as TensorFlow's float -> bfloat16 cast does), sign kept, payload truncated.
 *
 * Pure: no tfjs. Single pass, no allocation per element (two typed-array views per call).
 * Node 20 has no Math.f16round, hence the hand-written float16 rule.
 */

export const SIGN = 0x80000000;
export const ABS = 0x7fffffff;
export const EXP_ALL = 0x7f800000; // +Infinity
export const QUIET = 0x00400000;
/** |x| >= this (65520 = 0x477ff000) rounds to Infinity in float16. */
export const F16_OVERFLOW = 0x477ff000;
/** 2^-14, the smallest normal float16. */
export const F16_MIN_NORMAL = 0x38800000;
/** Keeps the sign, exponent and the top 10 mantissa bits. */
export const F16_KEEP = 0xffffe000;
export const BF16_KEEP = 0xffff0000;

function u32View(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function checkLengths(src: Float32Array, dst: Float32Array): void {
  if (dst.length !== src.length) {
    throw new RangeError(`round: dst has ${dst.length} elements, src has ${src.length}`);
  }
}

/**
 * Rounds every element of `src` to the nearest float16 (ties to even) and writes it, as float32, to `dst`.
 * `dst` may be `src` (in place).
 */
export function roundToFloat16(src: Float32Array, dst: Float32Array): void {
  checkLengths(src, dst);
  f16Loop(u32View(src), src, u32View(dst), dst);
}

function f16Loop(su: Uint32Array, sf: Float32Array, du: Uint32Array, df: Float32Array): void {
  const n = su.length;
  for (let i = 0; i < n; i++) {
    const b = su[i]!;
    const a = b & ABS;
    if (a >= F16_MIN_NORMAL) {
      if (a < F16_OVERFLOW) {
        // Normal half: drop 13 mantissa bits with round-to-nearest-even. A carry out of the mantissa
        // correctly bumps the exponent (e.g. 2047.5 ulp -> next binade); a >= 65520 never gets here.
        du[i] = (b & SIGN) | ((a + 0x0fff + ((a >>> 13) & 1)) & F16_KEEP);
      } else if (a <= EXP_ALL) {
        du[i] = (b & SIGN) | EXP_ALL; // overflow, or +-Infinity itself
      } else {
        du[i] = (b | QUIET) & F16_KEEP; // NaN
      }
    } else {
      // |x| < 2^-14: the grid is the multiples of 2^-24. 0.5 has a float32 ulp of 2^-24, so adding 0.5
      // and rounding to float32 is a round-to-nearest-even onto that grid (the double-precision sum is
      // exact or cannot land on a false tie, see below), and subtracting 0.5 is exact.
      // Double rounding: |x| >= 2^-25 has a float32 ulp >= 2^-48, so |x| + 0.5 is exact in a double;
      // smaller |x| lies at least 2^-49 away from the only tie 2^-25, far more than a double's 2^-54 error.
      const ax = Math.abs(sf[i]!);
      df[i] = Math.fround(ax + 0.5) - 0.5;
      du[i] = du[i]! | (b & SIGN);
    }
  }
}

/**
 * Rounds every element of `src` to the nearest bfloat16 (ties to even) and writes it, as float32, to `dst`.
 * `dst` may be `src` (in place).
 */
export function roundToBfloat16(src: Float32Array, dst: Float32Array): void {
  checkLengths(src, dst);
  bf16Loop(u32View(src), u32View(dst));
}

function bf16Loop(su: Uint32Array, du: Uint32Array): void {
  const n = su.length;
  for (let i = 0; i < n; i++) {
    const b = su[i]!;
    if ((b & ABS) > EXP_ALL) {
      du[i] = (b | QUIET) & BF16_KEEP; // NaN: quiet, top 7 payload bits kept
    } else {
      // Round to nearest even on the low 16 bits. No carry can reach the sign bit: |b| <= 0x7f800000.
      // 0x7f7f8000 and up (the tie past the largest bfloat16) carries into 0x7f800000 = Infinity.
      du[i] = (b + 0x7fff + ((b >>> 16) & 1)) & BF16_KEEP;
    }
  }
}

const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);

/**
 * Scalar version of {@link roundToFloat16}. `x` is first rounded to float32 (every tfjs value is float32);
 * rounding a double straight to float16 could differ by double rounding.
 */
export function roundScalarToFloat16(x: number): number {
  scratchF[0] = x;
  f16Loop(scratchU, scratchF, scratchU, scratchF);
  return scratchF[0];
}

/** Scalar version of {@link roundToBfloat16}; `x` is first rounded to float32. */
export function roundScalarToBfloat16(x: number): number {
  scratchF[0] = x;
  bf16Loop(scratchU, scratchU);
  return scratchF[0];
}
