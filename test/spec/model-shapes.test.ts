import { describe, expect, it } from 'vitest';
import { buildModelGraph, countParameters, inferLayerShapes, inferShapes, ModelShapeError, parameterTensorSizes, stateTensorSizes } from '../../src/spec/model-shapes.js';
import { expandPreset } from '../../src/spec/models.js';
import type { LayerDef, ModelDef } from '../../src/spec/types.js';

const conv = (filters: number, k: number, stride: number, padding: 'valid' | 'same'): LayerDef => ({
  type: 'conv2d',
  filters,
  kernelSize: [k, k],
  strides: [stride, stride],
  padding,
  activation: 'linear',
  useBias: true,
});
const pool = (size: number, stride: number, padding: 'valid' | 'same'): LayerDef => ({
  type: 'maxPooling2d',
  poolSize: [size, size],
  strides: [stride, stride],
  padding,
});
const dense = (units: number): LayerDef => ({ type: 'dense', units, activation: 'linear', useBias: true });

function shapeError(run: () => unknown): ModelShapeError {
  try {
    run();
  } catch (error) {
    if (error instanceof ModelShapeError) return error;
    throw error;
  }
  throw new Error('no ModelShapeError');
}

describe('inferShapes follows TensorFlow output sizes', () => {
  it.each([
    // [input size, window, stride, padding, output size]: same → ceil(in / s), valid → ceil((in - k + 1) / s)
    [28, 3, 1, 'same', 28],
    [28, 3, 1, 'valid', 26],
    [28, 5, 2, 'valid', 12],
    [28, 3, 2, 'same', 14],
    [7, 2, 2, 'valid', 3],
    [7, 2, 2, 'same', 4],
    [1, 3, 1, 'same', 1],
  ] as const)('conv2d on %i, kernel %i, stride %i, %s → %i', (size, k, stride, padding, out) => {
    expect(inferShapes([size, size, 3], [conv(8, k, stride, padding)])).toEqual([[out, out, 8]]);
    expect(inferShapes([size, size, 3], [pool(k, stride, padding)])).toEqual([[out, out, 3]]);
  });

  it('handles non-square kernels and strides independently', () => {
    const layer: LayerDef = { ...conv(4, 1, 1, 'valid'), kernelSize: [5, 3], strides: [1, 2] } as LayerDef;
    expect(inferShapes([28, 20, 1], [layer])).toEqual([[24, 9, 4]]);
  });

  it('flattens, and keeps the shape through dropout and activation', () => {
    expect(
      inferShapes(
        [4, 4, 2],
        [{ type: 'flatten' }, { type: 'dropout', rate: 0.5 }, dense(3), { type: 'activation', activation: 'softmax' }],
      ),
    ).toEqual([[32], [32], [3], [3]]);
  });

  it('gives the shapes of the default cnn preset', () => {
    const preset = expandPreset({ preset: 'cnn' });
    const model: ModelDef = { name: 'cnn', preset: 'cnn', ...preset };
    expect(inferLayerShapes(model)).toEqual([[28, 28, 16], [14, 14, 16], [14, 14, 32], [7, 7, 32], [1568], [64], [10], [10]]);
  });
});

describe('inferShapes rejects layers that do not fit', () => {
  it('dense after a rank-3 output says to add flatten', () => {
    const error = shapeError(() => inferShapes([28, 28, 1], [conv(8, 3, 1, 'valid'), dense(10)]));
    expect([error.layerIndex, error.message, error.hint]).toEqual([
      1,
      'layer 2 (dense) needs a vector or a sequence [length, features], but gets [26, 26, 8]',
      'add "- flatten: {}" before it',
    ]);
  });

  it('conv2d on a vector', () => {
    expect(shapeError(() => inferShapes([784], [conv(8, 3, 1, 'same')])).message).toBe(
      'layer 1 (conv2d) needs an input [height, width, channels], but gets [784]',
    );
  });

  it('a window larger than its input (output would be 0)', () => {
    expect(shapeError(() => inferShapes([3, 3, 1], [conv(8, 5, 1, 'valid')])).message).toBe(
      'layer 1 (conv2d) kernel 5×5 does not fit its input 3×3 with padding valid',
    );
    expect(shapeError(() => inferShapes([1, 1, 1], [pool(2, 2, 'valid')])).layerIndex).toBe(0);
  });

  it('an output that is absurdly large', () => {
    expect(shapeError(() => inferShapes([65536, 65536, 1], [conv(4096, 1, 1, 'same')])).message).toMatch(
      /^layer 1 \(conv2d\) outputs \[65536, 65536, 4096\] = \d+ values per sample; the limit is 268435456$/,
    );
  });
});

describe('inferLayerShapes checks the output against classes', () => {
  const model = (classes: number, layers: LayerDef[]): ModelDef => ({ name: 'm', preset: null, input: [8], classes, layers });

  it('accepts a vector of classes values', () => {
    expect(inferLayerShapes(model(3, [dense(3)]))).toEqual([[3]]);
  });

  it('rejects a mismatch', () => {
    const error = shapeError(() => inferLayerShapes(model(10, [dense(5)])));
    expect([error.layerIndex, error.message]).toEqual([undefined, 'the model has 10 classes, but its last layer outputs 5 values']);
  });

  it('rejects an output that is not a vector', () => {
    const error = shapeError(() => inferLayerShapes({ ...model(10, [conv(10, 1, 1, 'same')]), input: [2, 2, 1] }));
    expect(error.message).toBe('the model must end in a vector of 10 class scores, but its last layer outputs [2, 2, 10]');
  });
});

describe('layer graphs (id and inputs) and the new layer families', () => {
  const ln: LayerDef = { type: 'layerNormalization', epsilon: 1e-3 };

  it('resolves inputs by id, and infers merge, sequence and attention shapes', () => {
    const layers: LayerDef[] = [
      { type: 'embedding', id: 'tokens', vocab: 100, units: 16 },
      { type: 'conv1d', id: 'local', filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', useBias: true },
      { type: 'multiHeadAttention', id: 'cross', heads: 2, keySize: 4, valueSize: 4, dropout: 0, causal: false, useBias: true, inputs: ['tokens', 'local'] },
      { ...ln, id: 'norm', inputs: ['tokens'] },
      { type: 'concatenate', inputs: ['cross', 'norm'] },
      { type: 'globalAveragePooling1d' },
      dense(3),
    ];
    const graph = buildModelGraph([10], layers);
    expect(graph.sources).toEqual([[-1], [0], [0, 1], [0], [2, 3], [4], [5]]);
    expect(graph.shapes).toEqual([[10, 16], [5, 8], [10, 16], [10, 16], [10, 32], [32], [3]]);
  });

  it('pools images globally and averages with TensorFlow\'s output sizes', () => {
    const avg: LayerDef = { type: 'averagePooling2d', poolSize: [3, 3], strides: [2, 2], padding: 'same' };
    expect(inferShapes([7, 7, 4], [avg, { type: 'globalAveragePooling2d' }])).toEqual([[4, 4, 4], [4]]);
  });

  it('applies dense to the last axis of a sequence', () => {
    expect(inferShapes([6, 8], [dense(5)])).toEqual([[6, 5]]);
  });

  it.each([
    ['an add of different shapes', [{ ...dense(8), id: 'a' }, { ...dense(4), id: 'b', inputs: ['input'] }, { type: 'add', inputs: ['a', 'b'] }] as LayerDef[], 2, 'needs inputs of one shape, but gets [6, 8] from "a" and [6, 4] from "b"'],
    ['a concatenation whose other axes differ', [{ ...dense(8), id: 'a' }, { type: 'flatten', id: 'f', inputs: ['input'] }, { type: 'concatenate', inputs: ['a', 'f'] }] as LayerDef[], 2, 'joins along the last axis, so all other sizes must agree, but gets [6, 8] from "a" and [18] from "f"'],
    ['an add with one input', [{ type: 'add' }] as LayerDef[], 0, 'takes at least 2 inputs, but gets 1'],
    ['attention on vectors', [{ type: 'flatten' }, { type: 'multiHeadAttention', heads: 1, keySize: 2, valueSize: 2, dropout: 0, causal: false, useBias: true }] as LayerDef[], 1, 'needs sequences [length, features] as query, but gets [18]'],
    ['an unknown input', [{ ...dense(4), inputs: ['nope'] }] as LayerDef[], 0, 'takes input "nope", but no layer has that id'],
    ['a layer named like the model input', [{ ...dense(4), id: 'input' }] as LayerDef[], 0, 'has the id "input", which is the model input\'s'],
  ])('rejects %s', (_what, layers, index, detail) => {
    const error = shapeError(() => inferShapes([6, 3], layers));
    expect([error.layerIndex, error.detail]).toEqual([index, detail]);
  });

  it('points at the offending entry of inputs', () => {
    const error = shapeError(() => inferShapes([4], [{ ...dense(4), id: 'a' }, { type: 'add', inputs: ['a', 'input', 'b'] }]));
    expect(error.at).toEqual(['inputs', 2]);
  });
});

describe('presets transformer and resnet', () => {
  it('transformer: embedding, pre-norm blocks with residual adds, pooled classifier; parameters by hand', () => {
    const { input, layers } = expandPreset({ preset: 'transformer', vocab: 50, length: 12, width: 16, heads: 4, blocks: 2, classes: 3 });
    expect(input).toEqual([12]);
    expect(layers.map((l) => l.type)).toEqual([
      'embedding',
      ...Array(2).fill(['layerNormalization', 'multiHeadAttention', 'add', 'layerNormalization', 'dense', 'dense', 'add']).flat(),
      'layerNormalization', 'globalAveragePooling1d', 'dense', 'activation',
    ]);
    const model: ModelDef = { name: 't', preset: 'transformer', input, classes: 3, layers };
    const [d, f, v, c] = [16, 64, 50, 3];
    const block = 2 * d + 4 * (d * d + d) + 2 * d + (d * f + f) + (f * d + d);
    expect(countParameters(model)).toEqual({ trainable: v * d + 2 * block + 2 * d + d * c + c, nonTrainable: 0 });
    expect(inferLayerShapes(model).at(-3)).toEqual([16]);
  });

  it('transformer with dropout adds dropout after attention and feed-forward, and into attention', () => {
    const { layers } = expandPreset({ preset: 'transformer', blocks: 1, dropout: 0.1, causal: true });
    expect(layers.filter((l) => l.type === 'dropout')).toHaveLength(2);
    expect(layers.find((l) => l.type === 'multiHeadAttention')).toMatchObject({ dropout: 0.1, causal: true, keySize: 16 });
  });

  it('resnet: identity shortcuts where the shape stays, 1×1 strided projections where it changes; batch norm statistics are non-trainable', () => {
    const { input, layers } = expandPreset({ preset: 'resnet', input: [16, 16, 3], filters: [8, 16], blocks: 2 });
    const model: ModelDef = { name: 'r', preset: 'resnet', input, classes: 10, layers };
    const projections = layers.filter((l) => l.id?.endsWith('_projection'));
    expect(projections.map((l) => l.id)).toEqual(['stage2_block1_projection']);
    const adds = layers.filter((l) => l.type === 'add').map((l) => l.inputs);
    expect(adds).toEqual([
      ['stem_relu', 'stage1_block1_norm2'],
      ['stage1_block1_out', 'stage1_block2_norm2'],
      ['stage2_block1_projection_norm', 'stage2_block1_norm2'],
      ['stage2_block1_out', 'stage2_block2_norm2'],
    ]);
    const shapes = inferLayerShapes(model);
    expect(shapes[layers.findIndex((l) => l.id === 'stage2_block2_out')]).toEqual([8, 8, 16]);
    const norms = layers.filter((l) => l.type === 'batchNormalization').length;
    expect(countParameters(model).nonTrainable).toBe(stateTensorSizes(model).reduce((a, b) => a + b, 0));
    expect(stateTensorSizes(model)).toHaveLength(2 * norms);
    expect(parameterTensorSizes(model).slice(0, 3)).toEqual([3 * 3 * 3 * 8, 8, 8]); // stem conv (no bias), its gamma, beta
  });
});
