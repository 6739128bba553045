// Training kernels for @tensorflow/tfjs-backend-wasm 4.22: the stock backend lacks
// Conv2DBackpropFilter and runs transposed matmuls / conv & pool gradients as naive loops.
// Each replacement decomposes the op into the fast (XNNPACK) wasm kernels or a linear JS pass
// over the wasm heap. Intermediates are freed with backend.disposeData exactly once.
import { tf } from '../tfjs.js';
const { backend_util, util } = tf;
import type { backend_util as BackendUtil, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { registerAdamKernels } from './adam.js';
import { simdLoopsFor } from './simd.js';

type Args = { inputs: Record<string, TensorInfo>; backend: BackendWasm; attrs: NamedAttrMap };
type Pad = 'same' | 'valid' | number | BackendUtil.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;
type Shape4 = [number, number, number, number];

/** Marker on our configs so repeated registration (even from another module copy) is a no-op. */
const MARK = '__mpxWasmTraining';
type MarkedConfig = KernelConfig & { [MARK]?: KernelConfig };

/** im2col buffers are built per batch chunk of at most this many floats (bounds wasm heap growth). */
const IM2COL_MAX_FLOATS = 1 << 22;

function input(args: Args, name: string): TensorInfo {
  const t = args.inputs[name];
  if (t === undefined) throw new Error(`wasm-training: missing input '${name}'`);
  if (t.dtype !== 'float32') throw new Error(`wasm-training: only float32 is supported, got ${t.dtype}`);
  return t;
}

function kernel(name: string): KernelConfig {
  const k = tf.getKernel(name, 'wasm');
  if (k === undefined) throw new Error(`wasm-training: wasm kernel '${name}' is not registered`);
  return k;
}

function run(k: KernelConfig, backend: BackendWasm, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): TensorInfo {
  return k.kernelFunc({ inputs, backend, attrs }) as TensorInfo;
}

function heap(backend: BackendWasm, t: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(t) as Float32Array;
}

function checkConvAttrs(op: string, attrs: NamedAttrMap): void {
  const fmt = attrs['dataFormat'];
  if (fmt !== undefined && fmt !== 'NHWC' && fmt !== 'channelsLast') {
    throw new Error(`wasm-training ${op}: only NHWC is supported, got dataFormat=${JSON.stringify(fmt)}`);
  }
  const d = attrs['dilations'];
  if (d !== undefined && d !== null && !(Array.isArray(d) ? d.every((v) => v === 1) : d === 1)) {
    throw new Error(`wasm-training ${op}: dilations != 1 are not supported, got ${JSON.stringify(d)}`);
  }
}

function convInfoOf(op: string, attrs: NamedAttrMap, xShape: number[], filterShape: number[]): BackendUtil.Conv2DInfo {
  checkConvAttrs(op, attrs);
  return backend_util.computeConv2DInfo(
    xShape as Shape4, filterShape as Shape4, attrs['strides'] as number | [number, number], 1,
    attrs['pad'] as Pad, attrs['dimRoundingMode'] as Rounding, false, 'channelsLast');
}

function offsetOf(backend: BackendWasm, t: TensorInfo): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset;
}

/** WHY SIMD: the stock Transpose moves one element at a time, ~3 ns each when the output stride is a power of two. */
function transposeLast2(t: TensorInfo, backend: BackendWasm): TensorInfo {
  const r = t.shape.length;
  const [rows, cols] = [t.shape[r - 2]!, t.shape[r - 1]!];
  const simd = simdLoopsFor(backend);
  if (simd === null) {
    const perm = [...Array(r).keys()];
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    return run(kernel('Transpose'), backend, { x: t }, { perm });
  }
  const out = backend.makeOutput([...t.shape.slice(0, -2), cols, rows], 'float32');
  const bytes = rows * cols * 4;
  if (bytes === 0) return out;
  // Offsets (not views) after makeOutput: allocating may grow the heap, which detaches views but moves nothing.
  const [src, dst] = [offsetOf(backend, t), offsetOf(backend, out)];
  const batches = util.sizeFromShape(t.shape.slice(0, -2));
  for (let b = 0; b < batches; b++) simd.transpose(src + b * bytes, dst + b * bytes, rows, cols);
  return out;
}

/**
 * How often each tensor (by dataId) was the untransposed right operand of the stock kernel. XNNPACK packs that
 * operand into its own layout when it first sees it and keeps the packed copy until the tensor is disposed, so
 * only a first use pays for packing. Training passes fresh weights every step (the optimizer replaces them);
 * evaluation reuses them.
 */
const rightOperandUses = new WeakMap<object, number>();

/** Packing a fresh right operand costs roughly this many transposes per element (measured, `npm run bench`). */
const PACK = 16;

/**
 * op(A)·op(B) through the stock (XNNPACK, untransposed-only) kernel. Cost = elements moved by explicit
 * transposes plus XNNPACK's packing of a right operand it has not packed before; pick the cheaper of
 * C = op(A)·op(B) and C = (op(B)^T · op(A)^T)^T. A right operand used a second time is packed (then reused).
 */
function matmul(stock: KernelConfig, backend: BackendWasm, a: TensorInfo, b: TensorInfo, ta: boolean, tb: boolean): TensorInfo {
  const nn = { transposeA: false, transposeB: false };
  const [ra, rb] = [a.shape.length, b.shape.length];
  const M = a.shape[ta ? ra - 1 : ra - 2]!;
  const K = a.shape[ta ? ra - 2 : ra - 1]!;
  const N = b.shape[tb ? rb - 2 : rb - 1]!;
  const [batchA, batchB] = [util.sizeFromShape(a.shape.slice(0, -2)), util.sizeFromShape(b.shape.slice(0, -2))];
  const uses = tb ? 0 : (rightOperandUses.get(b.dataId) ?? 0);
  // Only the rank-2 (batch 1) kernel keeps packed operands; batched products are packed per call.
  const isPacked = uses > 0 && batchA === 1 && batchB === 1;
  const direct = (ta ? M * K : 0) + (tb ? K * N : 0) + (isPacked ? 0 : PACK * K * N);
  const swapped = (tb ? 0 : K * N) + (ta ? 0 : M * K) + PACK * M * K + M * N;
  const canSwap = batchA === batchB || batchA === 1 || batchB === 1;
  const temps: TensorInfo[] = [];
  const tr = (t: TensorInfo): TensorInfo => {
    const r = transposeLast2(t, backend);
    temps.push(r);
    return r;
  };
  try {
    if (direct <= swapped || !canSwap || uses > 0) {
      if (!tb) rightOperandUses.set(b.dataId, uses + 1);
      return run(stock, backend, { a: ta ? tr(a) : a, b: tb ? tr(b) : b }, nn);
    }
    if (!tb) rightOperandUses.set(b.dataId, 1);
    const ct = run(stock, backend, { a: tb ? b : tr(b), b: ta ? a : tr(a) }, nn);
    temps.push(ct);
    return transposeLast2(ct, backend);
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

/**
 * WHY: stock BatchMatMul only hits XNNPACK untransposed (explicit transposes first are ~10x faster), and packs a
 * fresh right operand (the weights, new every training step) at ~5 ns per element, more than the product itself
 * at small batches; the transposed form (W^T·x^T)^T packs only the activations.
 */
function makeBatchMatMul(stock: KernelConfig): KernelFunc {
  return (params) => {
    const args = params as unknown as Args;
    const { transposeA, transposeB } = args.attrs as { transposeA?: boolean; transposeB?: boolean };
    return matmul(stock, args.backend, input(args, 'a'), input(args, 'b'), !!transposeA, !!transposeB);
  };
}

/** WHY: the wasm backend has no Conv2DBackpropFilter; im2col (JS) + XNNPACK matmul: dW = cols^T · dy. */
function makeConv2DBackpropFilter(stockMatMul: KernelConfig): KernelFunc {
  return (params) => {
    const args = params as unknown as Args;
    const { backend } = args;
    const x = input(args, 'x');
    const dy = input(args, 'dy');
    const filterShape = args.attrs['filterShape'] as number[];
    const ci = convInfoOf('Conv2DBackpropFilter', args.attrs, x.shape, filterShape);
    const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, outChannels: CO } = ci;
    const { filterHeight: FH, filterWidth: FW, strideHeight: SH, strideWidth: SW } = ci;
    const PT = ci.padInfo.top;
    const PL = ci.padInfo.left;
    const K = FH * FW * C;
    const perImage = OH * OW;
    const chunk = Math.max(1, Math.min(N, Math.floor(IM2COL_MAX_FLOATS / Math.max(1, K * perImage))));
    let result: TensorInfo | undefined;
    for (let n0 = 0; n0 < N; n0 += chunk) {
      const nc = Math.min(chunk, N - n0);
      const P = nc * perImage;
      // colsT[k, p] with k = (i*FW + j)*C + c and p = (n*OH + oh)*OW + ow: rows written sequentially,
      // so the matmul below is untransposed (XNNPACK packs only the small dy).
      const colsT = backend.makeOutput([K, P], 'float32');
      const dyPart = nc === N ? dy : backend.makeOutput([P, CO], 'float32');
      const xs = heap(backend, x);
      const cols = heap(backend, colsT);
      if (dyPart !== dy) heap(backend, dyPart).set(heap(backend, dy).subarray(n0 * perImage * CO, (n0 + nc) * perImage * CO));
      for (let i = 0; i < FH; i++) {
        for (let j = 0; j < FW; j++) {
          // Output columns whose input column ow*SW - PL + j lies inside [0, W).
          const owMin = Math.min(OW, Math.max(0, Math.ceil((PL - j) / SW)));
          const owMax = Math.max(owMin, Math.min(OW, Math.floor((W - 1 + PL - j) / SW) + 1));
          for (let c = 0; c < C; c++) {
            let d = ((i * FW + j) * C + c) * P;
            for (let n = 0; n < nc; n++) {
              for (let oh = 0; oh < OH; oh++) {
                const h = oh * SH - PT + i;
                if (h < 0 || h >= H) {
                  cols.fill(0, d, d + OW);
                  d += OW;
                  continue;
                }
                let ow = 0;
                for (; ow < owMin; ow++, d++) cols[d] = 0;
                let src = (((n0 + n) * H + h) * W + owMin * SW - PL + j) * C + c;
                for (const step = SW * C; ow < owMax; ow++, d++, src += step) cols[d] = xs[src]!;
                for (; ow < OW; ow++, d++) cols[d] = 0;
              }
            }
          }
        }
      }
      const dyView: TensorInfo = { dataId: dyPart.dataId, shape: [P, CO], dtype: 'float32' };
      const part = run(stockMatMul, backend, { a: colsT, b: dyView }, { transposeA: false, transposeB: false });
      backend.disposeData(colsT.dataId);
      if (dyPart !== dy) backend.disposeData(dyPart.dataId);
      if (result === undefined) {
        result = part;
      } else {
        const acc = heap(backend, result);
        const add = heap(backend, part);
        for (let k = 0; k < acc.length; k++) acc[k] = acc[k]! + add[k]!;
        backend.disposeData(part.dataId);
      }
    }
    return { ...(result as TensorInfo), shape: filterShape.slice() };
  };
}

/** WHY: stock Conv2DBackpropInput is a naive loop; dx = conv2d(dilate+pad(dy), rot180(W) with in/out swapped) on XNNPACK. */
function makeConv2DBackpropInput(): KernelFunc {
  return (params) => {
    const args = params as unknown as Args;
    const { backend } = args;
    const dy = input(args, 'dy');
    const filter = input(args, 'filter');
    const ci = convInfoOf('Conv2DBackpropInput', args.attrs, args.attrs['inputShape'] as number[], filter.shape);
    const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, outChannels: CO } = ci;
    const { filterHeight: FH, filterWidth: FW, strideHeight: SH, strideWidth: SW } = ci;
    util.assert(util.arraysEqual(dy.shape, [N, OH, OW, CO]), () => `Conv2DBackpropInput: dy shape ${dy.shape.join(',')} != ${[N, OH, OW, CO].join(',')}`);
    // dx[h] = sum_i' D[h + i'] * Wrot[i'] where D places dy[oh] at padBefore + oh*S (valid correlation).
    const beforeH = FH - 1 - ci.padInfo.top;
    const beforeW = FW - 1 - ci.padInfo.left;
    const afterH = H + ci.padInfo.top - (OH - 1) * SH - 1;
    const afterW = W + ci.padInfo.left - (OW - 1) * SW - 1;

    const wRot = backend.makeOutput([FH, FW, CO, C], 'float32');
    {
      const src = heap(backend, filter);
      const dst = heap(backend, wRot);
      for (let i = 0; i < FH; i++) {
        for (let j = 0; j < FW; j++) {
          const s0 = ((FH - 1 - i) * FW + (FW - 1 - j)) * C * CO;
          const d0 = (i * FW + j) * CO * C;
          for (let c = 0; c < C; c++) for (let o = 0; o < CO; o++) dst[d0 + o * C + c] = src[s0 + c * CO + o]!;
        }
      }
    }
    const conv2d = kernel('Conv2D');
    const convAttrs = { strides: 1, dilations: 1, dataFormat: 'NHWC', dimRoundingMode: undefined } as unknown as NamedAttrMap;
    try {
      if (SH === 1 && SW === 1 && beforeH >= 0 && beforeW >= 0 && afterH >= 0 && afterW >= 0) {
        const pad = [[0, 0], [beforeH, afterH], [beforeW, afterW], [0, 0]];
        return run(conv2d, backend, { x: dy, filter: wRot }, { ...convAttrs, pad });
      }
      const HP = H + FH - 1;
      const WP = W + FW - 1;
      const padded = backend.makeOutput([N, HP, WP, CO], 'float32');
      const src = heap(backend, dy);
      const dst = heap(backend, padded);
      dst.fill(0);
      for (let n = 0; n < N; n++) {
        for (let oh = 0; oh < OH; oh++) {
          const hp = beforeH + oh * SH;
          if (hp < 0 || hp >= HP) continue;
          for (let ow = 0; ow < OW; ow++) {
            const wp = beforeW + ow * SW;
            if (wp < 0 || wp >= WP) continue;
            const s = ((n * OH + oh) * OW + ow) * CO;
            dst.set(src.subarray(s, s + CO), ((n * HP + hp) * WP + wp) * CO);
          }
        }
      }
      try {
        return run(conv2d, backend, { x: padded, filter: wRot }, { ...convAttrs, pad: 'valid' });
      } finally {
        backend.disposeData(padded.dataId);
      }
    } finally {
      backend.disposeData(wRot.dataId);
    }
  };
}

/** WHY: stock MaxPoolGrad rescans windows per input pixel; one O(output*window) pass scatters dy to each window's first max. */
function makeMaxPoolGrad(): KernelFunc {
  return (params) => {
    const args = params as unknown as Args;
    const { backend, attrs } = args;
    const dy = input(args, 'dy');
    const x = input(args, 'input');
    checkConvAttrs('MaxPoolGrad', attrs);
    const ci = backend_util.computePool2DInfo(
      x.shape as Shape4, attrs['filterSize'] as number | [number, number], attrs['strides'] as number | [number, number], 1,
      attrs['pad'] as Pad, attrs['dimRoundingMode'] as Rounding);
    const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = ci;
    const { effectiveFilterHeight: FH, effectiveFilterWidth: FW, strideHeight: SH, strideWidth: SW } = ci;
    const dx = backend.makeOutput(x.shape.slice(), 'float32');
    const xs = heap(backend, x);
    const dys = heap(backend, dy);
    const dxs = heap(backend, dx);
    dxs.fill(0);
    for (let n = 0; n < N; n++) {
      for (let oh = 0; oh < OH; oh++) {
        const h0 = oh * SH - ci.padInfo.top;
        const hMin = Math.max(0, h0);
        const hMax = Math.min(H, h0 + FH);
        for (let ow = 0; ow < OW; ow++) {
          const w0 = ow * SW - ci.padInfo.left;
          const wMin = Math.max(0, w0);
          const wMax = Math.min(W, w0 + FW);
          const dyBase = ((n * OH + oh) * OW + ow) * C;
          for (let c = 0; c < C; c++) {
            // First maximum in row-major window order (strict >), like the cpu backend.
            let best = -Infinity;
            let arg = -1;
            for (let h = hMin; h < hMax; h++) {
              for (let w = wMin, idx = ((n * H + h) * W + wMin) * C + c; w < wMax; w++, idx += C) {
                const v = xs[idx]!;
                if (v > best) {
                  best = v;
                  arg = idx;
                }
              }
            }
            if (arg >= 0) dxs[arg] = dxs[arg]! + dys[dyBase + c]!;
          }
        }
      }
    }
    return dx;
  };
}

/** WHY: the stock Sqrt is a scalar loop (~1.5 ns per element, 7x an Add); Adam takes a square root of every parameter each step. */
function makeSqrt(stock: KernelConfig): KernelFunc {
  return (params) => {
    const args = params as unknown as Args;
    const x = args.inputs['x'];
    const simd = simdLoopsFor(args.backend);
    if (x === undefined || x.dtype !== 'float32' || simd === null) return stock.kernelFunc(params);
    const out = args.backend.makeOutput(x.shape.slice(), 'float32');
    const size = util.sizeFromShape(x.shape);
    if (size > 0) simd.sqrt(offsetOf(args.backend, x), offsetOf(args.backend, out), size);
    return out;
  };
}

/**
 * Identity shares its input's buffer, as the cpu backend and TensorFlow do; stock wasm copies it. tfjs saves every
 * tensor a gradient needs through clone() → Identity, so the copies cost time and, worse, showed up in measured
 * memory as a second copy of each saved activation that no real runtime holds.
 */
const identityAlias: tf.KernelFunc = ({ inputs, backend }) => {
  const x = inputs.x as tf.TensorInfo;
  (backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

/**
 * The embedding gradient: tfjs's GatherV2 gradient sums rows of dy into a [numSegments, ...] table with
 * UnsortedSegmentSum, which stock wasm does not have (an embedding could not train). One linear pass over the wasm
 * heap: out[ids[i]] += x[i]; ids outside [0, numSegments) are dropped, as TensorFlow and tfjs's cpu kernel do.
 */
const unsortedSegmentSum: tf.KernelFunc = (params) => {
  const args = params as unknown as Args;
  const x = input(args, 'x');
  const ids = args.inputs['segmentIds'];
  if (ids === undefined || ids.dtype !== 'int32') throw new Error('wasm-training UnsortedSegmentSum: segmentIds must be an int32 tensor');
  const segments = args.attrs['numSegments'] as number;
  const rows = ids.shape.reduce((a, b) => a * b, 1);
  const inner = util.sizeFromShape(x.shape.slice(ids.shape.length));
  const out = args.backend.makeOutput([segments, ...x.shape.slice(ids.shape.length)], 'float32');
  // Views after the allocation: growing the heap detaches earlier ones.
  const dst = heap(args.backend, out);
  dst.fill(0);
  const src = heap(args.backend, x);
  const segment = args.backend.typedArrayFromHeap(ids) as Int32Array;
  for (let row = 0; row < rows; row++) {
    const id = segment[row]!;
    if (id < 0 || id >= segments) continue;
    const from = row * inner;
    const to = id * inner;
    for (let k = 0; k < inner; k++) dst[to + k] = dst[to + k]! + src[from + k]!;
  }
  return out;
};

/**
 * Registers the training kernels above for backendName 'wasm'. Idempotent. Call after
 * `import '@tensorflow/tfjs-backend-wasm'`; works before or after `tf.setBackend('wasm')`.
 */
export function registerWasmTrainingKernels(): void {
  const current = tf.getKernel('BatchMatMul', 'wasm') as MarkedConfig | undefined;
  if (current === undefined) {
    throw new Error("registerWasmTrainingKernels: import '@tensorflow/tfjs-backend-wasm' first");
  }
  registerAdamKernels();
  if (current[MARK] !== undefined) return;
  const stockMatMul: KernelConfig = { ...current };
  const stockSqrt: KernelConfig = { ...kernel('Sqrt') };
  const configs: MarkedConfig[] = [
    // setupFunc: the stock matmul's cwrap must still run when the backend initializes.
    { kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc: makeBatchMatMul(stockMatMul), setupFunc: stockMatMul.setupFunc },
    { kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: makeConv2DBackpropFilter(stockMatMul) },
    { kernelName: 'Conv2DBackpropInput', backendName: 'wasm', kernelFunc: makeConv2DBackpropInput() },
    { kernelName: 'MaxPoolGrad', backendName: 'wasm', kernelFunc: makeMaxPoolGrad() },
    { kernelName: 'Sqrt', backendName: 'wasm', kernelFunc: makeSqrt(stockSqrt), setupFunc: stockSqrt.setupFunc },
    { kernelName: 'Identity', backendName: 'wasm', kernelFunc: identityAlias },
    { kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum },
  ];
  for (const config of configs) {
    if (tf.getKernel(config.kernelName, 'wasm') !== undefined) tf.unregisterKernel(config.kernelName, 'wasm');
    config[MARK] = stockMatMul;
    tf.registerKernel(config);
  }
}

/** Whether the kernel registered for `kernelName` on wasm is one of mpx's (tests check that theirs ran, not stock's). */
export function isMpxWasmKernel(kernelName: string): boolean {
  return (tf.getKernel(kernelName, 'wasm') as MarkedConfig | undefined)?.[MARK] !== undefined;
}
