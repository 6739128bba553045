import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { assembleSimdModule, simdLoopsFor, type SimdLoops } from '../../../src/worker/kernels/simd.js';
import { roundToBfloat16, roundToFloat16 } from '../../../src/worker/precision/round.js';
import { randomBits } from '../precision/reference.js';

let backend: BackendWasm;
let simd: SimdLoops;

/** A float32 buffer on the wasm heap holding `values`; returns its byte offset (and frees it in `after`). */
function onHeap(values: Float32Array | number): { offset: number; read(): Float32Array; free(): void } {
  const length = typeof values === 'number' ? values : values.length;
  const info = backend.makeOutput([length], 'float32');
  if (typeof values !== 'number') (backend.typedArrayFromHeap(info) as Float32Array).set(values);
  return {
    offset: backend.dataIdMap.get(info.dataId).memoryOffset,
    read: () => (backend.typedArrayFromHeap(info) as Float32Array).slice(),
    free: () => backend.disposeData(info.dataId),
  };
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const [x, y] = [new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer, b.byteOffset, b.length)];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

const EDGES = [
  0, -0, 1, -1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1023.5 * 2 ** -24, 2 ** -14, 65504, 65519.99,
  65520, -65520, 1e6, Infinity, -Infinity, NaN, 2 ** -149, -(2 ** -149), 1e-40, 3.4e38, -3.4e38, 1 + 2 ** -8, 1 + 3 * 2 ** -8,
];

describe('SIMD loops on the wasm backend memory', () => {
  beforeAll(async () => {
    expect(await tf.setBackend('wasm')).toBe(true);
    await tf.ready();
    backend = tf.backend() as BackendWasm;
    expect(WebAssembly.validate(assembleSimdModule())).toBe(true);
    const loops = simdLoopsFor(backend);
    expect(loops).not.toBeNull();
    simd = loops!;
  });

  for (const [format, reference] of [
    ['float16', roundToFloat16],
    ['bfloat16', roundToBfloat16],
  ] as const) {
    it(`${format}: rounds like round.ts bit for bit, for every length 0..9, in place too`, () => {
      const src = new Float32Array(EDGES.length + 100_000);
      src.set(EDGES);
      src.set(new Float32Array(randomBits(100_000, 99).buffer), EDGES.length);
      const expected = new Float32Array(src.length);
      reference(src, expected);
      const round = format === 'float16' ? simd.roundFloat16 : simd.roundBfloat16;
      const input = onHeap(src);
      const output = onHeap(src.length);
      round(input.offset, output.offset, src.length);
      expect(sameBits(output.read(), expected)).toBe(true);
      for (let length = 0; length <= 9; length++) {
        const part = onHeap(src.subarray(3, 3 + length));
        round(part.offset, part.offset, length);
        expect(sameBits(part.read(), expected.subarray(3, 3 + length))).toBe(true);
        part.free();
      }
      [input, output].forEach((b) => b.free());
    });
  }

  it('sqrt: the same bits as Math.fround(Math.sqrt(x)) (NaN: only NaN-ness), also past the last multiple of 4', () => {
    const src = Float32Array.from({ length: 1003 }, (_, i) => (i < EDGES.length ? EDGES[i]! : (i - 500) * 1.37));
    const input = onHeap(src);
    const output = onHeap(src.length);
    simd.sqrt(input.offset, output.offset, src.length);
    // A NaN's sign and payload are the hardware's choice (x86 and ARM differ), as for the stock kernel's sqrtf.
    const clean = (a: Float32Array) => a.map((x) => (Number.isNaN(x) ? NaN : x));
    expect(sameBits(clean(output.read()), clean(src.map((x) => Math.fround(Math.sqrt(x)))))).toBe(true);
    [input, output].forEach((b) => b.free());
  });

  it('transpose: every shape 1..13 × 1..13 and a power-of-two one', () => {
    for (const [rows, cols] of [...Array.from({ length: 169 }, (_, i) => [1 + (i % 13), 1 + Math.floor(i / 13)]), [64, 512]] as Array<[number, number]>) {
      const src = Float32Array.from({ length: rows * cols }, (_, i) => i);
      const input = onHeap(src);
      const output = onHeap(src.length);
      simd.transpose(input.offset, output.offset, rows, cols);
      const got = output.read();
      const expected = new Float32Array(src.length);
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) expected[j * rows + i] = src[i * cols + j]!;
      expect(sameBits(got, expected), `${rows}×${cols}`).toBe(true);
      [input, output].forEach((b) => b.free());
    }
  });
});
