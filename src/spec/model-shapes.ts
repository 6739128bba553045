import type { LayerDef, ModelDef } from './types.js';

/**
 * A model whose layers do not fit together. A plain Error (not an MpxError) because the worker reuses the shape
 * inference; `loadSpec` turns it into an MpxError that points at the layer in the YAML.
 */
export class ModelShapeError extends Error {
  /** 0-based index of the offending layer in `ModelDef.layers`; undefined when the problem is the model's output. */
  readonly layerIndex: number | undefined;
  /** The problem without the "layer N (type)" prefix, for callers that name the layer themselves. */
  readonly detail: string;
  readonly hint: string | undefined;

  constructor(layerIndex: number | undefined, layerType: string | undefined, detail: string, hint?: string) {
    super(layerIndex === undefined ? detail : `layer ${layerIndex + 1} (${layerType ?? '?'}) ${detail}`);
    this.name = 'ModelShapeError';
    this.layerIndex = layerIndex;
    this.detail = detail;
    this.hint = hint;
  }
}

/** Values one sample may occupy in any single layer output; far beyond anything trainable, it only stops typos. */
export const MAX_VALUES_PER_SAMPLE = 1 << 28;

/** `[28, 28, 1]` */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Output shape of each layer for one sample (no batch dimension), following TensorFlow's rules:
 * `same` padding gives ceil(in / stride), `valid` gives ceil((in - size + 1) / stride).
 * Throws ModelShapeError when a layer cannot take its input (dense after a rank-3 output, conv2d on a vector, a window
 * larger than its input, …).
 */
export function inferShapes(input: readonly number[], layers: readonly LayerDef[]): number[][] {
  const shapes: number[][] = [];
  let shape = [...input];
  layers.forEach((layer, index) => {
    const fail = (detail: string, hint?: string): never => {
      throw new ModelShapeError(index, layer.type, detail, hint);
    };
    switch (layer.type) {
      case 'dense':
        if (shape.length !== 1) {
          fail(
            `needs a flat (rank-1) input, but gets ${formatShape(shape)}`,
            'add "- flatten: {}" before it',
          );
        }
        shape = [layer.units];
        break;
      case 'conv2d':
      case 'maxPooling2d': {
        const [height, width, channels] = shape;
        if (shape.length !== 3 || height === undefined || width === undefined || channels === undefined) {
          fail(
            `needs an input [height, width, channels], but gets ${formatShape(shape)}`,
            'give the model an input of three numbers, e.g. input: [28, 28, 1]',
          );
          break;
        }
        const size = layer.type === 'conv2d' ? layer.kernelSize : layer.poolSize;
        const outHeight = windowOutput(height, size[0], layer.strides[0], layer.padding);
        const outWidth = windowOutput(width, size[1], layer.strides[1], layer.padding);
        if (outHeight < 1 || outWidth < 1) {
          const what = layer.type === 'conv2d' ? 'kernel' : 'pool';
          fail(
            `${what} ${size[0]}×${size[1]} does not fit its input ${height}×${width} with padding ${layer.padding}`,
            `use padding: same, a smaller ${layer.type === 'conv2d' ? 'kernelSize' : 'poolSize'}, fewer layers or a larger input`,
          );
        }
        shape = [outHeight, outWidth, layer.type === 'conv2d' ? layer.filters : channels];
        break;
      }
      case 'flatten':
        shape = [shape.reduce((product, n) => product * n, 1)];
        break;
      case 'dropout':
      case 'activation':
        break;
    }
    const values = shape.reduce((product, n) => product * n, 1);
    if (values > MAX_VALUES_PER_SAMPLE) {
      fail(`outputs ${formatShape(shape)} = ${values} values per sample; the limit is ${MAX_VALUES_PER_SAMPLE}`);
    }
    shapes.push(shape);
  });
  return shapes;
}

function windowOutput(size: number, window: number, stride: number, padding: 'valid' | 'same'): number {
  return padding === 'same' ? Math.ceil(size / stride) : Math.ceil((size - window + 1) / stride);
}

/**
 * Output shape per layer of a resolved model (no batch dimension). Also checks that the model ends in a vector of
 * `classes` values. Throws ModelShapeError describing the problem.
 */
export function inferLayerShapes(model: ModelDef): number[][] {
  const shapes = inferShapes(model.input, model.layers);
  const output = shapes.at(-1) ?? model.input;
  if (output.length !== 1) {
    throw new ModelShapeError(
      undefined,
      undefined,
      `the model must end in a vector of ${model.classes} class scores, but its last layer outputs ${formatShape(output)}`,
      'add "- flatten: {}" and a dense layer with units equal to the number of classes',
    );
  }
  if (output[0] !== model.classes) {
    throw new ModelShapeError(
      undefined,
      undefined,
      `the model has ${model.classes} classes, but its last layer outputs ${output[0]} values`,
      `make the last layer output ${model.classes} values, or set classes: ${output[0]}`,
    );
  }
  return shapes;
}

/** Trainable values of one layer (weights and biases) given its input shape; 0 for layers without weights. */
export function layerParameterCounts(layer: LayerDef, input: readonly number[]): number[] {
  switch (layer.type) {
    case 'dense':
      return layer.useBias ? [input[0]! * layer.units, layer.units] : [input[0]! * layer.units];
    case 'conv2d': {
      const kernel = layer.kernelSize[0] * layer.kernelSize[1] * input[2]! * layer.filters;
      return layer.useBias ? [kernel, layer.filters] : [kernel];
    }
    case 'maxPooling2d':
    case 'flatten':
    case 'dropout':
    case 'activation':
      return [];
  }
}

/**
 * The model's variables by size, from its shapes alone (no tensor is made): what the engines create, so `params` of a
 * run equals the sum (tested against the worker). Throws ModelShapeError for a model whose layers do not fit.
 */
export function parameterTensorSizes(model: ModelDef): number[] {
  const shapes = inferShapes(model.input, model.layers);
  return model.layers.flatMap((layer, index) => layerParameterCounts(layer, index === 0 ? model.input : shapes[index - 1]!));
}
