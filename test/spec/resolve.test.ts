import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadSpec, loadSpecText } from '../../src/spec/load.js';
import type { Activation, ExperimentSpec, LayerDef } from '../../src/spec/types.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/specs/', import.meta.url));
const fixture = (name: string) => relative(process.cwd(), join(FIXTURES, name));
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

const dense = (units: number, activation: Activation = 'linear'): LayerDef => ({ type: 'dense', units, activation, useBias: true });
const SOFTMAX_FP32: LayerDef = { type: 'activation', activation: 'softmax', dtype: 'float32' };
const convBlock = (filters: number): LayerDef[] => [
  { type: 'conv2d', filters, kernelSize: [3, 3], strides: [1, 1], padding: 'same', activation: 'relu', useBias: true },
  { type: 'maxPooling2d', poolSize: [2, 2], strides: [2, 2], padding: 'valid' },
];

/** The spec, checked to be plain data (it survives JSON unchanged: no functions, no YAML nodes). */
function plain(spec: ExperimentSpec): ExperimentSpec {
  expect(JSON.parse(JSON.stringify(spec))).toEqual(spec);
  return spec;
}

describe('good specs', () => {
  it('resolves the design sketch: presets expanded, defaults filled', async () => {
    const file = fixture('good/sketch.yaml');
    expect(plain((await loadSpec(file)).spec)).toEqual({
      file,
      sha256: sha256(file),
      name: 'seed-question',
      description: 'Does mixed precision reduce peak training memory for a small MLP and CNN, and where does it stop paying?',
      seed: 1234,
      repeats: 3,
      backend: 'auto',
      data: { kind: 'synthetic', samples: 4096, evalSamples: 1024, noise: 1 },
      train: {
        steps: 30,
        warmupSteps: 3,
        optimizer: { name: 'adam', learningRate: 0.001, momentum: 0.9 },
        lossScale: 'dynamic',
        timeoutSeconds: 300,
        retries: 0,
      },
      models: {
        mlp: {
          name: 'mlp',
          preset: 'mlp',
          input: [784],
          classes: 10,
          layers: [dense(512, 'relu'), dense(512, 'relu'), dense(10), SOFTMAX_FP32],
        },
        cnn: {
          name: 'cnn',
          preset: 'cnn',
          input: [28, 28, 1],
          classes: 10,
          layers: [...convBlock(16), ...convBlock(32), { type: 'flatten' }, dense(64, 'relu'), dense(10), SOFTMAX_FP32],
        },
        custom: {
          name: 'custom',
          preset: null,
          input: [784],
          classes: 10,
          layers: [dense(256, 'relu'), { type: 'dropout', rate: 0.1 }, dense(10), SOFTMAX_FP32],
        },
      },
      defaults: { model: 'mlp', batchSize: 64, policy: 'float32', accumulationSteps: 1, backend: 'auto' },
      matrix: {
        model: ['mlp', 'cnn'],
        batchSize: [32, 128, 512],
        policy: ['float32', 'mixed_float16', 'mixed_bfloat16'],
        accumulationSteps: [1, 4],
        axisOrder: ['model', 'batchSize', 'policy', 'accumulationSteps'],
        exclude: [{ model: 'cnn', batchSize: 512, accumulationSteps: 1 }],
        include: [{ model: 'custom', policy: 'mixed_float16' }],
      },
      maxRuns: 500,
      memoryLimitBytes: null,
      capacity: null,
    });
  });

  it('fills every default of a minimal spec', async () => {
    const file = fixture('good/minimal.yaml');
    expect(plain((await loadSpec(file)).spec)).toEqual({
      file,
      sha256: sha256(file),
      name: 'minimal',
      description: '',
      seed: 1,
      repeats: 1,
      backend: 'auto',
      data: { kind: 'synthetic', samples: 2048, evalSamples: 512, noise: 1 },
      train: {
        steps: 30,
        warmupSteps: 3,
        optimizer: { name: 'adam', learningRate: 0.001, momentum: 0.9 },
        lossScale: 'dynamic',
        timeoutSeconds: 600,
        retries: 0,
      },
      models: {
        net: {
          name: 'net',
          preset: 'mlp',
          input: [784],
          classes: 10,
          layers: [dense(512, 'relu'), dense(512, 'relu'), dense(10), SOFTMAX_FP32],
        },
      },
      defaults: { model: 'net', batchSize: 32, policy: 'float32', accumulationSteps: 1, backend: 'auto' },
      matrix: { policy: ['float32', 'mixed_float16'], axisOrder: ['policy'], include: [], exclude: [] },
      maxRuns: 500,
      memoryLimitBytes: null,
      capacity: null,
    });
  });

  it('resolves hand-written layers with every option, mnist data and a fixed loss scale', async () => {
    const spec = (await loadSpec(fixture('good/custom-layers.yaml'))).spec;
    expect(spec.name).toBe('custom.layers_v2');
    expect(spec.backend).toBe('cpu');
    expect(spec.data).toEqual({ kind: 'mnist', samples: 8000, evalSamples: 2000 });
    expect(spec.train).toEqual({
      steps: 10,
      warmupSteps: 0,
      optimizer: { name: 'momentum', learningRate: 0.01, momentum: 0.5 },
      lossScale: 1024,
      timeoutSeconds: 600,
      retries: 0,
    });
    expect(spec.models.convnet).toEqual({
      name: 'convnet',
      preset: null,
      input: [28, 28, 1],
      classes: 10,
      layers: [
        { type: 'conv2d', filters: 8, kernelSize: [5, 3], strides: [2, 2], padding: 'same', activation: 'relu', useBias: false },
        { type: 'maxPooling2d', poolSize: [3, 3], strides: [1, 2], padding: 'valid' },
        { type: 'maxPooling2d', poolSize: [2, 2], strides: [2, 2], padding: 'valid' },
        { type: 'flatten' },
        { type: 'dropout', rate: 0.25 },
        { type: 'dense', units: 10, activation: 'linear', useBias: true, dtype: 'float32' },
        SOFTMAX_FP32,
      ],
    });
    // An MLP on image input flattens first; no hidden layers is a linear classifier.
    expect(spec.models.flat?.layers).toEqual([{ type: 'flatten' }, dense(10), SOFTMAX_FP32]);
    expect(spec.matrix.axisOrder).toEqual(['policy', 'model']);
    expect(spec.matrix.include).toEqual([{ model: 'flat', batchSize: 16 }]);
    expect(spec.defaults.model).toBe('convnet');
  });

  it('follows anchors and aliases', async () => {
    const { spec, locator } = await loadSpec(fixture('good/aliases.yaml'));
    expect(spec.models.again?.layers).toEqual([dense(32, 'relu'), dense(10), SOFTMAX_FP32]);
    expect(locator.position(['models', 'again', 'hidden', 0])).toEqual({ line: 4, col: 42 });
  });

  it('gives the same spec for text as for the file', async () => {
    const file = fixture('good/sketch.yaml');
    const fromText = loadSpecText(readFileSync(file, 'utf8'), file).spec;
    expect(plain(fromText)).toEqual(plain((await loadSpec(file)).spec));
  });
});

describe('the locator', () => {
  it('maps keys and list indices to 1-based line and column', async () => {
    const { locator } = await loadSpec(fixture('good/sketch.yaml'));
    expect(locator.position([])).toEqual({ line: 4, col: 1 });
    expect(locator.position(['name'])).toEqual({ line: 4, col: 7 });
    expect(locator.position(['matrix', 'batchSize', 2])).toEqual({ line: 48, col: 24 });
    expect(locator.position(['matrix', 'exclude', 0, 'batchSize'])).toEqual({ line: 52, col: 32 });
    expect(locator.position(['models', 'custom', 'layers', 3])).toEqual({ line: 39, col: 9 });
  });

  it('points at the nearest node the YAML has for paths it does not have (a default, a missing item)', async () => {
    const { locator } = await loadSpec(fixture('good/sketch.yaml'));
    expect(locator.position(['maxRuns'])).toEqual(locator.position([]));
    expect(locator.position(['matrix', 'batchSize', 3])).toEqual(locator.position(['matrix', 'batchSize']));
    expect(locator.position(['name', 'x'])).toEqual({ line: 4, col: 7 });
  });

  it('points at the key instead of the value when asked (unknown keys)', async () => {
    const { locator } = await loadSpec(fixture('good/sketch.yaml'));
    expect(locator.position(['name'], true)).toEqual({ line: 4, col: 1 });
  });
});

describe('cross-field rules', () => {
  const base = 'name: x\nmodels:\n  m: { preset: mlp }\nmatrix:\n  policy: [float32]\n';

  it('blames steps when the default warm-up does not fit', () => {
    expect(() => loadSpecText(`${base}train: { steps: 3 }\n`, 's.yaml').spec).toThrow(
      'train.steps (3) must be greater than train.warmupSteps (3, the default)',
    );
  });

  it('accepts a mnist model whose classes come from its last layer', () => {
    const spec = loadSpecText(
      'name: x\ndata: { kind: mnist }\nmodels:\n  m:\n    input: [784]\n    layers: [{ dense: { units: 10 } }]\nmatrix: { model: [m] }\n',
      's.yaml',
    ).spec;
    expect(spec.models.m?.classes).toBe(10);
    expect(spec.data).toEqual({ kind: 'mnist', samples: 2048, evalSamples: 512 });
  });

  it('rejects a mnist model with other classes, at its last layer', () => {
    expect(() =>
      loadSpecText('name: x\ndata: { kind: mnist }\nmodels:\n  m:\n    input: [784]\n    layers:\n      - dense: { units: 4 }\nmatrix: { model: [m] }\n', 's.yaml').spec,
    ).toThrow(expect.objectContaining({ line: 7, col: 9, message: 'models.m must have 10 classes for data kind: mnist (the digits 0–9), got 4' }));
  });

  it('rejects a model that does not end in a vector', () => {
    expect(() =>
      loadSpecText('name: x\nmodels:\n  m:\n    input: [8, 8, 1]\n    layers:\n      - conv2d: { filters: 4, kernelSize: 3 }\nmatrix: { model: [m] }\n', 's.yaml').spec,
    ).toThrow(expect.objectContaining({ line: 6, col: 9, message: 'models.m must end in a vector of class scores, but its last layer outputs [6, 6, 4]' }));
  });

  it('rejects a preset whose blocks shrink the input away', () => {
    expect(() =>
      loadSpecText('name: x\nmodels:\n  m: { preset: cnn, input: [4, 4, 1], filters: [8, 8, 8] }\nmatrix: { model: [m] }\n', 's.yaml').spec,
    ).toThrow(
      expect.objectContaining({
        line: 3,
        col: 28,
        message: 'models.m (preset cnn): layer 6 (maxPooling2d) pool 2×2 does not fit its input 1×1 with padding valid',
      }),
    );
  });

  it('says which preset a misplaced key belongs to', () => {
    expect(() => loadSpecText('name: x\nmodels:\n  m: { preset: mlp, filters: [8] }\nmatrix: { model: [m] }\n', 's.yaml').spec).toThrow(
      '"filters" in models.m only applies to preset: cnn',
    );
  });

  it('asks for input and layers when neither preset nor layers is given', () => {
    expect(() => loadSpecText('name: x\nmodels:\n  m: { input: [4] }\nmatrix: { model: [m] }\n', 's.yaml').spec).toThrow(
      expect.objectContaining({ message: 'missing required key "layers" in models.m', hint: 'or use preset: mlp or cnn or transformer or resnet' }),
    );
  });
});

describe('tokens data, graphs and the new optimizers', () => {
  const spec = (body: string) => loadSpecText(`name: t\n${body}\nmatrix: { batchSize: [8] }\n`, 't.yaml').spec;

  it('a transformer takes its vocabulary and length from token data unless it says otherwise', () => {
    const s = spec('data: { kind: tokens, vocab: 300, length: 24 }\nmodels:\n  a: { preset: transformer, blocks: 1 }\n  b: { preset: transformer, blocks: 1, vocab: 400 }');
    expect(s.data).toEqual({ kind: 'tokens', samples: 2048, evalSamples: 512, vocab: 300, length: 24 });
    expect(s.models.a!.input).toEqual([24]);
    expect(s.models.a!.layers[0]).toEqual({ type: 'embedding', id: 'embedding', vocab: 300, units: 64 });
    expect(s.models.b!.layers[0]).toMatchObject({ vocab: 400 });
  });

  it('without data.length each model\'s input decides: one spec compares sequence lengths', () => {
    const s = spec('data: { kind: tokens, vocab: 300 }\nmodels:\n  short: { preset: transformer, length: 16 }\n  long: { preset: transformer, length: 256 }');
    expect(s.data).toMatchObject({ kind: 'tokens', length: null });
    expect([s.models.short!.input, s.models.long!.input]).toEqual([[16], [256]]);
  });

  it('rejects an embedding whose vocabulary is smaller than the data\'s, and a model of another length', () => {
    expect(() => spec('data: { kind: tokens, vocab: 300, length: 24 }\nmodels:\n  a: { preset: transformer, vocab: 100 }')).toThrow(
      'models.a: the embedding\'s vocab (100) is smaller than data.vocab (300); ids up to 299 occur',
    );
    expect(() => spec('data: { kind: tokens, vocab: 300, length: 24 }\nmodels:\n  a: { preset: transformer, length: 16 }')).toThrow(
      'models.a must take [24] for data kind: tokens (length 24), got [16]',
    );
  });

  it('keeps id and inputs only where the spec gives them (sequential layers resolve as before)', () => {
    const s = spec('models:\n  m:\n    input: [4]\n    layers:\n      - dense: { units: 4, id: a }\n      - dense: { units: 4 }\n      - dense: { units: 4, id: c }\n      - add: { inputs: [a, c] }\n      - dense: { units: 2 }');
    expect(s.models.m!.layers).toEqual([
      { type: 'dense', units: 4, activation: 'linear', useBias: true, id: 'a' },
      { type: 'dense', units: 4, activation: 'linear', useBias: true },
      { type: 'dense', units: 4, activation: 'linear', useBias: true, id: 'c' },
      { type: 'add', inputs: ['a', 'c'] },
      { type: 'dense', units: 2, activation: 'linear', useBias: true },
    ]);
  });

  it('resolves adamw and rmsprop with Keras 3\'s defaults, adding keys only for them', () => {
    const optimizer = (body: string) => spec(`train: { optimizer: ${body} }\nmodels:\n  m: { preset: mlp }`).train.optimizer;
    expect(optimizer('{ name: adam }')).toEqual({ name: 'adam', learningRate: 0.001, momentum: 0.9 });
    expect(optimizer('{ name: adamw }')).toEqual({ name: 'adamw', learningRate: 0.001, momentum: 0.9, weightDecay: 0.004 });
    expect(optimizer('{ name: rmsprop }')).toEqual({ name: 'rmsprop', learningRate: 0.001, momentum: 0, rho: 0.9, centered: false });
    expect(optimizer('{ name: rmsprop, momentum: 0.5, centered: true, rho: 0.8 }')).toEqual({ name: 'rmsprop', learningRate: 0.001, momentum: 0.5, rho: 0.8, centered: true });
  });
});
