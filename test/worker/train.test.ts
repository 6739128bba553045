import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../../src/worker/backend.js';
import { buildDataset } from '../../src/worker/data.js';
import { TensorLedger } from '../../src/worker/memory/ledger.js';
import { LossScaler } from '../../src/worker/precision/loss-scale.js';
import { Trainer, trainRun } from '../../src/worker/train.js';
import { makeRun, tinySpec } from './make-run.js';

function variableValues(trainer: Trainer): Float32Array[] {
  return trainer.model.variables.map((v) => v.dataSync() as Float32Array);
}

function maxRelativeDifference(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  a.forEach((values, i) => {
    const other = b[i]!;
    let scale = 1;
    for (const v of other) scale = Math.max(scale, Math.abs(v));
    for (let j = 0; j < values.length; j++) worst = Math.max(worst, Math.abs(values[j]! - other[j]!) / scale);
  });
  return worst;
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`training on ${backend}`, () => {
    beforeAll(async () => {
      expect((await startBackend(backend)).name).toBe(backend);
    });

    for (const model of ['mlp', 'cnn']) {
      it(`trains the ${model} preset: loss goes down, measurements are complete`, async () => {
        const run = makeRun(tinySpec({ model, steps: 30 }));
        const ledger = new TensorLedger();
        ledger.attach();
        const before = tf.memory().numTensors;
        const m = await trainRun(run, backend, ledger);
        expect(m.backend).toBe(backend);
        expect(m.finalLoss).toBeLessThan(m.initialLoss * 0.8);
        expect(m.evalAccuracy).toBeGreaterThan(0.25); // 4 classes: chance is 0.25
        expect(m.peakBytes).toBeGreaterThan(m.restingBytes);
        // Adam holds params + 2 slots at rest: at least 12 bytes per parameter.
        expect(m.restingBytes).toBeGreaterThanOrEqual(12 * m.paramCount);
        expect(m.precision).toBe('native');
        expect(m.lossScaleFinal).toBeNull();
        expect(tf.memory().numTensors).toBe(before); // nothing leaked
      });
    }

    it('gives identical losses when rerun with the same seed', async () => {
      const run = makeRun(tinySpec({ policy: 'mixed_float16', steps: 6 }));
      const a = await trainRun(run, backend, new TensorLedger());
      const b = await trainRun(run, backend, new TensorLedger());
      expect(b.finalLoss).toBe(a.finalLoss);
      expect(b.initialLoss).toBe(a.initialLoss);
      expect(b.evalAccuracy).toBe(a.evalAccuracy);
    });

    it('k micro-batches give the same update as one full batch (to 1e-6)', () => {
      for (const optimizer of ['sgd', 'adam']) {
        const full = makeRun(tinySpec({ batchSize: 32, accumulationSteps: 1, optimizer }));
        const split = makeRun(tinySpec({ batchSize: 32, accumulationSteps: 4, optimizer }));
        expect(split.microBatchSize).toBe(8);
        const dataset = buildDataset(full.data, full.model.input, full.model.classes, full.seed);
        const a = new Trainer(full, dataset, null, new LossScaler('none'));
        const b = new Trainer(split, dataset, null, new LossScaler('none'));
        const lossA = a.update(0);
        const lossB = b.update(0);
        expect(Math.abs(lossA - lossB)).toBeLessThan(1e-6);
        expect(maxRelativeDifference(variableValues(a), variableValues(b))).toBeLessThan(1e-6);
        a.dispose();
        b.dispose();
      }
    });

    it('accumulation keeps one fp32 accumulator per parameter at rest (4 bytes per parameter)', async () => {
      const one = await trainRun(makeRun(tinySpec({ batchSize: 32, accumulationSteps: 1, steps: 3 })), backend, ledgerAttached());
      const four = await trainRun(makeRun(tinySpec({ batchSize: 32, accumulationSteps: 4, steps: 3 })), backend, ledgerAttached());
      expect(four.restingBytes - one.restingBytes).toBe(4 * one.paramCount);
    });

    it('emulates mixed_float16 with dynamic loss scaling starting at 2^15', async () => {
      const m = await trainRun(makeRun(tinySpec({ policy: 'mixed_float16', steps: 6 })), backend, ledgerAttached());
      expect(m.precision).toBe('emulated');
      expect(m.lossScaleFinal).not.toBeNull();
      expect(m.lossScaleFinal! * 2 ** m.skippedSteps).toBe(2 ** 15);
      expect(Number.isFinite(m.finalLoss)).toBe(true);
    });

    it('measures memory on the fp32 graph: bfloat16 measures as float32; loss scaling adds only bookkeeping', async () => {
      const measure = async (policy: string) => trainRun(makeRun(tinySpec({ policy, steps: 3 })), backend, ledgerAttached());
      const [f32, f16, bf16] = [await measure('float32'), await measure('mixed_float16'), await measure('mixed_bfloat16')];
      expect(bf16.peakBytes).toBe(f32.peakBytes);
      expect(bf16.restingBytes).toBe(f32.restingBytes);
      expect(f16.restingBytes).toBe(f32.restingBytes);
      // Loss scaling costs three float32 scalars (the scale, the scaled loss, the finiteness sum), not a copy of the
      // gradients: 12 bytes when they are alive at the peak, none when the peak falls elsewhere.
      expect([0, 12]).toContain(f16.peakBytes - f32.peakBytes);
      // For float32 the policy's model is the measurement itself.
      expect(f32.peakModeledBytes).toBe(f32.peakBytes);
      expect(f32.activationsPeakModeledBytes).toBe(f32.activationsPeakBytes);
      expect(bf16.activationsPeakModeledBytes).toBeLessThan(bf16.activationsPeakBytes!);
    });
  });
}

let attachedLedger: TensorLedger | null = null;
/** The ledger hooks the backend's storage once per backend; reuse it and start a fresh peak window. */
function ledgerAttached(): TensorLedger {
  const backend = tf.getBackend();
  if (!attachedLedger || (attachedLedger as unknown as { backend?: string }).backend !== backend) {
    attachedLedger = new TensorLedger();
    attachedLedger.attach();
    (attachedLedger as unknown as { backend?: string }).backend = backend;
  }
  return attachedLedger;
}
