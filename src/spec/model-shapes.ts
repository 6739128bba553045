import { didYouMean } from '../util/did-you-mean.js';
import { MODEL_INPUT, type LayerDef, type ModelDef } from './types.js';

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
  /** Where inside the layer's settings the problem is, e.g. `['inputs', 1]`; empty for the layer as a whole. */
  readonly at: ReadonlyArray<string | number>;

  constructor(layerIndex: number | undefined, layerType: string | undefined, detail: string, hint?: string, at: ReadonlyArray<string | number> = []) {
    super(layerIndex === undefined ? detail : `layer ${layerIndex + 1} (${layerType ?? '?'}) ${detail}`);
    this.name = 'ModelShapeError';
    this.layerIndex = layerIndex;
    this.detail = detail;
    this.hint = hint;
    this.at = at;
  }
}

/** Values one sample may occupy in any single layer output; far beyond anything trainable, it only stops typos. */
export const MAX_VALUES_PER_SAMPLE = 1 << 28;

/** `[28, 28, 1]` */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** The model input's index in `ModelGraph.sources`. */
export const INPUT_SOURCE = -1;

/** A model's layers as a graph (Keras's functional API), in the order the spec writes them. */
export interface ModelGraph {
  /** Per layer, the sources of its inputs in order: INPUT_SOURCE (-1) for the model input, else an earlier layer's index. */
  sources: number[][];
  /** Output shape of each layer for one sample (no batch dimension). */
  shapes: number[][];
}

/** How many inputs a layer type takes: [least, most]. */
function arity(layer: LayerDef): [number, number] {
  switch (layer.type) {
    case 'add':
    case 'concatenate':
      return [2, 64];
    case 'multiHeadAttention':
      return [1, 3];
    default:
      return [1, 1];
  }
}

/**
 * Resolves each layer's inputs (by id, else the layer before) and infers every output shape, following TensorFlow's
 * rules: `same` padding gives ceil(in / stride), `valid` gives ceil((in - size + 1) / stride). Throws ModelShapeError
 * for unknown or duplicate ids, a reference to a later layer (a cycle, or just out of order), a layer whose output
 * reaches no model output, a wrong number of inputs, or a layer that cannot take its input's shape.
 */
export function buildModelGraph(input: readonly number[], layers: readonly LayerDef[]): ModelGraph {
  const indexByName = new Map<string, number>();
  layers.forEach((layer, index) => {
    if (layer.id === undefined) return;
    const fail = (detail: string, hint: string) => {
      throw new ModelShapeError(index, layer.type, detail, hint, ['id']);
    };
    if (layer.id === MODEL_INPUT) fail(`has the id "${MODEL_INPUT}", which is the model input's`, 'choose another id');
    const earlier = indexByName.get(layer.id);
    if (earlier !== undefined) fail(`repeats the id of layer ${earlier + 1}`, 'ids of layers must be unique');
    indexByName.set(layer.id, index);
  });
  const names = [MODEL_INPUT, ...indexByName.keys()];

  const sources = layers.map((layer, index): number[] => {
    if (layer.inputs === undefined) return [index - 1];
    return layer.inputs.map((name, position) => {
      if (name === MODEL_INPUT) return INPUT_SOURCE;
      const source = indexByName.get(name);
      const fail = (detail: string, hint?: string): never => {
        throw new ModelShapeError(index, layer.type, detail, hint, ['inputs', position]);
      };
      if (source === undefined) {
        return fail(`takes input ${JSON.stringify(name)}, but no layer has that id`, didYouMean(name, names) ?? `use one of: ${names.join(', ')}`);
      }
      if (source === index) return fail('takes its own output as input (a cycle)', 'a layer can only take the outputs of layers before it');
      if (source > index) {
        const cycle = findCycle(layers, indexByName, index, source);
        return fail(
          cycle === undefined ?
            `takes input ${JSON.stringify(name)}, which is defined after it (layer ${source + 1})`
          : `takes input ${JSON.stringify(name)}, which depends on this layer's own output: a cycle (${cycle.join(' → ')})`,
          cycle === undefined ? 'list layers in the order data flows through them: move it before this one' : 'a model is a graph without cycles: break the loop',
        );
      }
      return source;
    });
  });

  const shapes: number[][] = [];
  layers.forEach((layer, index) => {
    const [least, most] = arity(layer);
    const count = sources[index]!.length;
    if (count < least || count > most) {
      const wanted = least === most ? `${least} input` : most >= 64 ? `at least ${least} inputs` : `${least} to ${most} inputs`;
      throw new ModelShapeError(index, layer.type, `takes ${wanted}, but gets ${count}`, least > 1 ? `list them: inputs: [a, b]` : undefined, layer.inputs === undefined ? [] : ['inputs']);
    }
    const inputShapes = sources[index]!.map((source) => (source === INPUT_SOURCE ? [...input] : shapes[source]!));
    shapes.push(outputShape(layer, index, inputShapes, layer.inputs === undefined ? undefined : layer.inputs));
  });

  // Every layer but the last must feed another: a dead branch is a mistake in the spec, not a model Keras would train.
  const used = new Set(sources.flat());
  layers.forEach((layer, index) => {
    if (index < layers.length - 1 && !used.has(index)) {
      throw new ModelShapeError(
        index,
        layer.type,
        'is not used: no layer takes its output, and only the last layer is the model output',
        layer.id === undefined ? 'give it an id (id: x) and list it in a later layer\'s inputs, or remove it' : `list ${JSON.stringify(layer.id)} in a later layer's inputs, or remove it`,
      );
    }
  });
  return { sources, shapes };
}

/** The path from `from` (which takes `target` as input) back to itself through inputs, if there is one. */
function findCycle(layers: readonly LayerDef[], indexByName: ReadonlyMap<string, number>, from: number, target: number): string[] | undefined {
  const label = (index: number) => layers[index]!.id ?? `layer ${index + 1}`;
  const inputsOf = (index: number): number[] => {
    const named = layers[index]!.inputs;
    if (named === undefined) return index > 0 ? [index - 1] : [];
    return named.map((name) => indexByName.get(name)).filter((source): source is number => source !== undefined);
  };
  const seen = new Set<number>();
  const walk = (index: number, path: number[]): number[] | undefined => {
    if (index === from) return path;
    if (seen.has(index)) return undefined;
    seen.add(index);
    for (const next of inputsOf(index)) {
      const found = walk(next, [...path, next]);
      if (found) return found;
    }
    return undefined;
  };
  const path = walk(target, [from, target]);
  return path?.map(label);
}

function outputShape(layer: LayerDef, index: number, inputs: number[][], inputNames: string[] | undefined): number[] {
  const fail = (detail: string, hint?: string): never => {
    throw new ModelShapeError(index, layer.type, detail, hint);
  };
  const [shape = []] = inputs;
  const needRank = (ranks: number[], what: string, hint: string) => {
    if (!ranks.includes(shape.length)) fail(`needs ${what}, but gets ${formatShape(shape)}`, hint);
  };
  let out: number[];
  switch (layer.type) {
    case 'dense':
      // Keras's Dense acts on the last axis; on an image that is rarely meant, so it asks for flatten.
      if (shape.length > 2) fail(`needs a vector or a sequence [length, features], but gets ${formatShape(shape)}`, 'add "- flatten: {}" before it');
      out = [...shape.slice(0, -1), layer.units];
      break;
    case 'conv2d':
    case 'maxPooling2d':
    case 'averagePooling2d': {
      needRank([3], 'an input [height, width, channels]', 'give the model an input of three numbers, e.g. input: [28, 28, 1]');
      const [height, width, channels] = shape as [number, number, number];
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
      out = [outHeight, outWidth, layer.type === 'conv2d' ? layer.filters : channels];
      break;
    }
    case 'conv1d': {
      needRank([2], 'a sequence [length, channels]', 'conv1d runs along a sequence; an embedding or a [length, channels] input gives one');
      const [length] = shape as [number, number];
      const outLength = windowOutput(length, layer.kernelSize, layer.strides, layer.padding);
      if (outLength < 1) fail(`kernel ${layer.kernelSize} does not fit its input of length ${length} with padding ${layer.padding}`, 'use padding: same or a smaller kernelSize');
      out = [outLength, layer.filters];
      break;
    }
    case 'globalAveragePooling1d':
      needRank([2], 'a sequence [length, channels]', 'use globalAveragePooling2d on images');
      out = [shape[1]!];
      break;
    case 'globalAveragePooling2d':
      needRank([3], 'an input [height, width, channels]', 'use globalAveragePooling1d on sequences');
      out = [shape[2]!];
      break;
    case 'flatten':
      out = [shape.reduce((product, n) => product * n, 1)];
      break;
    case 'embedding':
      needRank([1], 'token ids [length]', 'an embedding reads the model input of data kind: tokens');
      out = [shape[0]!, layer.units];
      break;
    case 'dropout':
    case 'activation':
    case 'layerNormalization':
    case 'batchNormalization':
      out = [...shape];
      break;
    case 'add': {
      const mismatch = inputs.findIndex((s) => s.length !== shape.length || s.some((n, i) => n !== shape[i]));
      if (mismatch >= 0) {
        fail(
          `needs inputs of one shape, but gets ${formatShape(shape)} from ${showSource(inputNames, 0)} and ${formatShape(inputs[mismatch]!)} from ${showSource(inputNames, mismatch)}`,
          'add a dense (or 1×1 conv2d) projection on one branch so both have the same shape',
        );
      }
      out = [...shape];
      break;
    }
    case 'concatenate': {
      const mismatch = inputs.findIndex((s) => s.length !== shape.length || s.slice(0, -1).some((n, i) => n !== shape[i]));
      if (mismatch >= 0) {
        fail(
          `joins along the last axis, so all other sizes must agree, but gets ${formatShape(shape)} from ${showSource(inputNames, 0)} and ${formatShape(inputs[mismatch]!)} from ${showSource(inputNames, mismatch)}`,
          'only the last size (features or channels) may differ between the inputs',
        );
      }
      out = [...shape.slice(0, -1), inputs.reduce((sum, s) => sum + s.at(-1)!, 0)];
      break;
    }
    case 'multiHeadAttention': {
      const [query, value = query, key = value] = inputs as [number[], number[]?, number[]?];
      const roles = ['query', 'value', 'key'];
      [query, value, key].forEach((s, i) => {
        if (s.length !== 2) fail(`needs sequences [length, features] as ${roles[i]}, but gets ${formatShape(s)}`, 'attention runs over a sequence: an embedding gives one');
      });
      if (value[0] !== key[0]) fail(`needs value and key of one length, but gets ${formatShape(value)} and ${formatShape(key)}`);
      const scores = layer.heads * query[0]! * value[0]!;
      if (scores > MAX_VALUES_PER_SAMPLE) fail(`would hold ${layer.heads}×${query[0]}×${value[0]} = ${scores} attention scores per sample; the limit is ${MAX_VALUES_PER_SAMPLE}`);
      out = [...query];
      break;
    }
  }
  const values = out.reduce((product, n) => product * n, 1);
  if (values > MAX_VALUES_PER_SAMPLE) fail(`outputs ${formatShape(out)} = ${values} values per sample; the limit is ${MAX_VALUES_PER_SAMPLE}`);
  return out;
}

function showSource(names: string[] | undefined, position: number): string {
  return names?.[position] === undefined ? 'the layer before' : JSON.stringify(names[position]);
}

function windowOutput(size: number, window: number, stride: number, padding: 'valid' | 'same'): number {
  return padding === 'same' ? Math.ceil(size / stride) : Math.ceil((size - window + 1) / stride);
}

/** Output shape of each layer for one sample, in layer order (see buildModelGraph). */
export function inferShapes(input: readonly number[], layers: readonly LayerDef[]): number[][] {
  return buildModelGraph(input, layers).shapes;
}

/**
 * The graph of a resolved model (no batch dimension), checking also that the model ends in a vector of `classes`
 * values. Throws ModelShapeError describing the problem.
 */
export function inferModelGraph(model: ModelDef): ModelGraph {
  const graph = buildModelGraph(model.input, model.layers);
  const output = graph.shapes.at(-1) ?? model.input;
  if (output.length !== 1) {
    throw new ModelShapeError(
      undefined,
      undefined,
      `the model must end in a vector of ${model.classes} class scores, but its last layer outputs ${formatShape(output)}`,
      output.length === 2 ? 'pool the sequence first: "- globalAveragePooling1d: {}" (or flatten), then a dense layer' : 'add "- flatten: {}" and a dense layer with units equal to the number of classes',
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
  return graph;
}

/** Output shape per layer of a resolved model (see inferModelGraph). */
export function inferLayerShapes(model: ModelDef): number[][] {
  return inferModelGraph(model).shapes;
}

/**
 * The trainable variables of one layer by size, in the order the engines create them (Keras's weight order), given
 * its input shapes; empty for layers without weights.
 */
export function layerParameterCounts(layer: LayerDef, inputs: ReadonlyArray<readonly number[]>): number[] {
  const input = inputs[0] ?? [];
  const withBias = (kernel: number, bias: number, useBias: boolean) => (useBias ? [kernel, bias] : [kernel]);
  switch (layer.type) {
    case 'dense':
      return withBias(input.at(-1)! * layer.units, layer.units, layer.useBias);
    case 'conv2d':
      return withBias(layer.kernelSize[0] * layer.kernelSize[1] * input[2]! * layer.filters, layer.filters, layer.useBias);
    case 'conv1d':
      return withBias(layer.kernelSize * input[1]! * layer.filters, layer.filters, layer.useBias);
    case 'embedding':
      return [layer.vocab * layer.units];
    case 'layerNormalization':
    case 'batchNormalization':
      // gamma, beta
      return [input.at(-1)!, input.at(-1)!];
    case 'multiHeadAttention': {
      const [query, value = query, key = value] = inputs as [number[], number[]?, number[]?];
      const { heads, keySize, valueSize, useBias } = layer;
      const queryWidth = query.at(-1)!;
      return [
        ...withBias(queryWidth * heads * keySize, heads * keySize, useBias),
        ...withBias(key.at(-1)! * heads * keySize, heads * keySize, useBias),
        ...withBias(value.at(-1)! * heads * valueSize, heads * valueSize, useBias),
        ...withBias(heads * valueSize * queryWidth, queryWidth, useBias),
      ];
    }
    case 'maxPooling2d':
    case 'averagePooling2d':
    case 'globalAveragePooling1d':
    case 'globalAveragePooling2d':
    case 'flatten':
    case 'dropout':
    case 'activation':
    case 'add':
    case 'concatenate':
      return [];
  }
}

/** Non-trainable variables of one layer by size: batch normalisation's moving mean and variance (fp32). */
export function layerStateCounts(layer: LayerDef, inputs: ReadonlyArray<readonly number[]>): number[] {
  return layer.type === 'batchNormalization' ? [inputs[0]!.at(-1)!, inputs[0]!.at(-1)!] : [];
}

/** Each layer's input shapes in a graph. */
function layerInputShapes(model: ModelDef, graph: ModelGraph): number[][][] {
  return graph.sources.map((list) => list.map((source) => (source === INPUT_SOURCE ? model.input : graph.shapes[source]!)));
}

/**
 * The model's trainable variables by size, from its shapes alone (no tensor is made): what the engines create, so
 * `params` of a run equals the sum (tested against both engines). Throws ModelShapeError for layers that do not fit.
 */
export function parameterTensorSizes(model: ModelDef): number[] {
  const graph = buildModelGraph(model.input, model.layers);
  const inputs = layerInputShapes(model, graph);
  return model.layers.flatMap((layer, index) => layerParameterCounts(layer, inputs[index]!));
}

/** The model's non-trainable variables by size (batch normalisation's moving statistics), fp32 like the weights. */
export function stateTensorSizes(model: ModelDef): number[] {
  const graph = buildModelGraph(model.input, model.layers);
  const inputs = layerInputShapes(model, graph);
  return model.layers.flatMap((layer, index) => layerStateCounts(layer, inputs[index]!));
}

/** Parameter counts as Keras's `model.summary()` gives them: trainable and non-trainable values. */
export function countParameters(model: ModelDef): { trainable: number; nonTrainable: number } {
  const sum = (sizes: number[]) => sizes.reduce((total, n) => total + n, 0);
  return { trainable: sum(parameterTensorSizes(model)), nonTrainable: sum(stateTensorSizes(model)) };
}
