/**
 * Matrix-multiply FLOPs of a model, exactly from its layer shapes (`inferLayerShapes`): 2·m·k·n per product, a
 * convolution being a product of (batch·outHeight·outWidth) × (kernelHeight·kernelWidth·inChannels) × filters.
 * A training step runs the forward products, one weight-gradient product per layer and one input-gradient product
 * per layer that has a trainable layer before it (tfjs prunes the gradient of the data itself, so the first
 * layer's input gradient is never computed and is not counted). Bias adds, activations, pooling, the loss and the
 * optimizer are not matrix products and count zero.
 */
import type { ModelDef } from '../spec/types.js';
import { inferLayerShapes } from '../spec/model-shapes.js';

export interface LayerFlops {
  index: number;
  type: 'dense' | 'conv2d';
  /** The product as m × k × n (conv2d: im2col view). */
  m: number;
  k: number;
  n: number;
  forward: number;
  weightGradient: number;
  /** 0 when nothing before this layer is trainable. */
  inputGradient: number;
}

export interface ModelFlops {
  layers: LayerFlops[];
  forward: number;
  /** forward + weight gradients + needed input gradients: what one training step computes. */
  trainingStep: number;
}

export function countFlops(model: ModelDef, batchSize: number): ModelFlops {
  const shapes = inferLayerShapes(model);
  const layers: LayerFlops[] = [];
  let input = model.input;
  let hasTrainableBefore = false;
  model.layers.forEach((layer, index) => {
    const output = shapes[index]!;
    if (layer.type === 'dense' || layer.type === 'conv2d') {
      const [m, k, n] =
        layer.type === 'dense'
          ? [batchSize, input[0]!, layer.units]
          : [batchSize * output[0]! * output[1]!, layer.kernelSize[0] * layer.kernelSize[1] * input[2]!, layer.filters];
      const product = 2 * m * k * n;
      layers.push({ index, type: layer.type, m, k, n, forward: product, weightGradient: product, inputGradient: hasTrainableBefore ? product : 0 });
      hasTrainableBefore = true;
    }
    input = output;
  });
  const forward = layers.reduce((sum, l) => sum + l.forward, 0);
  const trainingStep = layers.reduce((sum, l) => sum + l.forward + l.weightGradient + l.inputGradient, 0);
  return { layers, forward, trainingStep };
}
