/**
 * Loops that run inside the wasm backend's own linear memory, as a tiny WebAssembly SIMD module assembled here (no
 * toolchain, no dependency). The module imports the backend's exported `memory`, so it reads and writes tensors in
 * place by byte offset: no copies and no extra buffers.
 *
 * WHY: a JS loop over a typed array costs 1.5–5 ns per element on the 2-core machines mpx targets (the float16
 * rule, with its branches, is the slowest); on 4 lanes at once the same rule costs ~0.25 ns per element. The
 * emulated mixed policies round every 16-bit layer's inputs, weights, outputs and gradients, so that loop was most
 * of their overhead. The stock Transpose and Sqrt kernels are scalar loops too (up to 3 and 1.5 ns per element).
 * Measured by `npm run bench`.
 *
 * One file over 400 lines on purpose: it is one assembled module (encoder, the loops' opcodes, instantiation), and
 * its byte layout reads only when it is together.
 *
 * The rounding loops are the exact rules of `src/worker/precision/round.ts` (bit for bit over all 2^32 float32
 * inputs), without per-lane branches: candidate results are computed and `v128.bitselect` keeps the right one per
 * lane. Elements past the last multiple of 4 are done in JS.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { ABS, BF16_KEEP, EXP_ALL, F16_KEEP, F16_MIN_NORMAL, F16_OVERFLOW, QUIET, roundToBfloat16, roundToFloat16 } from '../precision/round.js';

/** Offsets and counts are in bytes / elements of the backend's memory. */
export interface SimdLoops {
  /** dst[i] = round-to-nearest-even of src[i] onto the float16 grid (as float32); dst may equal src. */
  roundFloat16: (srcByte: number, dstByte: number, count: number) => void;
  /** Same onto the bfloat16 grid. */
  roundBfloat16: (srcByte: number, dstByte: number, count: number) => void;
  /** dst[i] = sqrt(src[i]) in float32 (IEEE, correctly rounded: the same bits as the stock kernel's sqrtf). */
  sqrt: (srcByte: number, dstByte: number, count: number) => void;
  /**
   * One Adam update in a single pass, float32 operations in the order of mpx's optimizer (so the same bits):
   * m' = m·beta1 + g·c1; v' = v·beta2 + (g·g)·c2; w' = w − (m' / (sqrt(v') + epsilon))·stepSize.
   */
  adam: (buffers: AdamBuffers, count: number, coefficients: AdamCoefficients) => void;
  /** dst (cols × rows) = transpose of src (rows × cols), float32, row-major; src and dst must not overlap. */
  transpose: (srcByte: number, dstByte: number, rows: number, cols: number) => void;
}

/** Byte offsets of the Adam update's inputs and (distinct) outputs. */
export interface AdamBuffers {
  m: number;
  v: number;
  w: number;
  g: number;
  mOut: number;
  vOut: number;
  wOut: number;
}

/** The update's scalars; each is used as a float32, as tfjs uses a JS number in an op. */
export interface AdamCoefficients {
  beta1: number;
  c1: number;
  beta2: number;
  c2: number;
  epsilon: number;
  stepSize: number;
}

// --- a minimal assembler: just what the loops below need ------------------------------------------------------

const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;

function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

function sleb(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

function bytesOf(text: string): number[] {
  return [...new TextEncoder().encode(text)];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/** Instructions (https://webassembly.github.io/spec/core/binary/instructions.html). */
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  if: [0x04, 0x40],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  get: (local: number) => [0x20, ...uleb(local)],
  set: (local: number) => [0x21, ...uleb(local)],
  tee: (local: number) => [0x22, ...uleb(local)],
  i32Const: (value: number) => [0x41, ...sleb(value)],
  i32Eqz: [0x45],
  i32LtU: [0x49],
  i32GeU: [0x4f],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Mul: [0x6c],
  i32Shl: [0x74],
  /** i8x16.shuffle: result byte k = byte lanes[k] of (first ++ second). */
  shuffle: (lanes: readonly number[]) => [0xfd, ...uleb(0x0d), ...lanes],
  // SIMD: prefix 0xfd, then the LEB128 opcode.
  /** Align hint 2^0 (tensors need not be 16-byte aligned); `offset` is added to the address on the stack. */
  v128Load: (offset = 0) => [0xfd, ...uleb(0x00), 0, ...uleb(offset)],
  v128Store: (offset = 0) => [0xfd, ...uleb(0x0b), 0, ...uleb(offset)],
  /** v128.const with the same 32-bit pattern in all four lanes. */
  splat32: (bits: number) => {
    const lane = [bits & 0xff, (bits >>> 8) & 0xff, (bits >>> 16) & 0xff, (bits >>> 24) & 0xff];
    return [0xfd, ...uleb(0x0c), ...lane, ...lane, ...lane, ...lane];
  },
  and: [0xfd, ...uleb(0x4e)],
  xor: [0xfd, ...uleb(0x51)],
  i32x4MaxS: [0xfd, ...uleb(0xb8)],
  or: [0xfd, ...uleb(0x50)],
  /** Pops v1, v2, mask: (v1 & mask) | (v2 & ~mask). */
  bitselect: [0xfd, ...uleb(0x52)],
  anyTrue: [0xfd, ...uleb(0x53)],
  i32x4GtS: [0xfd, ...uleb(0x3b)],
  i32x4ShrU: [0xfd, ...uleb(0xad)],
  i32x4Add: [0xfd, ...uleb(0xae)],
  f32x4Abs: [0xfd, ...uleb(0xe0)],
  f32x4Add: [0xfd, ...uleb(0xe4)],
  f32x4Sub: [0xfd, ...uleb(0xe5)],
  f32x4Sqrt: [0xfd, ...uleb(0xe3)],
  f32x4Mul: [0xfd, ...uleb(0xe6)],
  f32x4Div: [0xfd, ...uleb(0xe7)],
  f32x4Splat: [0xfd, ...uleb(0x13)],
};

/** Vectors (16 bytes) per loop iteration: two independent chains keep the SIMD units busy. */
const UNROLL = 2;

/**
 * A function (src, dst, n): applies `perVector` to n vectors, src and dst advancing by 16 bytes, UNROLL at a
 * time then one at a time. Params are locals 0..2; v128 locals follow from 3: first the constants (set once
 * before the loop: V8 materialises a v128.const with several instructions), then `scratch` more per unrolled copy.
 */
function loopFunction(constants: readonly number[], scratch: number, perVector: (local: Locals, copy: number) => number[]): number[] {
  const [src, dst, n] = [0, 1, 2];
  const constLocal = new Map<number, number>();
  constants.forEach((bits, i) => constLocal.set(bits, 3 + i));
  const localsOf = (copy: number): Locals => ({
    constant: (bits) => {
      const index = constLocal.get(bits);
      if (index === undefined) throw new Error(`simd: constant 0x${bits.toString(16)} was not declared`);
      return op.get(index);
    },
    scratch: (i) => 3 + constants.length + copy * scratch + i,
  });
  const advance = (vectors: number) => [
    ...op.get(src), ...op.i32Const(16 * vectors), ...op.i32Add, ...op.set(src),
    ...op.get(dst), ...op.i32Const(16 * vectors), ...op.i32Add, ...op.set(dst),
    ...op.get(n), ...op.i32Const(vectors), ...op.i32Sub, ...op.set(n),
  ];
  const code = [
    ...constants.flatMap((bits, i) => [...op.splat32(bits), ...op.set(3 + i)]),
    // while (n >= UNROLL) { UNROLL vectors }
    ...op.block,
    ...op.loop,
    ...op.get(n), ...op.i32Const(UNROLL), ...op.i32LtU, ...op.brIf(1),
    ...Array.from({ length: UNROLL }, (_, copy) => perVector(localsOf(copy), copy)).flat(),
    ...advance(UNROLL),
    ...op.br(0),
    ...op.end,
    ...op.end,
    // while (n > 0) { one vector }
    ...op.block,
    ...op.loop,
    ...op.get(n), ...op.i32Eqz, ...op.brIf(1),
    ...perVector(localsOf(0), 0),
    ...advance(1),
    ...op.br(0),
    ...op.end,
    ...op.end,
    ...op.end,
  ];
  const body = [...vec([[...uleb(constants.length + UNROLL * scratch), V128]]), ...code];
  return [...uleb(body.length), ...body];
}

interface Locals {
  /** local.get of the v128 holding `bits` in every lane. */
  constant: (bits: number) => number[];
  /** Index of scratch v128 local i (of this unrolled copy). */
  scratch: (i: number) => number;
}

/** 13 in the exponent field: 2^13 times a power of two. */
const EXP_PLUS_13 = 13 << 23;

/**
 * round.ts's float16 rule on 4 lanes. Below 65520 one float32 addition rounds: with M = 2^(max(e, -14) + 13) (e the
 * exponent of |x|), the float32 ulp of |x| + M is the float16 spacing at x (2^(e-10), or 2^-24 for float16
 * subnormals), so (|x| + M) - M is |x| rounded to nearest even on the float16 grid, and exact. Only when a lane holds
 * |x| >= 65520 (rare: a branch the CPU predicts) is that result replaced: +-Infinity, or NaN kept NaN (quiet,
 * payload cut to 10 bits, sign kept) — as round.ts.
 */
function float16Function(): number[] {
  const constants = [ABS, EXP_ALL, F16_MIN_NORMAL, EXP_PLUS_13, F16_OVERFLOW - 1, QUIET, F16_KEEP];
  return loopFunction(constants, 5, ({ constant: c, scratch }, copy) => {
    const [v, a, s, m, r] = [scratch(0), scratch(1), scratch(2), scratch(3), scratch(4)];
    const at = 16 * copy;
    return [
      ...op.get(0), ...op.v128Load(at), ...op.tee(v),
      ...c(ABS), ...op.and, ...op.tee(a),
      ...op.get(v), ...op.xor, ...op.set(s), // the sign bit
      // sign | ((|x| + M) - M) with M = 2^(max(e, -14) + 13), stored first
      ...op.get(1),
      ...op.get(a), ...c(EXP_ALL), ...op.and, ...c(F16_MIN_NORMAL), ...op.i32x4MaxS, ...c(EXP_PLUS_13), ...op.i32x4Add,
      ...op.tee(m), ...op.get(a), ...op.f32x4Add, ...op.get(m), ...op.f32x4Sub, ...op.get(s), ...op.or,
      ...op.tee(r), ...op.v128Store(at),
      // Rarely (|x| >= 65520 in some lane): NaN ? (x | QUIET) & F16_KEEP : sign | Infinity, stored over it
      ...op.get(a), ...c(F16_OVERFLOW - 1), ...op.i32x4GtS, ...op.tee(m), ...op.anyTrue,
      ...op.if,
      ...op.get(1),
      ...op.get(v), ...c(QUIET), ...op.or, ...c(F16_KEEP), ...op.and,
      ...op.get(s), ...c(EXP_ALL), ...op.or,
      ...op.get(a), ...c(EXP_ALL), ...op.i32x4GtS,
      ...op.bitselect,
      ...op.get(r), ...op.get(m), ...op.bitselect,
      ...op.v128Store(at),
      ...op.end,
    ];
  });
}

/** round.ts's bfloat16 rule on 4 lanes: round to nearest even on the low 16 bits; NaN quiet, payload cut. */
function bfloat16Function(): number[] {
  const constants = [QUIET, BF16_KEEP, 0x7fff, 1, ABS, EXP_ALL];
  return loopFunction(constants, 1, ({ constant: c, scratch }, copy) => {
    const v = scratch(0);
    return [
      ...op.get(1),
      // NaN: (b | QUIET) & BF16_KEEP
      ...op.get(0), ...op.v128Load(16 * copy), ...op.tee(v), ...c(QUIET), ...op.or, ...c(BF16_KEEP), ...op.and,
      // else: (b + 0x7fff + ((b >>> 16) & 1)) & BF16_KEEP
      ...op.get(v), ...c(0x7fff), ...op.i32x4Add,
      ...op.get(v), ...op.i32Const(16), ...op.i32x4ShrU, ...c(1), ...op.and, ...op.i32x4Add,
      ...c(BF16_KEEP), ...op.and,
      ...op.get(v), ...c(ABS), ...op.and, ...c(EXP_ALL), ...op.i32x4GtS,
      ...op.bitselect,
      ...op.v128Store(16 * copy),
    ];
  });
}

/** Square root on 4 lanes (f32x4.sqrt is correctly rounded, as IEEE 754 requires). */
function sqrtFunction(): number[] {
  return loopFunction([], 0, (_locals, copy) => [
    ...op.get(1),
    ...op.get(0), ...op.v128Load(16 * copy), ...op.f32x4Sqrt,
    ...op.v128Store(16 * copy),
  ]);
}

/**
 * adam(m, v, w, g, mOut, vOut, wOut, vectors, beta1, c1, beta2, c2, epsilon, stepSize): see SimdLoops.adam. Seven
 * pointers advance by 16 bytes per vector; the six scalars are splatted once before the loop.
 */
function adamFunction(): number[] {
  const pointers = [0, 1, 2, 3, 4, 5, 6];
  const [m, v, w, g, mOut, vOut, wOut] = pointers;
  const n = 7;
  const scalars = [8, 9, 10, 11, 12, 13];
  const [B1, C1, B2, C2, EPS, STEP] = [14, 15, 16, 17, 18, 19];
  const [gv, mNew, vNew] = [20, 21, 22];
  const code = [
    ...scalars.flatMap((param, i) => [...op.get(param), ...op.f32x4Splat, ...op.set(B1 + i)]),
    ...op.block, ...op.loop,
    ...op.get(n), ...op.i32Eqz, ...op.brIf(1),
    ...op.get(g!), ...op.v128Load(), ...op.set(gv),
    ...op.get(mOut!),
    ...op.get(m!), ...op.v128Load(), ...op.get(B1), ...op.f32x4Mul, ...op.get(gv), ...op.get(C1), ...op.f32x4Mul, ...op.f32x4Add,
    ...op.tee(mNew), ...op.v128Store(),
    ...op.get(vOut!),
    ...op.get(v!), ...op.v128Load(), ...op.get(B2), ...op.f32x4Mul,
    ...op.get(gv), ...op.get(gv), ...op.f32x4Mul, ...op.get(C2), ...op.f32x4Mul, ...op.f32x4Add,
    ...op.tee(vNew), ...op.v128Store(),
    ...op.get(wOut!),
    ...op.get(w!), ...op.v128Load(),
    ...op.get(mNew), ...op.get(vNew), ...op.f32x4Sqrt, ...op.get(EPS), ...op.f32x4Add, ...op.f32x4Div, ...op.get(STEP), ...op.f32x4Mul,
    ...op.f32x4Sub, ...op.v128Store(),
    ...pointers.flatMap((p) => [...op.get(p), ...op.i32Const(16), ...op.i32Add, ...op.set(p)]),
    ...op.get(n), ...op.i32Const(1), ...op.i32Sub, ...op.set(n),
    ...op.br(0),
    ...op.end, ...op.end,
    ...op.end,
  ];
  const body = [...vec([[...uleb(9), V128]]), ...code];
  return [...uleb(body.length), ...body];
}

/** 32-bit lanes k of the first and second operand, as the 4 byte lanes of i8x16.shuffle. */
const lanes32 = (...picks: number[]): number[] => picks.flatMap((k) => [4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3]);
const INTERLEAVE_LOW = lanes32(0, 4, 1, 5);
const INTERLEAVE_HIGH = lanes32(2, 6, 3, 7);
const LOW_HALVES = lanes32(0, 1, 4, 5);
const HIGH_HALVES = lanes32(2, 3, 6, 7);

/**
 * transpose(src, dst, rows, cols, i0, i1, j0, j1): for the block rows [i0, i1) × cols [j0, j1) of the float32
 * rows × cols matrix at src (all four bounds multiples of 4), writes dst[j][i] = src[i][j] into the cols × rows
 * matrix at dst, 4×4 elements at a time (four loads, eight shuffles, four stores). The caller walks small tiles so
 * the output rows being written stay in cache even when their stride is a power of two (where the stock kernel,
 * element by element, drops to ~3 ns per element).
 */
function transposeFunction(): number[] {
  const [src, dst, rows, cols, i0, i1, j0, j1] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [i, j, p, q, srcRow, dstRow] = [8, 9, 10, 11, 12, 13];
  const [r0, r1, r2, r3, t0, t1, t2, t3] = [14, 15, 16, 17, 18, 19, 20, 21];
  const loadRow = (into: number, isFirst: boolean) => [
    ...(isFirst ? [] : [...op.get(p), ...op.get(srcRow), ...op.i32Add, ...op.set(p)]),
    ...op.get(p), ...op.v128Load(), ...op.set(into),
  ];
  const storeRow = (first: number, second: number, lanes: readonly number[], isFirst: boolean) => [
    ...(isFirst ? [] : [...op.get(q), ...op.get(dstRow), ...op.i32Add, ...op.set(q)]),
    ...op.get(q), ...op.get(first), ...op.get(second), ...op.shuffle(lanes), ...op.v128Store(),
  ];
  const code = [
    ...op.get(cols), ...op.i32Const(2), ...op.i32Shl, ...op.set(srcRow),
    ...op.get(rows), ...op.i32Const(2), ...op.i32Shl, ...op.set(dstRow),
    ...op.get(i0), ...op.set(i),
    ...op.block, ...op.loop,
    ...op.get(i), ...op.get(i1), ...op.i32GeU, ...op.brIf(1),
    ...op.get(j0), ...op.set(j),
    ...op.block, ...op.loop,
    ...op.get(j), ...op.get(j1), ...op.i32GeU, ...op.brIf(1),
    // p = src + (i * cols + j) * 4
    ...op.get(src), ...op.get(i), ...op.get(cols), ...op.i32Mul, ...op.get(j), ...op.i32Add, ...op.i32Const(2), ...op.i32Shl,
    ...op.i32Add, ...op.set(p),
    ...loadRow(r0, true), ...loadRow(r1, false), ...loadRow(r2, false), ...loadRow(r3, false),
    ...op.get(r0), ...op.get(r1), ...op.shuffle(INTERLEAVE_LOW), ...op.set(t0),
    ...op.get(r0), ...op.get(r1), ...op.shuffle(INTERLEAVE_HIGH), ...op.set(t1),
    ...op.get(r2), ...op.get(r3), ...op.shuffle(INTERLEAVE_LOW), ...op.set(t2),
    ...op.get(r2), ...op.get(r3), ...op.shuffle(INTERLEAVE_HIGH), ...op.set(t3),
    // q = dst + (j * rows + i) * 4
    ...op.get(dst), ...op.get(j), ...op.get(rows), ...op.i32Mul, ...op.get(i), ...op.i32Add, ...op.i32Const(2), ...op.i32Shl,
    ...op.i32Add, ...op.set(q),
    ...storeRow(t0, t2, LOW_HALVES, true), ...storeRow(t0, t2, HIGH_HALVES, false),
    ...storeRow(t1, t3, LOW_HALVES, false), ...storeRow(t1, t3, HIGH_HALVES, false),
    ...op.get(j), ...op.i32Const(4), ...op.i32Add, ...op.set(j),
    ...op.br(0),
    ...op.end, ...op.end,
    ...op.get(i), ...op.i32Const(4), ...op.i32Add, ...op.set(i),
    ...op.br(0),
    ...op.end, ...op.end,
    ...op.end,
  ];
  const body = [...vec([[...uleb(6), I32], [...uleb(8), V128]]), ...code];
  return [...uleb(body.length), ...body];
}

/** The module: imports env.memory; exports f16, bf16 and sqrt (src, dst, vectors), transpose(...) and adam(...). */
export function assembleSimdModule(): Uint8Array<ArrayBuffer> {
  const loopType = [0x60, ...vec([[I32], [I32], [I32]]), ...vec([])];
  const transposeType = [0x60, ...vec(Array.from({ length: 8 }, () => [I32])), ...vec([])];
  const adamType = [0x60, ...vec([...Array.from({ length: 8 }, () => [I32]), ...Array.from({ length: 6 }, () => [F32])]), ...vec([])];
  const importEntry = [...uleb(3), ...bytesOf('env'), ...uleb(6), ...bytesOf('memory'), 0x02, 0x00, ...uleb(0)];
  const exportEntry = (name: string, index: number) => [...uleb(name.length), ...bytesOf(name), 0x00, ...uleb(index)];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([loopType, transposeType, adamType])),
    ...section(2, vec([importEntry])),
    ...section(3, vec([uleb(0), uleb(0), uleb(1), uleb(0), uleb(2)])),
    ...section(
      7,
      vec([exportEntry('f16', 0), exportEntry('bf16', 1), exportEntry('transpose', 2), exportEntry('sqrt', 3), exportEntry('adam', 4)]),
    ),
    ...section(10, vec([float16Function(), bfloat16Function(), transposeFunction(), sqrtFunction(), adamFunction()])),
  ]);
}

// --- binding to a backend -------------------------------------------------------------------------------------

type Loop = (src: number, dst: number, vectors: number) => void;
type TransposeBlock = (src: number, dst: number, rows: number, cols: number, i0: number, i1: number, j0: number, j1: number) => void;
type TailRounder = (src: Float32Array, dst: Float32Array) => void;

/** Transpose tile edge in elements (8 to 64 measure within 10% of each other; 32 was best). */
const TRANSPOSE_TILE = 32;

let compiled: WebAssembly.Module | null | undefined;
const bound = new WeakMap<object, SimdLoops | null>();

function compile(): WebAssembly.Module | null {
  if (compiled === undefined) {
    const bytes = assembleSimdModule();
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return compiled;
}

/** The backend's linear memory (Emscripten exports it as `asm.memory`), checked against its heap views. */
function memoryOf(backend: BackendWasm): WebAssembly.Memory | null {
  const module = backend.wasm as unknown as { asm?: { memory?: unknown }; wasmExports?: { memory?: unknown }; HEAPU8?: Uint8Array };
  const memory = module.asm?.memory ?? module.wasmExports?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return null;
  return module.HEAPU8 === undefined || module.HEAPU8.buffer === memory.buffer ? memory : null;
}

/**
 * The SIMD loops bound to `backend`'s memory, or null where WebAssembly SIMD or the memory export is missing
 * (callers then use their JS loops). Elements past the last multiple of 4 are done in JS (round.ts's loops).
 */
export function simdLoopsFor(backend: BackendWasm): SimdLoops | null {
  const cached = bound.get(backend);
  if (cached !== undefined) return cached;
  let loops: SimdLoops | null = null;
  try {
    const module = compile();
    const memory = memoryOf(backend);
    if (module !== null && memory !== null) {
      const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as {
        f16: Loop;
        bf16: Loop;
        sqrt: Loop;
        transpose: TransposeBlock;
        adam: (...args: number[]) => void;
      };
      const floats = (byte: number, count: number) => new Float32Array(memory.buffer, byte, count);
      const round = (loop: Loop, tail: TailRounder) => (srcByte: number, dstByte: number, count: number) => {
        const vectors = count >>> 2;
        if (vectors > 0) loop(srcByte, dstByte, vectors);
        const rest = count - vectors * 4;
        if (rest > 0) tail(floats(srcByte + vectors * 16, rest), floats(dstByte + vectors * 16, rest));
      };
      const transpose = (srcByte: number, dstByte: number, rows: number, cols: number): void => {
        const rows4 = rows & ~3;
        const cols4 = cols & ~3;
        for (let i0 = 0; i0 < rows4; i0 += TRANSPOSE_TILE) {
          const i1 = Math.min(i0 + TRANSPOSE_TILE, rows4);
          for (let j0 = 0; j0 < cols4; j0 += TRANSPOSE_TILE) {
            exports.transpose(srcByte, dstByte, rows, cols, i0, i1, j0, Math.min(j0 + TRANSPOSE_TILE, cols4));
          }
        }
        if (rows4 === rows && cols4 === cols) return;
        // The fringe: the last (rows % 4) rows, and the last (cols % 4) columns of the other rows.
        const s = floats(srcByte, rows * cols);
        const d = floats(dstByte, rows * cols);
        for (let i = rows4; i < rows; i++) for (let j = 0; j < cols; j++) d[j * rows + i] = s[i * cols + j]!;
        for (let i = 0; i < rows4; i++) for (let j = cols4; j < cols; j++) d[j * rows + i] = s[i * cols + j]!;
      };
      const sqrtTail: TailRounder = (src, dst) => {
        for (let i = 0; i < src.length; i++) dst[i] = Math.sqrt(src[i]!); // double then float32: exact for sqrt
      };
      const adam = (b: AdamBuffers, count: number, c: AdamCoefficients): void => {
        const vectors = count >>> 2;
        if (vectors > 0) exports.adam(b.m, b.v, b.w, b.g, b.mOut, b.vOut, b.wOut, vectors, c.beta1, c.c1, c.beta2, c.c2, c.epsilon, c.stepSize);
        const rest = count - vectors * 4;
        if (rest === 0) return;
        const at = (byte: number) => floats(byte + vectors * 16, rest);
        const [m, v, w, g, mOut, vOut, wOut] = [at(b.m), at(b.v), at(b.w), at(b.g), at(b.mOut), at(b.vOut), at(b.wOut)];
        const f = Math.fround;
        const [beta1, c1, beta2, c2, epsilon, stepSize] = [f(c.beta1), f(c.c1), f(c.beta2), f(c.c2), f(c.epsilon), f(c.stepSize)];
        for (let i = 0; i < rest; i++) {
          const gi = g[i]!;
          const mi = f(f(m[i]! * beta1) + f(gi * c1));
          const vi = f(f(v[i]! * beta2) + f(f(gi * gi) * c2));
          mOut[i] = mi;
          vOut[i] = vi;
          wOut[i] = f(w[i]! - f(f(mi / f(f(Math.sqrt(vi)) + epsilon)) * stepSize));
        }
      };
      loops = {
        adam,
        roundFloat16: round(exports.f16, roundToFloat16),
        roundBfloat16: round(exports.bf16, roundToBfloat16),
        sqrt: round(exports.sqrt, sqrtTail),
        transpose,
      };
    }
  } catch {
    loops = null;
  }
  bound.set(backend, loops);
  return loops;
}
