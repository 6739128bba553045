/**
 * The liveness replays pinned on hand-checked graphs. Two small graphs run for real on wasm with the ledger attached
 * (an MLP and a conv + pool block), where the expected TensorFlow peak is worked out by hand below each; and synthetic
 * logs that isolate one rule each (including PyTorch's).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../../../src/worker/backend.js';
import { TensorLedger } from '../../../src/worker/memory/ledger.js';
import { replayLiveness } from '../../../src/worker/memory/liveness.js';
import { activate } from '../../../src/worker/model.js';
import type { BufferRecord, LogEvent, TapeNodeInfo } from '../../../src/worker/memory/replay.js';
import { tf } from '../../../src/worker/tfjs.js';

const F32 = 4;

describe('TensorFlow liveness on real tfjs graphs (wasm), hand-checked', () => {
  let ledger: TensorLedger;
  beforeAll(async () => {
    await startBackend('wasm');
    ledger = new TensorLedger();
    ledger.attach();
  });

  /**
   * One SGD update of `loss` w.r.t. `variables` in a window whose resting state is the variables. The update reads
   * each gradient (so the gradients live until it) and writes in place (so its own buffers are not counted).
   */
  function window(variables: tf.Variable[], loss: () => tf.Scalar, makeInput: () => tf.Tensor) {
    ledger.openWindow(new Map(variables.map((v) => [v.dataId, 'parameters'])));
    tf.tidy(() => {
      const input = ledger.withContext({ role: 'other', halfPrecision: false, layer: null }, makeInput);
      const { grads } = ledger.withContext({ role: 'activations', halfPrecision: false, layer: 0 }, () =>
        tf.variableGrads(() => loss.call(input), variables),
      );
      ledger.endBackward();
      ledger.withContext({ role: 'other', halfPrecision: false, layer: null, isUpdate: true }, () => {
        for (const v of variables) v.assign(v.sub(grads[v.name]!.mul(0.01)));
      });
    });
    return ledger.closeWindow();
  }

  /** A variable whose initial value is not left behind (tf.variable keeps its buffer, another tensor would too). */
  const variable = (shape: number[], seed: number) => tf.tidy(() => tf.variable(tf.randomUniform(shape, -1, 1, 'float32', seed)));

  it('an MLP: x[8,16] → matmul W1[16,32] → relu → matmul W2[32,4] → sum', () => {
    const w1 = variable([16, 32], 1);
    const w2 = variable([32, 4], 2);
    const report = window([w1, w2], function (this: tf.Tensor) {
      return tf.sum(tf.matMul(tf.relu(tf.matMul(this, w1)), w2));
    }, () => tf.randomUniform([8, 16], -1, 1, 'float32', 3));
    const params = (16 * 32 + 32 * 4) * F32; // 2,560
    const [x, hidden, dW1, dW2] = [8 * 16 * F32, 8 * 32 * F32, 16 * 32 * F32, 32 * 4 * F32]; // 512, 1024, 2048, 512
    // TensorFlow keeps x (MatMul #1's gradient needs it) and relu's output h (relu's and MatMul #2's gradients);
    // the pre-activation dies after relu. Backward, at relu's gradient: x, h, dh (into relu), dh1 (out of it), dW2.
    // At MatMul #1's gradient the same total: x, dh1, dW1, dW2. Relu's step(x) temporary is not counted.
    expect(report.peakTfModeledBytes).toBe(params + x + hidden + hidden + hidden + dW2);
    expect(report.peakTfModeledBytes).toBe(params + x + hidden + dW1 + dW2);
    // tfjs itself holds more: every forward tensor until the backward pass ends.
    expect(report.peakBytes).toBeGreaterThan(report.peakTfModeledBytes);
    tf.dispose([w1, w2]);
  });

  it('a conv + pool block: x[2,8,8,1] → conv 3×3×4 same → relu → max-pool 2×2 → sum', () => {
    const filter = variable([3, 3, 1, 4], 4);
    const report = window([filter], function (this: tf.Tensor) {
      return tf.sum(tf.maxPool(tf.relu(tf.conv2d(this as tf.Tensor4D, filter as tf.Tensor4D, 1, 'same')), 2, 2, 'valid'));
    }, () => tf.randomUniform([2, 8, 8, 1], -1, 1, 'float32', 5));
    const params = 3 * 3 * 1 * 4 * F32; // 144
    const [x, map, pooled] = [2 * 8 * 8 * F32, 2 * 8 * 8 * 4 * F32, 2 * 4 * 4 * 4 * F32]; // 512, 2048, 512
    // Forward: the conv output dies after relu; relu's output r is kept by max-pool's and relu's gradients, the pooled
    // output p by max-pool's. Backward, at relu's gradient: x, r, dr (out of MaxPoolGrad), dc (out of relu's gradient)
    // = 512 + 3 × 2048; at MaxPoolGrad it is x, r, p, dp, dr = 5,632. The filter gradient's im2col chunks are not
    // counted.
    expect(report.peakTfModeledBytes).toBe(params + x + 3 * map);
    expect(params + x + map + pooled + pooled + map).toBeLessThan(report.peakTfModeledBytes);
    expect(report.peakBytes).toBeGreaterThan(report.peakTfModeledBytes);
    filter.dispose();
  });

  it('gelu as TensorFlow runs it (five ops) and as PyTorch runs it (one): x[8,16] → matmul W[16,32] → gelu → sum', () => {
    const w = variable([16, 32], 6);
    const report = window([w], function (this: tf.Tensor) {
      return tf.sum(activate(tf.matMul(this, w), 'gelu', { round: (t) => t, fused: (name, fn) => ledger.asFusedOp(name, fn) }));
    }, () => tf.randomUniform([8, 16], -1, 1, 'float32', 7));
    const [params, x, h] = [16 * 32 * F32, 8 * 16 * F32, 8 * 32 * F32]; // 2,048, 512, 1,024
    const scalars = 4 + 4; // 0.5 and √2, which the gradients of 0.5·y and y/√2 read
    // TensorFlow keeps 0.5·y, y/√2 (erf's gradient) and 1 + erf (the product's gradient), not y. Its peak is at the
    // product's gradient: x (the matmul's filter gradient), those three, d(out), d(0.5·y), d(1 + erf).
    expect(report.peakTfModeledBytes).toBe(params + x + 3 * h + 3 * h + scalars);
    // PyTorch's F.gelu keeps y (and the op's constants); none of the composite's intermediates exist. Peak at the
    // second gradient reaching y: x, y, both partial gradients and the constants (0.5, √2, 1).
    expect(report.peakTorchModeledBytes).toBe(params + x + h + 2 * h + 12);
    w.dispose();
  });
});

/** Synthetic logs: one rule at a time. */
let nextId = 0;
function buffer(bytes: number, options: Partial<BufferRecord> = {}): BufferRecord {
  const role = options.role ?? 'activations';
  return { bytes, isFloat: true, role, halfPrecision: false, isVirtual: false, replayRole: role, isUpdate: false, isForward: true, isTemporary: false, ...options };
}
function node(kernelName: string, parts: Partial<TapeNodeInfo> = {}): TapeNodeInfo {
  return { id: nextId++, kernelName, layer: 0, isHalf: false, inputs: {}, outputs: [], saved: [], attrs: {}, inputShapes: {}, ...parts };
}
/** A variable (its bytes are not the point of these tests): what makes the tensors computed from it need gradients. */
const W = buffer(0, { role: 'parameters' });
/** Marks `records` as computed from the variable, so gradients flow to them. */
const fromVariable = (...records: BufferRecord[]): LogEvent => ({ kind: 'node', node: node('Identity', { inputs: { x: W }, outputs: records }) });
const alloc = (record: BufferRecord): LogEvent => ({ kind: 'alloc', record });
const free = (record: BufferRecord): LogEvent => ({ kind: 'free', record });
const kernel = (...reads: BufferRecord[]): LogEvent => ({ kind: 'kernel', reads });

describe('liveness rules on synthetic logs', () => {
  it('a forward tensor dies after its last forward read; tfjs freeing it later does not matter', () => {
    const [a, b, c] = [buffer(100), buffer(10), buffer(1)];
    const log: LogEvent[] = [alloc(a), alloc(b), kernel(a), alloc(c), kernel(b), free(a), free(b), free(c)];
    // a dies at its read, before c exists: peak is a + b.
    expect(replayLiveness([], log).peakBytes).toBe(110);
  });

  it('a tensor the gradient keeps lives until that gradient has run, by TensorFlow\'s rule, not tfjs\'s read', () => {
    const [input, output, dy, dx] = [buffer(100), buffer(100), buffer(100, { isForward: false }), buffer(100, { isForward: false })];
    const relu = node('Relu', { inputs: { x: input }, outputs: [output], saved: [input] });
    const log: LogEvent[] = [
      alloc(input),
      fromVariable(input),
      alloc(output),
      kernel(input), // relu's forward read
      { kind: 'node', node: relu },
      alloc(dy),
      { kind: 'gradient-start', nodeId: relu.id },
      alloc(dx),
      kernel(dy, input), // tfjs's relu gradient reads the input; TensorFlow's keeps the output instead
      { kind: 'gradient', nodeId: relu.id },
    ];
    // input dies after the forward read; output (kept) + dy + dx at the gradient.
    expect(replayLiveness([W], log).peakBytes).toBe(300);
  });

  it('temporaries and in-place variable updates are not counted; persistent state stays', () => {
    const param = buffer(1000, { role: 'parameters' });
    const temp = buffer(500, { isTemporary: true, isForward: false });
    const newValue = buffer(1000, { isUpdate: true, isForward: false });
    const grad = buffer(1000, { role: 'gradients', isForward: false });
    const log: LogEvent[] = [alloc(grad), alloc(temp), free(temp), kernel(grad, param), alloc(newValue), free(param), { kind: 'retag', record: newValue, role: 'parameters' }];
    expect(replayLiveness([param], log).peakBytes).toBe(2000);
  });

  it('sizes are the policy\'s: 16-bit activations at 2 bytes, virtual copies as logged; a 16-bit layer keeps the copies, not the fp32 input', () => {
    const input32 = buffer(400, { role: 'other' }); // the fp32 input batch
    const copy16 = buffer(200, { isVirtual: true }); // its 16-bit copy, from the layer's forward to its backward
    const out16 = buffer(400, { halfPrecision: true }); // counted as 200
    const matmul = node('BatchMatMul', { isHalf: true, inputs: { a: input32, b: W }, outputs: [out16], saved: [input32, W] });
    const log: LogEvent[] = [alloc(input32), alloc(copy16), alloc(out16), kernel(input32), { kind: 'node', node: matmul }, kernel(out16), { kind: 'gradient', nodeId: matmul.id }, free(copy16)];
    // input32 dies after its read (the copy serves the gradient): peak at out16's allocation, 400 + 200 + 200.
    expect(replayLiveness([W], log).peakBytes).toBe(800);
  });

  it('PyTorch\'s rules: max-pool keeps int64 indices (8 bytes per output element) until its gradient; a convolution holds a reorder buffer as large as its output while it runs', () => {
    const input = buffer(4000);
    const pooled = buffer(1000); // 250 float32 elements → 2,000 bytes of indices
    const pool = node('MaxPool', { inputs: { x: input }, outputs: [pooled], saved: [input, pooled] });
    const log: LogEvent[] = [alloc(input), fromVariable(input), alloc(pooled), kernel(input), { kind: 'node', node: pool }, kernel(pooled), { kind: 'gradient', nodeId: pool.id }];
    expect(replayLiveness([W], log, 'tensorflow').peakBytes).toBe(5000);
    // input (kept) + pooled + indices; pooled then dies after its read, the indices stay until the gradient.
    expect(replayLiveness([W], log, 'pytorch').peakBytes).toBe(7000);
    const x = buffer(100);
    const out = buffer(800);
    const conv = node('Conv2D', { inputs: { x, filter: W }, outputs: [out], saved: [x, W] });
    // tfjs records the tape node inside the kernel call, before the kernel's read is logged: x is alive.
    const convLog: LogEvent[] = [alloc(x), alloc(out), { kind: 'node', node: conv }, kernel(x), kernel(out)];
    expect(replayLiveness([], convLog, 'tensorflow').peakBytes).toBe(900);
    expect(replayLiveness([], convLog, 'pytorch').peakBytes).toBe(1700);
  });

  it('only needed gradients keep tensors: mask × data keeps the mask, a gradient reaching a variable keeps its partner', () => {
    const data = buffer(400, { role: 'other' });
    const mask = buffer(400);
    const product = buffer(400);
    const mul = node('Multiply', { inputs: { a: data, b: mask }, outputs: [product], saved: [data, mask] });
    const dy = buffer(10_000, { isForward: false }); // large, so that the gradient is the peak
    const log = (...prefix: LogEvent[]): LogEvent[] => [
      alloc(data), ...prefix, alloc(mask), alloc(product), kernel(data, mask), { kind: 'node', node: mul }, kernel(product),
      alloc(dy), { kind: 'gradient', nodeId: mul.id },
    ];
    // Nothing reaches a variable: no gradient runs in TensorFlow's graph, nothing is kept.
    expect(replayLiveness([W], log()).peakBytes).toBe(10_000);
    // The data comes from a variable (dropout on activations): its gradient reads the mask, which stays; the data does not.
    expect(replayLiveness([W], log(fromVariable(data))).peakBytes).toBe(10_000 + 400);
  });

  it('TensorFlow\'s embedding gradient is sparse (the gathered rows and their ids); PyTorch\'s is the dense table and its ids are int64', () => {
    const table = buffer(40_000, { role: 'parameters' }); // [1000, 10]
    const ids = buffer(32, { role: 'other', isFloat: false }); // 8 int32 ids
    const rows = buffer(320); // [8, 10]
    const gather = node('GatherV2', { inputs: { x: table, indices: ids }, outputs: [rows], saved: [table, ids] });
    const grad = buffer(40_000, { role: 'gradients', isForward: false });
    const log: LogEvent[] = [alloc(ids), alloc(rows), { kind: 'node', node: gather }, kernel(table, ids), kernel(rows), alloc(grad), { kind: 'gradient', nodeId: gather.id, input: 'x', result: grad }, kernel(grad)];
    // At the gradient: the ids (kept), the gradient: 320 + 32 bytes in TensorFlow, 40,000 in PyTorch, plus 32 more
    // bytes of int64 ids.
    expect(replayLiveness([table], log, 'tensorflow').peakBytes).toBe(40_000 + 32 + 320 + 32);
    expect(replayLiveness([table], log, 'pytorch').peakBytes).toBe(40_000 + 32 + 40_000 + 32);
  });

  it('a select keeps its condition; bool and int tensors keep their size in a 16-bit layer', () => {
    const condition = buffer(250, { isFloat: false, halfPrecision: true }); // 250 bools
    const t = buffer(1000, { halfPrecision: true });
    const out = buffer(1000, { halfPrecision: true });
    const select = node('Select', { isHalf: true, inputs: { condition, t }, outputs: [out], saved: [condition] });
    const dx = buffer(10_000, { isForward: false });
    const log: LogEvent[] = [alloc(condition), alloc(t), fromVariable(t), alloc(out), kernel(condition, t), { kind: 'node', node: select }, kernel(out), alloc(dx), { kind: 'gradient', nodeId: select.id }];
    // At the gradient: the condition, 250 bytes (not halved: one byte per bool in any layer), and dx.
    expect(replayLiveness([W], log).peakBytes).toBe(10_250);
  });

  it('average pooling: TensorFlow\'s gradient needs only the shape, PyTorch\'s keeps the input', () => {
    const x = buffer(1600);
    const pooled = buffer(400);
    const pool = node('AvgPool', { inputs: { x }, outputs: [pooled], saved: [x] });
    const dx = buffer(1600, { isForward: false });
    const log: LogEvent[] = [alloc(x), fromVariable(x), alloc(pooled), kernel(x), { kind: 'node', node: pool }, kernel(pooled), alloc(dx), { kind: 'gradient', nodeId: pool.id }];
    expect(replayLiveness([W], log, 'tensorflow').peakBytes).toBe(2000);
    expect(replayLiveness([W], log, 'pytorch').peakBytes).toBe(3200);
  });

  it('PyTorch keeps a padded copy for a convolution whose `same` padding TensorFlow splits unevenly (stride 2, 3×3 on 8×8)', () => {
    const x = buffer(2 * 8 * 8 * 3 * 4);
    const out = buffer(2 * 4 * 4 * 4 * 4);
    const conv = node('Conv2D', {
      inputs: { x, filter: W },
      outputs: [out],
      saved: [x, W],
      attrs: { strides: [2, 2], pad: 'same' },
      inputShapes: { x: [2, 8, 8, 3], filter: [3, 3, 3, 4] },
    });
    const log: LogEvent[] = [alloc(x), alloc(out), { kind: 'node', node: conv }, kernel(x, W), kernel(out), { kind: 'gradient', nodeId: conv.id }];
    // TensorFlow pads inside the kernel: x is kept. The torch engine pads 8 → 9 (0 before, 1 after) with F.pad and the
    // convolution keeps that copy: 2·9·9·3 floats, beside the reorder buffer while it runs.
    expect(replayLiveness([W], log, 'tensorflow').peakBytes).toBe(x.bytes + out.bytes);
    expect(replayLiveness([W], log, 'pytorch').peakBytes).toBe(x.bytes + out.bytes + 2 * 9 * 9 * 3 * 4 + out.bytes);
  });
});
