import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  quantize,
  QUANTIZE_KERNEL,
  quantizeWithOps,
  registerQuantizeKernels,
  type QuantizeFormat,
} from '../../../src/worker/precision/quantize.js';
import { roundToBfloat16, roundToFloat16 } from '../../../src/worker/precision/round.js';
import { floatOf, randomBits } from './reference.js';

const FORMATS: QuantizeFormat[] = ['float16', 'bfloat16'];
const ROUND = { float16: roundToFloat16, bfloat16: roundToBfloat16 };

function expectedOf(src: Float32Array, format: QuantizeFormat): Float32Array {
  const out = new Float32Array(src.length);
  ROUND[format](src, out);
  return out;
}

/** Edge values of both formats, then random bit patterns (NaN, Inf, subnormals included). */
function inputs(randomCount: number): Float32Array {
  const edges = [
    0, -0, 1, -1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 2 ** -24, 2 ** -25, 3 * 2 ** -26,
    3 * 2 ** -25, 1023 * 2 ** -24, 1023.5 * 2 ** -24, 2 ** -14, 65504, 65519.99, 65520, -65520, 1e6, 0.1, -0.1,
    Infinity, -Infinity, NaN, 2 ** -149, -(2 ** -149), 1e-40, floatOf(0x7f7fffff), floatOf(0x7f7f8000),
    floatOf(0x7f7f7fff), floatOf(0x00018000), -(2 ** -26), 2 - 2 ** -11, 2 - 2 ** -8,
  ];
  const out = new Float32Array(edges.length + randomCount);
  out.set(edges);
  out.set(new Float32Array(randomBits(randomCount, 12345).buffer), edges.length);
  return out;
}

/** Bit-exact comparison; with `nanLoose`, a NaN only has to be a NaN. Returns the mismatch count. */
function mismatches(actual: Float32Array, expected: Float32Array, nanLoose = false): number {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  let bad = 0;
  for (let i = 0; i < e.length; i++) {
    if (a[i] === e[i]) continue;
    if (nanLoose && Number.isNaN(actual[i]) && Number.isNaN(expected[i])) continue;
    bad++;
  }
  return bad;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`MpxQuantize on ${backend}`, () => {
    beforeAll(async () => {
      registerQuantizeKernels();
      registerQuantizeKernels(); // idempotent
      expect(await tf.setBackend(backend)).toBe(true);
      await tf.ready();
      expect(tf.getKernel(QUANTIZE_KERNEL, backend)).toBeDefined();
    });

    for (const format of FORMATS) {
      it(`${format}: the kernel equals round.ts bit for bit`, () => {
        const src = inputs(200_000);
        const x = tf.tensor1d(src, 'float32');
        const y = quantize(x, format);
        const got = y.dataSync() as Float32Array;
        expect(y.dtype).toBe('float32');
        expect(y.shape).toEqual(x.shape);
        expect(mismatches(got, expectedOf(src, format))).toBe(0);
        tf.dispose([x, y]);
      });

      it(`${format}: quantizeWithOps equals round.ts bit for bit (NaN: only NaN-ness)`, () => {
        const src = inputs(200_000);
        const x = tf.tensor1d(src, 'float32');
        const before = tf.memory().numTensors;
        const y = quantizeWithOps(x, format);
        expect(tf.memory().numTensors).toBe(before + 1);
        expect(mismatches(y.dataSync() as Float32Array, expectedOf(src, format), true)).toBe(0);
        tf.dispose([x, y]);
      });

      it(`${format}: quantizeWithOps on every float32 exponent`, () => {
        // Each exponent 0..255 with a few mantissas, both signs: covers every binade and tie position.
        const bits: number[] = [];
        for (let exp = 0; exp < 256; exp++) {
          for (const mant of [0, 1, 0x1000, 0x1fff, 0x2000, 0x3000, 0x7f8000, 0x8000, 0x18000, 0x7fffff, 0x400000]) {
            bits.push((exp << 23) | mant, (0x80000000 | (exp << 23) | mant) >>> 0);
          }
        }
        const src = new Float32Array(new Uint32Array(bits).buffer);
        const y = tf.tidy(() => quantizeWithOps(tf.tensor1d(src), format));
        expect(mismatches(y.dataSync() as Float32Array, expectedOf(src, format), true)).toBe(0);
        y.dispose();
      });

      it(`${format}: keeps shape, handles empty and scalar tensors`, () => {
        const m = tf.tensor2d([[1 + 2 ** -11, 3], [65520, -0]]);
        const q = quantize(m, format);
        expect(q.shape).toEqual([2, 2]);
        const empty = quantize(tf.zeros([0, 3]), format);
        expect(empty.shape).toEqual([0, 3]);
        const s = quantize(tf.scalar(0.1), format);
        expect(s.dataSync()[0]).toBe(format === 'float16' ? 0.0999755859375 : 0.10009765625);
        tf.dispose([m, q, empty, s]);
      });

      it(`${format}: the gradient is the upstream gradient rounded onto the same grid`, () => {
        const n = 5000;
        const xv = inputs(n).subarray(0, n).map((v) => (Number.isFinite(v) ? v : 0));
        const dyv = new Float32Array(n).map((_, i) => Math.sin(i) * 10 ** ((i % 12) - 9)); // off-grid, tiny to large
        dyv[0] = 2 ** -26; // underflows in float16
        dyv[1] = 1e5; // overflows in float16
        const x = tf.tensor1d(xv);
        const dy = tf.tensor1d(dyv);
        const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(quantize(t, format), dy)))(x);
        expect(mismatches(g.dataSync() as Float32Array, expectedOf(dyv, format))).toBe(0);
        if (format === 'float16') {
          expect(g.dataSync()[0]).toBe(0);
          expect(g.dataSync()[1]).toBe(Infinity);
        }
        tf.dispose([x, dy, g]);
      });

      it(`${format}: works inside tf.variableGrads and leaks nothing`, () => {
        const v = tf.variable(tf.tensor2d([[0.1, 1 + 2 ** -11], [3, -7.3]]), true, `q-${backend}-${format}`);
        const dyv = new Float32Array([1 + 2 ** -11, 1e-9, -(1 + 3 * 2 ** -11), 0.3]);
        const dy = tf.tensor2d(dyv, [2, 2]);
        const before = tf.memory().numTensors;
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(quantize(v, format), dy)), [v]);
        const g = grads[v.name]!;
        expect(mismatches(g.dataSync() as Float32Array, expectedOf(dyv, format))).toBe(0);
        const q = expectedOf(v.dataSync() as Float32Array, format);
        expect(value.dataSync()[0]).toBeCloseTo(q.reduce((s, qi, i) => s + qi * dyv[i]!, 0), 5);
        tf.dispose([value, g]);
        expect(tf.memory().numTensors).toBe(before);

        tf.tidy(() => {
          quantize(v, format);
          tf.grad((t: tf.Tensor) => tf.sum(quantize(tf.mul(t, 2), format)))(v);
          quantizeWithOps(v, format);
        });
        expect(tf.memory().numTensors).toBe(before);
        tf.dispose([v, dy]);
      });
    }

    it('rejects non-float32 input and unknown formats', () => {
      const i = tf.tensor1d([1, 2], 'int32');
      expect(() => quantize(i, 'float16')).toThrow(/float32/);
      const f = tf.tensor1d([1, 2]);
      expect(() => quantize(f, 'float8' as QuantizeFormat)).toThrow(/format/);
      expect(() => tf.engine().runKernel(QUANTIZE_KERNEL, { x: f }, { format: 'half' })).toThrow(/format/);
      tf.dispose([i, f]);
    });
  });
}
