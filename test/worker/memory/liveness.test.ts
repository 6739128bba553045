/**
 * The liveness replays pinned on hand-checked graphs. Two small graphs run for real on wasm with the ledger attached
 * (an MLP and a conv + pool block), where the expected TensorFlow peak is worked out by hand below each; and synthetic
 * logs that isolate one rule each (including PyTorch's).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../../../src/worker/backend.js';
import { TensorLedger } from '../../../src/worker/memory/ledger.js';
import { replayLiveness } from '../../../src/worker/memory/liveness.js';
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
});

/** Synthetic logs: one rule at a time. */
let nextId = 0;
function buffer(bytes: number, options: Partial<BufferRecord> = {}): BufferRecord {
  const role = options.role ?? 'activations';
  return { bytes, role, halfPrecision: false, isVirtual: false, replayRole: role, isUpdate: false, isForward: true, isTemporary: false, ...options };
}
function node(kernelName: string, parts: Partial<TapeNodeInfo> = {}): TapeNodeInfo {
  return { id: nextId++, kernelName, layer: 0, isHalf: false, inputs: {}, outputs: [], saved: [], ...parts };
}
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
    expect(replayLiveness([], log).peakBytes).toBe(300);
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
    const matmul = node('BatchMatMul', { isHalf: true, inputs: { a: input32 }, outputs: [out16], saved: [input32] });
    const log: LogEvent[] = [alloc(input32), alloc(copy16), alloc(out16), kernel(input32), { kind: 'node', node: matmul }, kernel(out16), { kind: 'gradient', nodeId: matmul.id }, free(copy16)];
    // input32 dies after its read (the copy serves the gradient): peak at out16's allocation, 400 + 200 + 200.
    expect(replayLiveness([], log).peakBytes).toBe(800);
  });

  it('PyTorch\'s rules: max-pool keeps int64 indices (8 bytes per output element) until its gradient; a convolution holds a reorder buffer as large as its output while it runs', () => {
    const input = buffer(4000);
    const pooled = buffer(1000); // 250 float32 elements → 2,000 bytes of indices
    const pool = node('MaxPool', { inputs: { x: input }, outputs: [pooled], saved: [input, pooled] });
    const log: LogEvent[] = [alloc(input), alloc(pooled), kernel(input), { kind: 'node', node: pool }, kernel(pooled), { kind: 'gradient', nodeId: pool.id }];
    expect(replayLiveness([], log, 'tensorflow').peakBytes).toBe(5000);
    // input (kept) + pooled + indices; pooled then dies after its read, the indices stay until the gradient.
    expect(replayLiveness([], log, 'pytorch').peakBytes).toBe(7000);
    const x = buffer(100);
    const out = buffer(800);
    const conv = node('Conv2D', { inputs: { x }, outputs: [out], saved: [x] });
    // tfjs records the tape node inside the kernel call, before the kernel's read is logged: x is alive.
    const convLog: LogEvent[] = [alloc(x), alloc(out), { kind: 'node', node: conv }, kernel(x), kernel(out)];
    expect(replayLiveness([], convLog, 'tensorflow').peakBytes).toBe(900);
    expect(replayLiveness([], convLog, 'pytorch').peakBytes).toBe(1700);
  });
});
