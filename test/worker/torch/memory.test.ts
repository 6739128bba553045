/**
 * What the PyTorch engine measures on CPU: byte identities of the state kept between updates, gradient accumulation,
 * 16-bit activations, and the profiler's peak against an independent resident-set figure.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { countParameters } from '../../../src/spec/model-shapes.js';
import { makeRun, makeRuns, tinySpec } from '../make-run.js';
import { measureRuns, pythonSnippet, runWorker, torchPython, type StandaloneOutcome } from './python.js';

beforeAll(() => {
  torchPython();
});

/** Activation-heavy models at a batch where activations dwarf everything else. */
const LARGE_BATCH = `
name: large
seed: 3
data: { kind: synthetic, samples: 512, evalSamples: 32 }
train: { steps: 3, warmupSteps: 1, optimizer: { name: adam, learningRate: 0.001 } }
models:
  cnn: { preset: cnn, input: [28, 28, 1], filters: [8, 16], kernelSize: 3, dense: [32], classes: 10 }
  convs:
    input: [16, 16, 4]
    layers:
      - conv2d: { filters: 16, kernelSize: 3, padding: same, activation: relu }
      - conv2d: { filters: 16, kernelSize: 3, padding: same, activation: relu }
      - flatten: {}
      - dense: { units: 10 }
matrix:
  model: [cnn, convs]
  batchSize: [256]
  policy: [float32, mixed_bfloat16]
`;

describe('torch out of memory', () => {
  it('classifies a real CPU allocation failure as oom (address space capped 1 GiB above what torch holds)', async () => {
    // One dense layer of 65536 units at batch 8192: its first output alone is 2 GiB.
    const run = makeRun(`
name: huge
seed: 1
data: { kind: synthetic, samples: 256, evalSamples: 16 }
train: { steps: 3, warmupSteps: 1, optimizer: { name: sgd, learningRate: 0.01 } }
models:
  wide: { preset: mlp, input: [16], hidden: [65536], classes: 4 }
matrix: { batchSize: [8192] }
`);
    const [kind, message, reached] = await pythonSnippet<[string, string, number | null]>(
      `
import json, resource, sys
from mpx_torch.cli import classify, execute, start_torch
from mpx_torch.protocol import encode
run = json.load(sys.stdin)
device, engine = start_torch()
with open('/proc/self/status') as status:
    size = next(int(line.split()[1]) * 1024 for line in status if line.startswith('VmSize:'))
resource.setrlimit(resource.RLIMIT_AS, (size + 2**30, resource.RLIM_INFINITY))
try:
    execute(run, device, engine, None, None, None)
    print(encode(['none', '', None]))
except Exception as error:
    print(encode(classify(error, device)))
`,
      run,
    );
    expect(kind).toBe('oom');
    expect(message).toMatch(/^out of memory: .*can't allocate memory/);
    expect(reached).toBeNull();
  });
});

describe('torch memory identities (float32 and mixed_bfloat16 alike)', () => {
  it('params 4P, Adam slots 8P, momentum 4P, SGD 0; resting 12P, +4P of accumulators for k = 2 and 4', async () => {
    const cases: Array<{ policy: string; model: string; optimizer: string; k: number }> = [];
    for (const policy of ['float32', 'mixed_bfloat16']) {
      for (const model of ['mlp', 'cnn']) {
        for (const k of [1, 2, 4]) cases.push({ policy, model, optimizer: 'adam', k });
        cases.push({ policy, model, optimizer: 'sgd', k: 1 }, { policy, model, optimizer: 'momentum', k: 2 });
      }
    }
    const runs = cases.map((c) =>
      makeRun(tinySpec({ policy: c.policy, model: c.model, optimizer: c.optimizer, accumulationSteps: c.k, batchSize: 16, steps: 3 })),
    );
    const measured = await measureRuns(runs);
    measured.forEach((m, i) => {
      const { optimizer, k } = cases[i]!;
      const P = m.paramCount;
      const slots = { adam: 8 * P, momentum: 4 * P, sgd: 0 }[optimizer]!;
      const accumulators = k > 1 ? 4 * P : 0;
      expect({ case: cases[i], params: m.paramsBytes, optimizer: m.optimizerBytes, accumulators: m.accumulatorBytes, resting: m.restingBytes }).toEqual({
        case: cases[i],
        params: 4 * P,
        optimizer: slots,
        accumulators,
        resting: 4 * P + slots + accumulators,
      });
      expect(m.gradsBytes).toBeGreaterThanOrEqual(0);
      expect(m.gradsBytes).toBeLessThanOrEqual(4 * P);
      expect(m.activationsPeakBytes).toBeGreaterThan(0);
      expect(m.peakBytes).toBeGreaterThanOrEqual(m.restingBytes + m.gradsBytes! );
    });
  });

  it('transformer with AdamW: 4P, 8P, 12P; RMSprop 4P, +4P momentum, +4P centered; resnet\'s params include the fp32 batch-norm statistics', async () => {
    const transformer = (optimizer: string, policy: string) => `
name: t
seed: 4
data: { kind: tokens, vocab: 64, length: 16, samples: 128, evalSamples: 16 }
train: { steps: 2, warmupSteps: 0, optimizer: ${optimizer} }
models:
  t: { preset: transformer, width: 32, heads: 4, blocks: 1, classes: 4 }
matrix: { batchSize: [16], policy: [${policy}] }
`;
    const cases: Array<[string, number]> = [
      ['{ name: adamw }', 8],
      ['{ name: rmsprop }', 4],
      ['{ name: rmsprop, momentum: 0.9 }', 8],
      ['{ name: rmsprop, momentum: 0.9, centered: true }', 12],
    ];
    const runs = [
      ...cases.flatMap(([optimizer]) => ['float32', 'mixed_bfloat16'].map((policy) => makeRun(transformer(optimizer, policy)))),
      makeRun(`
name: r
seed: 4
data: { kind: synthetic, samples: 128, evalSamples: 16 }
train: { steps: 2, warmupSteps: 0 }
models:
  r: { preset: resnet, input: [8, 8, 2], filters: [4, 8], blocks: 1, classes: 4 }
matrix: { batchSize: [16], policy: [mixed_bfloat16] }
`),
    ];
    const measured = await measureRuns(runs);
    cases.forEach(([, perParameter], i) => {
      for (const m of measured.slice(2 * i, 2 * i + 2)) {
        const P = m.paramCount;
        expect([m.paramsBytes, m.optimizerBytes, m.restingBytes]).toEqual([4 * P, perParameter * P, (4 + perParameter) * P]);
      }
    });
    const resnet = measured.at(-1)!;
    const { trainable, nonTrainable } = countParameters(runs.at(-1)!.model);
    expect(resnet.paramCount).toBe(trainable);
    expect([resnet.paramsBytes, resnet.optimizerBytes]).toEqual([4 * (trainable + nonTrainable), 8 * trainable]);
  });
});

describe('torch gradient accumulation', () => {
  it('k micro-batches give the same float32 update as one full batch (Adam and SGD), and the same losses after', async () => {
    const pairs = ['sgd', 'adam'].flatMap((optimizer) =>
      [1, 4].map((k) => makeRun(tinySpec({ batchSize: 32, accumulationSteps: k, optimizer, steps: 4 }))),
    );
    expect(pairs[1]!.microBatchSize).toBe(8);
    const result = await pythonSnippet<Array<{ losses: number[]; params: number[][] }>>(
      `
import json, sys, torch
from mpx_torch.data import build_dataset
from mpx_torch.protocol import encode
from mpx_torch.train import Trainer
out = []
for run in json.load(sys.stdin):
    ds = build_dataset(run['data'], run['model']['input'], run['model']['classes'], run['seed'])
    trainer = Trainer(run, ds, torch.device('cpu'))
    first = trainer.update(0)
    params = [p.detach().reshape(-1).tolist() for p in trainer.model.params]
    out.append({'losses': [first] + [trainer.update(step) for step in range(1, 4)], 'params': params})
print(encode(out))
`,
      pairs,
    );
    for (let i = 0; i < result.length; i += 2) {
      const [full, split] = [result[i]!, result[i + 1]!];
      let worst = 0;
      full.params.forEach((values, j) => {
        const scale = Math.max(1, ...values.map(Math.abs));
        values.forEach((v, n) => (worst = Math.max(worst, Math.abs(v - split.params[j]![n]!) / scale)));
      });
      expect(worst).toBeLessThan(1e-6);
      full.losses.forEach((loss, step) => expect(Math.abs(loss - split.losses[step]!)).toBeLessThan(1e-5));
    }
  });
});

describe('torch 16-bit activations and the CPU measurement methods', () => {
  const runs = () => makeRuns(LARGE_BATCH);

  it('bf16 activations take about half the bytes of float32 ones (more with max pooling: its indices are int64)', async () => {
    const [cnn32, cnn16, convs32, convs16] = await measureRuns(runs());
    const convsRatio = convs16!.activationsPeakBytes! / convs32!.activationsPeakBytes!;
    const cnnRatio = cnn16!.activationsPeakBytes! / cnn32!.activationsPeakBytes!;
    expect(convsRatio).toBeGreaterThan(0.5); // the float32 input batch is cast to bf16: a copy float32 does not make
    expect(convsRatio).toBeLessThan(0.56); // measured 0.527
    expect(cnnRatio).toBeGreaterThan(0.58); // measured 0.615: max_pool2d keeps int64 indices for backward
    expect(cnnRatio).toBeLessThan(0.65);
  });

  it('the profiler peak agrees with the resident-set growth over an update to 3% on a CNN at batch 256', async () => {
    for (const run of runs().slice(0, 2)) {
      const done = await runWorker(['--run', '-'], JSON.stringify(run), { MPX_TORCH_MEMORY_CHECK: '1' });
      const m = (JSON.parse(done.stdout) as StandaloneOutcome).measurements!;
      const check = m.engine.memoryCheck!;
      expect(check.method).toMatch(/resident-set/);
      expect(m.peakBytes).toBeGreaterThan(10e6);
      expect(Math.abs(check.peakBytes - m.peakBytes) / m.peakBytes).toBeLessThan(0.03); // measured 0.6% / 1.6%
    }
  });
});
