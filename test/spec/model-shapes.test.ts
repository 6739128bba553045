import { describe, expect, it } from 'vitest';
import { inferLayerShapes, inferShapes, ModelShapeError } from '../../src/spec/model-shapes.js';
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
