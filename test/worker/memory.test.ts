import { beforeAll, describe, expect, it } from 'vitest';
import type { RunConfig } from '../../src/matrix/types.js';
import { startBackend } from '../../src/worker/backend.js';
import { buildDataset } from '../../src/worker/data.js';
import { TensorLedger } from '../../src/worker/memory/ledger.js';
import type { MemoryReport } from '../../src/worker/memory/replay.js';
import { LossScaler } from '../../src/worker/precision/loss-scale.js';
import { measureMemory, Trainer } from '../../src/worker/train.js';
import { countParameters } from '../../src/spec/model-shapes.js';
import { makeRun } from './make-run.js';

/** A 64-32-32-4 MLP: P = 64·32+32 + 32·32+32 + 32·4+4 = 3,268 parameters. */
const P = 64 * 32 + 32 + 32 * 32 + 32 + 32 * 4 + 4;

function spec(o: { policy?: string; batchSize?: number; accumulationSteps?: number; optimizer?: string; model?: string }): string {
  return `
name: m
seed: 3
data: { kind: synthetic, samples: 4096, evalSamples: 16 }
train: { steps: 2, warmupSteps: 0, optimizer: { name: ${o.optimizer ?? 'adam'} } }
models:
  mlp: { preset: mlp, input: [64], hidden: [32, 32], classes: 4 }
  cnn: { preset: cnn, input: [16, 16, 1], filters: [4, 8], kernelSize: 3, dense: [16], classes: 4 }
matrix:
  model: [${o.model ?? 'mlp'}]
  batchSize: [${o.batchSize ?? 4}]
  policy: [${o.policy ?? 'float32'}]
  accumulationSteps: [${o.accumulationSteps ?? 1}]
`;
}

let ledger: TensorLedger;
const policies = ['float32', 'mixed_float16', 'mixed_bfloat16'];
function measure(o: Parameters<typeof spec>[0]): ReturnType<typeof measureMemory> {
  const run = makeRun(spec(o));
  const dataset = buildDataset(run.data, run.model.input, run.model.classes, run.seed);
  return measureMemory(run, dataset, ledger);
}

/** The memory of the second of two fp32 updates from the initial weights: what `measureMemory` stands in for. */
function measureSecondOfTwo(run: RunConfig): MemoryReport & { paramCount: number } {
  const dataset = buildDataset(run.data, run.model.input, run.model.classes, run.seed);
  const trainer = new Trainer(run, dataset, null, new LossScaler(run.policy === 'mixed_float16' ? run.train.lossScale : 'none'));
  const memory = { ledger, halfPrecision: run.policy !== 'float32' };
  try {
    trainer.update(0, memory);
    ledger.openWindow(trainer.restingRoles());
    trainer.update(1, memory);
    return { ...ledger.closeWindow(), paramCount: trainer.model.paramCount };
  } finally {
    trainer.dispose();
  }
}

describe('memory anatomy on the fp32 ledger (wasm)', () => {
  beforeAll(async () => {
    await startBackend('wasm');
    ledger = new TensorLedger();
    ledger.attach();
  });

  it('Adam on an MLP: params 4P, grads 4P, optimizer 8P, resting 12P under every policy', () => {
    for (const policy of policies) {
      const r = measure({ policy, batchSize: 8 });
      expect(r.peakByRole.parameters).toBe(4 * P);
      expect(r.peakByRole.gradients).toBe(4 * P);
      expect(r.peakByRole.optimizer).toBe(8 * P);
      expect(r.peakByRole.accumulators).toBe(0);
      expect(r.restingBytes).toBe(12 * P);
    }
  });

  it('accumulation adds exactly 4P of fp32 accumulators, whatever k is', () => {
    const base = measure({ batchSize: 16 });
    for (const k of [2, 4, 8]) {
      const r = measure({ batchSize: 16, accumulationSteps: k });
      expect(r.peakByRole.accumulators).toBe(4 * P);
      expect(r.restingBytes - base.restingBytes).toBe(4 * P);
    }
  });

  it('SGD without momentum holds no optimizer bytes; momentum holds 4P', () => {
    const sgd = measure({ optimizer: 'sgd' });
    expect(sgd.peakByRole.optimizer).toBe(0);
    expect(sgd.restingBytes).toBe(4 * P);
    expect(measure({ optimizer: 'momentum' }).restingBytes).toBe(8 * P);
  });

  it('peak grows linearly with batch size', () => {
    for (const model of ['mlp', 'cnn']) {
      const peaks = [64, 128, 192, 256].map((b) => measure({ model, batchSize: b }).peakBytes);
      const steps = peaks.slice(1).map((peak, i) => peak - peaks[i]!);
      expect(steps[0]).toBeGreaterThan(0);
      for (const step of steps) expect(Math.abs(step - steps[0]!) / steps[0]!).toBeLessThan(0.01);
    }
  });

  it('modeled activation slope: mixed/float32 in [0.5, 0.65], equal for fp16 and bf16', () => {
    for (const model of ['mlp', 'cnn']) {
      const slope = (policy: string) => {
        const small = measure({ model, policy, batchSize: 128 });
        const large = measure({ model, policy, batchSize: 256 });
        return (large.activationsPeakModeledBytes - small.activationsPeakModeledBytes) / 128;
      };
      const [f32, f16, bf16] = policies.map(slope) as [number, number, number];
      expect(f16 / f32).toBeGreaterThanOrEqual(0.5);
      expect(f16 / f32).toBeLessThanOrEqual(0.65);
      expect(bf16).toBe(f16);
    }
  });

  it('float32: the modeled peak is the measured peak', () => {
    for (const model of ['mlp', 'cnn']) {
      const r = measure({ model, batchSize: 32 });
      expect(r.peakModeledBytes).toBe(r.peakBytes);
      expect(r.activationsPeakModeledBytes).toBe(r.activationsPeakBytes);
    }
  });

  it('peak at (batch b, accumulation k) is the peak at (b/k, 1) plus 4P of accumulators', () => {
    for (const model of ['mlp', 'cnn']) {
      const params = measure({ model }).peakByRole.parameters; // 4 bytes per parameter
      const split = measure({ model, batchSize: 256, accumulationSteps: 4 });
      const micro = measure({ model, batchSize: 64 });
      expect(Math.abs(split.peakBytes - (micro.peakBytes + params)) / micro.peakBytes).toBeLessThan(0.01);
    }
  });

  describe('with TensorFlow\'s lifetimes (peak_tf_modeled_bytes)', () => {
    it('holds the resting state and never more than tfjs; on a CNN far less (tfjs keeps every forward tensor)', () => {
      for (const policy of policies) {
        const mlp = measure({ policy, batchSize: 64 });
        expect(mlp.peakTfModeledBytes).toBeGreaterThan(12 * P);
        expect(mlp.peakTfModeledBytes).toBeLessThanOrEqual(mlp.peakModeledBytes);
        const cnn = measure({ model: 'cnn', policy, batchSize: 256 });
        expect(cnn.peakTfModeledBytes).toBeLessThan(0.5 * cnn.peakModeledBytes);
      }
    });

    it('grows linearly with batch size; 16-bit activations take half the bytes per sample, plus the input\'s 16-bit copy', () => {
      const slope = (model: string, policy: string, pick: (r: MemoryReport) => number) => {
        const [a, b, c] = [128, 192, 256].map((batchSize) => pick(measure({ model, policy, batchSize }))) as [number, number, number];
        expect(Math.abs(c - b - (b - a)) / (b - a)).toBeLessThan(0.01);
        return (c - a) / 128;
      };
      for (const model of ['mlp', 'cnn']) {
        expect(slope(model, 'float32', (r) => r.peakTfModeledBytes)).toBeGreaterThan(0);
        const [f32, f16, bf16] = policies.map((policy) => slope(model, policy, (r) => r.activationsPeakTfModeledBytes)) as [number, number, number];
        expect(bf16).toBe(f16);
        // The fp32 input batch is not an activation; its 16-bit copy, kept for the first layer's backward, is.
        const inputCopy = model === 'mlp' ? 64 * 2 : 16 * 16 * 1 * 2;
        if (model === 'mlp') expect(f16).toBe(f32 / 2 + inputCopy);
        else expect((f16 - inputCopy) / f32).toBeCloseTo(0.5, 2);
      }
    });

    it('accumulation adds the 4P of fp32 accumulators to the micro-batch\'s peak, updated in place', () => {
      for (const model of ['mlp', 'cnn']) {
        const params = measure({ model }).peakByRole.parameters;
        const split = measure({ model, batchSize: 256, accumulationSteps: 4 });
        const micro = measure({ model, batchSize: 64 });
        expect(split.peakTfModeledBytes).toBe(micro.peakTfModeledBytes + params);
      }
    });

    it('PyTorch\'s rules add max-pool indices on a CNN and change nothing on an MLP', () => {
      const mlp = measure({ batchSize: 64 });
      expect(mlp.peakTorchModeledBytes).toBe(mlp.peakTfModeledBytes);
      const cnn = measure({ model: 'cnn', batchSize: 64 });
      expect(cnn.peakTorchModeledBytes).toBeGreaterThan(cnn.peakTfModeledBytes);
    });
  });

  it('one update after the first update\'s state is made holds exactly what the second of two updates holds', () => {
    // The measurement prepares optimizer slots and accumulators instead of running a first update: the same bytes.
    for (const model of ['mlp', 'cnn']) {
      for (const policy of policies) {
        for (const [optimizer, accumulationSteps] of [['adam', 1], ['adam', 4], ['momentum', 2], ['sgd', 1]] as const) {
          const o = { model, policy, optimizer, accumulationSteps, batchSize: 32 };
          expect(measure(o), JSON.stringify(o)).toEqual(measureSecondOfTwo(makeRun(spec(o))));
        }
      }
    }
  });

  it('a run over its memory budget stops with the bytes it reached', () => {
    const run = makeRun(spec({ model: 'cnn', batchSize: 256, policy: 'mixed_float16' }));
    const dataset = buildDataset(run.data, run.model.input, run.model.classes, run.seed);
    const tight = new TensorLedger(1_000_000);
    tight.attach();
    expect(() => measureMemory(run, dataset, tight)).toThrow(/above the memory budget of 1000000 bytes/);
    ledger.attach(); // the other tests' ledger counts again
  });
});

describe('memory identities of the new families (wasm)', () => {
  beforeAll(async () => {
    await startBackend('wasm');
    ledger = new TensorLedger();
    ledger.attach();
  });

  const transformer = (optimizer: string, policy = 'float32', accumulationSteps = 1) => `
name: t
seed: 4
data: { kind: tokens, vocab: 64, length: 16, samples: 256, evalSamples: 16 }
train: { steps: 2, warmupSteps: 0, optimizer: ${optimizer} }
models:
  t: { preset: transformer, width: 32, heads: 4, blocks: 2, classes: 4 }
matrix: { batchSize: [16], policy: [${policy}], accumulationSteps: [${accumulationSteps}] }
`;
  const resnet = (optimizer: string, policy = 'float32') => `
name: r
seed: 4
data: { kind: synthetic, samples: 256, evalSamples: 16 }
train: { steps: 2, warmupSteps: 0, optimizer: ${optimizer} }
models:
  r: { preset: resnet, input: [8, 8, 2], filters: [4, 8], blocks: 1, classes: 4 }
matrix: { batchSize: [16], policy: [${policy}] }
`;
  const measureSpec = (yaml: string) => {
    const run = makeRun(yaml);
    const dataset = buildDataset(run.data, run.model.input, run.model.classes, run.seed);
    return { report: measureMemory(run, dataset, ledger), counts: countParameters(run.model) };
  };

  it('transformer with AdamW: params 4P, slots 8P, resting 12P under every policy; accumulation adds 4P', () => {
    for (const policy of policies) {
      const { report, counts } = measureSpec(transformer('{ name: adamw }', policy));
      const P = counts.trainable;
      expect(report.peakByRole.parameters).toBe(4 * P);
      expect(report.peakByRole.optimizer).toBe(8 * P);
      expect(report.restingBytes).toBe(12 * P);
      if (policy === 'float32') expect(report.peakModeledBytes).toBe(report.peakBytes);
      else expect(report.peakTfModeledBytes).toBeLessThan(measureSpec(transformer('{ name: adamw }')).report.peakTfModeledBytes);
    }
    const split = measureSpec(transformer('{ name: adamw }', 'float32', 4));
    expect(split.report.restingBytes).toBe(16 * split.counts.trainable);
  });

  it('one update after prepareState holds exactly what the second of two updates holds: AdamW, RMSprop, batch norm, accumulation', () => {
    const cases = [
      ...policies.map((policy) => transformer('{ name: adamw }', policy)),
      transformer('{ name: adamw }', 'mixed_float16', 2),
      transformer('{ name: rmsprop }'),
      transformer('{ name: rmsprop, momentum: 0.9, centered: true }', 'mixed_float16'),
      ...policies.map((policy) => resnet('{ name: adam }', policy)),
      resnet('{ name: rmsprop, momentum: 0.9 }'),
    ];
    for (const yaml of cases) {
      const run = makeRun(yaml);
      const dataset = buildDataset(run.data, run.model.input, run.model.classes, run.seed);
      expect(measureMemory(run, dataset, ledger), yaml).toEqual(measureSecondOfTwo(run));
    }
  });

  it('RMSprop keeps Keras\'s slots: 4P, +4P with momentum, +4P centered (not tfjs\'s fixed two)', () => {
    const resting = (optimizer: string) => {
      const { report, counts } = measureSpec(transformer(optimizer));
      return (report.restingBytes - 4 * counts.trainable) / counts.trainable;
    };
    expect(resting('{ name: rmsprop }')).toBe(4);
    expect(resting('{ name: rmsprop, momentum: 0.9 }')).toBe(8);
    expect(resting('{ name: rmsprop, centered: true }')).toBe(8);
    expect(resting('{ name: rmsprop, momentum: 0.9, centered: true }')).toBe(12);
  });

  it('resnet: params are the trainable weights plus batch norm\'s fp32 moving statistics; Adam slots 8P of the trainable ones', () => {
    for (const policy of policies) {
      const { report, counts } = measureSpec(resnet('{ name: adam }', policy));
      expect(report.peakByRole.parameters).toBe(4 * (counts.trainable + counts.nonTrainable));
      expect(report.peakByRole.optimizer).toBe(8 * counts.trainable);
      expect(report.restingBytes).toBe(12 * counts.trainable + 4 * counts.nonTrainable);
    }
  });
});
