import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { isMpxWasmKernel, registerWasmTrainingKernels } from '../../../src/worker/kernels/wasm-training.js';
import { createRandom } from '../../../src/worker/random.js';

type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid' | number | [[0, 0], [number, number], [number, number], [0, 0]];
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

/** The worker's own seeded PRNG (mulberry32), so failures reproduce. */
const rng = createRandom;
const rand = rng(12345);
const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
function data(shape: number[], ties = false): Float32Array {
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i++) out[i] = ties ? int(-2, 2) : rand() * 2 - 1;
  return out;
}

/** max|a-b| / max(1, max|b|), b being the cpu reference. */
function relErr(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return Number.isNaN(diff) ? Infinity : diff / scale;
}

/** Runs f on a backend and returns every output's values. */
async function on(backend: 'cpu' | 'wasm', f: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const outs = tf.tidy(f);
  const list = Array.isArray(outs) ? outs : [outs];
  const vals = await Promise.all(list.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(list);
  return vals;
}

/**
 * Counts the calls of the kernel registered for `kernelName` on wasm while `fn` runs, by registering a wrapper around
 * it; the registration is restored afterwards. A comparison with cpu alone would also pass with the stock kernel.
 */
async function countCalls(kernelName: string, fn: () => Promise<unknown>): Promise<number> {
  const registered = tf.getKernel(kernelName, 'wasm');
  let calls = 0;
  tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({ ...registered, kernelFunc: (args) => (calls++, registered.kernelFunc(args)) });
  try {
    await fn();
  } finally {
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel(registered);
  }
  return calls;
}

/** Runs each case on cpu and on patched wasm; returns the worst relative error. Asserts mpx's `kernel` did the work. */
async function compare<C>(cases: C[], f: (c: C) => tf.Tensor | tf.Tensor[], kernel?: string): Promise<number> {
  if (kernel !== undefined) {
    expect(isMpxWasmKernel(kernel), `${kernel} on wasm is mpx's`).toBe(true);
    let worst = 0;
    const calls = await countCalls(kernel, async () => (worst = await compare(cases, f)));
    expect(calls, `calls of mpx's ${kernel}`).toBeGreaterThanOrEqual(cases.length);
    return worst;
  }
  let worst = 0;
  for (const c of cases) {
    const describe = (): string => JSON.stringify(c, (_k, v: unknown) => (v instanceof Float32Array ? undefined : v));
    const ref = await on('cpu', () => f(c));
    let got: Float32Array[];
    try {
      got = await on('wasm', () => f(c));
    } catch (err) {
      throw new Error(`wasm failed for case ${describe()}: ${String(err)}`, { cause: err });
    }
    for (let i = 0; i < ref.length; i++) {
      const e = relErr(got[i]!, ref[i]!);
      if (!(e <= 1e-5)) throw new Error(`mismatch ${e} for case ${describe()}`);
      worst = Math.max(worst, e);
    }
  }
  return worst;
}

const wasmBackend = (): BackendWasm => tf.findBackend('wasm') as BackendWasm;

beforeAll(async () => {
  // Register after the wasm backend is initialized (the setBackend-switch tests cover "before").
  await tf.setBackend('wasm');
  registerWasmTrainingKernels();
});

describe('registration', () => {
  it('is idempotent and survives backend switches', async () => {
    const k = tf.getKernel('BatchMatMul', 'wasm');
    registerWasmTrainingKernels();
    expect(tf.getKernel('BatchMatMul', 'wasm')).toBe(k);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    for (const b of ['cpu', 'wasm', 'cpu', 'wasm'] as const) {
      await tf.setBackend(b);
      expect(tf.getBackend()).toBe(b);
      const r = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[1, 0], [1, 1]]), true, true));
      expect(Array.from(await r.data())).toEqual([1, 4, 2, 6]);
      r.dispose();
    }
  });

  it('throws clearly for NCHW and dilations != 1', async () => {
    await tf.setBackend('wasm');
    const x = tf.zeros([1, 4, 4, 2]);
    const dy = tf.zeros([1, 4, 4, 3]);
    expect(() =>
      tf.engine().runKernel<tf.Tensor>('Conv2DBackpropFilter', { x, dy }, {
        strides: 1, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 2, 3],
      }),
    ).toThrow(/NHWC/);
    const filter = tf.zeros([3, 3, 2, 3]);
    expect(() =>
      tf.engine().runKernel<tf.Tensor>('Conv2DBackpropInput', { dy, filter }, {
        strides: 1, pad: 'same', dataFormat: 'NCHW', inputShape: [1, 4, 4, 2],
      }),
    ).toThrow(/NHWC/);
    expect(() =>
      tf.engine().runKernel<tf.Tensor>('Conv2DBackpropInput', { dy, filter }, {
        strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: [2, 2], inputShape: [1, 4, 4, 2],
      }),
    ).toThrow(/dilations/);
    tf.dispose([x, dy, filter]);
  });
});

describe('BatchMatMul', () => {
  it('matches cpu for all transpose combos, batches and broadcasting', async () => {
    type Case = { a: number[]; b: number[]; ta: boolean; tb: boolean; da: Float32Array; db: Float32Array };
    const cases: Case[] = [];
    for (let i = 0; i < 48; i++) {
      const [m, k, n] = [int(1, 40), int(1, 40), int(1, 40)];
      const ta = i % 2 === 1;
      const tb = Math.floor(i / 2) % 2 === 1;
      const batch = pick([[], [], [int(2, 3)], [int(2, 3), 2]] as number[][]);
      // Broadcasting: sometimes one side has no batch dims or batch 1.
      const bcast = pick(['none', 'aOnly', 'bOnly', 'aOne', 'bOne'] as const);
      const ba = bcast === 'bOnly' ? [] : bcast === 'aOne' && batch.length ? batch.map(() => 1) : batch;
      const bb = bcast === 'aOnly' ? [] : bcast === 'bOne' && batch.length ? batch.map(() => 1) : batch;
      const a = [...ba, ...(ta ? [k, m] : [m, k])];
      const b = [...bb, ...(tb ? [n, k] : [k, n])];
      cases.push({ a, b, ta, tb, da: data(a), db: data(b) });
    }
    // The MLP backward shapes.
    for (const [ta, tb] of [[true, false], [false, true]] as const) {
      const a = ta ? [128, 784] : [128, 512];
      const b = tb ? [784, 512] : [128, 512];
      cases.push({ a, b, ta, tb, da: data(a), db: data(b) });
    }
    await compare(cases, (c) => tf.matMul(tf.tensor(c.da, c.a), tf.tensor(c.db, c.b), c.ta, c.tb), 'BatchMatMul');
  });
});

type ConvCase = {
  x: Shape4; f: Shape4; dy: Shape4; strides: [number, number]; pad: Pad; rounding: Rounding;
  dx: Float32Array; df: Float32Array; ddy: Float32Array;
};

function convCases(count: number): ConvCase[] {
  const cases: ConvCase[] = [];
  while (cases.length < count) {
    const x: Shape4 = [int(1, 3), int(1, 10), int(1, 10), int(1, 4)];
    const f: Shape4 = [int(1, 5), int(1, 5), x[3], int(1, 4)];
    const strides: [number, number] = [int(1, 3), int(1, 3)];
    const kind = pick(['same', 'valid', 'number', 'explicit'] as const);
    const pad: Pad = kind === 'number' ? int(0, 2) : kind === 'explicit'
      ? [[0, 0], [int(0, 3), int(0, 3)], [int(0, 3), int(0, 3)], [0, 0]] : kind;
    const rounding: Rounding = kind === 'number' ? pick(['floor', 'round', 'ceil'] as const) : undefined;
    let info: ReturnType<typeof tf.backend_util.computeConv2DInfo>;
    try {
      info = tf.backend_util.computeConv2DInfo(x, f, strides, 1, pad, rounding);
    } catch {
      continue;
    }
    if (info.outHeight < 1 || info.outWidth < 1) continue;
    const dy = info.outShape;
    cases.push({ x, f, dy, strides, pad, rounding, dx: data(x), df: data(f), ddy: data(dy) });
  }
  return cases;
}

describe('Conv2DBackpropFilter', () => {
  it('matches cpu on random shapes, strides and paddings', async () => {
    const cases = convCases(60);
    // A case big enough to use several im2col chunks.
    const x: Shape4 = [3, 100, 100, 9];
    const f: Shape4 = [5, 5, 9, 1];
    const dy: Shape4 = [3, 100, 100, 1];
    cases.push({ x, f, dy, strides: [1, 1], pad: 'same', rounding: undefined, dx: data(x), df: data(f), ddy: data(dy) });
    await compare(cases, (c) =>
      tf.engine().runKernel<tf.Tensor>('Conv2DBackpropFilter', { x: tf.tensor(c.dx, c.x), dy: tf.tensor(c.ddy, c.dy) }, {
        strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: c.rounding, filterShape: c.f,
      } as unknown as tf.NamedAttrMap),
      'Conv2DBackpropFilter',
    );
  });
});

describe('Conv2DBackpropInput', () => {
  it('matches cpu on random shapes, strides and paddings', async () => {
    await compare(convCases(60), (c) =>
      tf.engine().runKernel<tf.Tensor>('Conv2DBackpropInput', { dy: tf.tensor(c.ddy, c.dy), filter: tf.tensor(c.df, c.f) }, {
        strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: c.rounding, inputShape: c.x,
      } as unknown as tf.NamedAttrMap),
      'Conv2DBackpropInput',
    );
  });
});

describe('MaxPoolGrad', () => {
  it('matches cpu on random shapes, including ties', async () => {
    type Case = {
      x: Shape4; size: [number, number]; strides: [number, number]; pad: Pad; rounding: Rounding;
      ties: boolean; dx: Float32Array; ddy: Float32Array;
    };
    const cases: Case[] = [];
    while (cases.length < 60) {
      const x: Shape4 = [int(1, 3), int(1, 10), int(1, 10), int(1, 5)];
      const size: [number, number] = [int(1, 5), int(1, 5)];
      const strides: [number, number] = [int(1, 3), int(1, 3)];
      const kind = pick(['same', 'valid', 'number'] as const);
      const pad: Pad = kind === 'number' ? int(0, 2) : kind;
      const rounding: Rounding = kind === 'number' ? pick(['floor', 'round', 'ceil'] as const) : undefined;
      if (kind === 'valid' && (x[1] < size[0] || x[2] < size[1])) continue;
      const info = tf.backend_util.computePool2DInfo(x, size, strides, 1, pad, rounding);
      if (info.outHeight < 1 || info.outWidth < 1) continue;
      const ties = cases.length % 3 === 0;
      cases.push({ x, size, strides, pad, rounding, ties, dx: data(x, ties), ddy: data(info.outShape) });
    }
    await compare(cases, (c) => {
      const x = tf.tensor4d(c.dx, c.x);
      const outShape = tf.backend_util.computePool2DInfo(c.x, c.size, c.strides, 1, c.pad, c.rounding).outShape;
      const dy = tf.tensor(c.ddy, outShape);
      // `output` is unused by both implementations; not calling the forward maxPool here because
      // stock wasm MaxPool corrupts the heap for numeric pads with non-square filters/strides.
      return tf.engine().runKernel<tf.Tensor>('MaxPoolGrad', { dy, input: x, output: dy }, {
        filterSize: c.size, strides: c.strides, pad: c.pad, dimRoundingMode: c.rounding,
      } as unknown as tf.NamedAttrMap);
    }, 'MaxPoolGrad');
  });
});

describe('UnsortedSegmentSum (the embedding gradient)', () => {
  it('matches cpu on random ids, repeats and ids out of range, and trains an embedding through tf.gather', async () => {
    const cases = Array.from({ length: 6 }, () => {
      const rows = int(1, 40);
      const inner = [int(1, 6), ...(rand() < 0.5 ? [int(1, 3)] : [])];
      const segments = int(1, 12);
      return { rows, inner, segments, x: data([rows, ...inner]), ids: Int32Array.from({ length: rows }, () => int(-1, segments)) };
    });
    expect(
      await compare(cases, (c) => tf.unsortedSegmentSum(tf.tensor(c.x, [c.rows, ...c.inner]), tf.tensor1d(c.ids, 'int32'), c.segments), 'UnsortedSegmentSum'),
    ).toBeLessThanOrEqual(1e-5);
    const table = data([9, 4]);
    const ids = Int32Array.from({ length: 15 }, () => int(0, 8));
    const grad = (c: null) => {
      void c;
      const t = tf.tensor2d(table, [9, 4]);
      return tf.grad((w: tf.Tensor) => tf.sum(tf.mul(tf.gather(w, tf.tensor2d(ids, [3, 5], 'int32')), 2)))(t);
    };
    expect(await compare([null], grad, 'UnsortedSegmentSum')).toBeLessThanOrEqual(1e-6);
  });
});

describe('end-to-end gradients', () => {
  const dx = data([3, 12, 12, 2]);
  const dw1 = data([3, 3, 2, 4]);
  const db1 = data([4]);
  const dw2 = data([6 * 6 * 4, 5]);
  const loss = (x: tf.Tensor, w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor): tf.Scalar => {
    const h = tf.relu(tf.add(tf.conv2d(x as tf.Tensor4D, w1 as tf.Tensor4D, 1, 'same'), b1));
    const p = tf.maxPool(h as tf.Tensor4D, 2, 2, 'valid');
    const y = tf.matMul(tf.reshape(p, [3, -1]), w2);
    return tf.mean(tf.square(y));
  };
  const step = (): tf.Tensor[] =>
    tf.grads(loss)([tf.tensor(dx, [3, 12, 12, 2]), tf.tensor(dw1, [3, 3, 2, 4]), tf.tensor(db1, [4]), tf.tensor(dw2, [144, 5])]);

  it('conv->relu->maxpool->flatten->dense grads match cpu to 1e-4', async () => {
    const ref = await on('cpu', step);
    const got = await on('wasm', step);
    expect(got.length).toBe(4);
    for (let i = 0; i < ref.length; i++) expect(relErr(got[i]!, ref[i]!)).toBeLessThan(1e-4);
  });

  it('does not leak across repeated tidy gradient steps', async () => {
    await tf.setBackend('wasm');
    tf.tidy(() => { step(); });
    const before = { ...tf.memory(), ids: wasmBackend().numDataIds() };
    for (let i = 0; i < 5; i++) tf.tidy(() => { step(); });
    const after = { ...tf.memory(), ids: wasmBackend().numDataIds() };
    expect(after.numBytes).toBe(before.numBytes);
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numDataBuffers).toBe(before.numDataBuffers);
    expect(after.ids).toBe(before.ids);
  });

  it('does not leak in the chunked filter-gradient path', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor(data([12, 64, 64, 16]), [12, 64, 64, 16]);
    const dy = tf.tensor(data([12, 64, 64, 4]), [12, 64, 64, 4]);
    const before = wasmBackend().numDataIds();
    for (let i = 0; i < 2; i++) {
      tf.tidy(() => {
        tf.engine().runKernel<tf.Tensor>('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 16, 4] });
      });
    }
    expect(wasmBackend().numDataIds()).toBe(before);
    tf.dispose([x, dy]);
  });
});
