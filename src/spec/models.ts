/**
 * Models of a spec: presets expanded into layer lists, hand-written `layers:` resolved with their defaults, and the
 * shapes checked layer by layer (problems point at the layer that does not fit).
 */
import { SPEC_DEFAULTS } from './defaults.js';
import { formatPath, type SpecPath, type SpecProblem } from './locator.js';
import { inferLayerShapes, inferShapes, ModelShapeError, formatShape } from './model-shapes.js';
import type { Activation, LayerDef, ModelDef, Padding } from './types.js';

// The YAML as the schema guarantees it (optional keys still missing).
type Size2d = number | [number, number];
interface RawLayerCommon {
  dtype?: 'float32';
}
export interface RawLayer {
  dense?: RawLayerCommon & { units: number; activation?: Activation; useBias?: boolean };
  conv2d?: RawLayerCommon & {
    filters: number;
    kernelSize: Size2d;
    strides?: Size2d;
    padding?: Padding;
    activation?: Activation;
    useBias?: boolean;
  };
  maxPooling2d?: RawLayerCommon & { poolSize?: Size2d; strides?: Size2d; padding?: Padding };
  flatten?: Record<string, never> | null;
  dropout?: { rate: number };
  activation?: RawLayerCommon & { name: Activation };
}
export interface RawModel {
  preset?: 'mlp' | 'cnn';
  input?: number[];
  hidden?: number[];
  filters?: number[];
  kernelSize?: number;
  dense?: number[];
  classes?: number;
  layers?: RawLayer[];
}

const pair = (size: Size2d): [number, number] => (typeof size === 'number' ? [size, size] : [size[0], size[1]]);
const withDtype = <T extends object>(layer: T, dtype: 'float32' | undefined): T =>
  dtype === undefined ? layer : { ...layer, dtype };
const SOFTMAX_FP32: LayerDef = { type: 'activation', activation: 'softmax', dtype: 'float32' };

/** The layer list a preset stands for. */
export function expandPreset(raw: RawModel & { preset: 'mlp' | 'cnn' }): { input: number[]; classes: number; layers: LayerDef[] } {
  const dense = (units: number, activation: Activation): LayerDef => ({ type: 'dense', units, activation, useBias: true });
  if (raw.preset === 'mlp') {
    const d = SPEC_DEFAULTS.mlp;
    const input = raw.input ?? [...d.input];
    const classes = raw.classes ?? d.classes;
    // An image input is flattened first, as a Keras MLP on images would (Flatten before the first Dense).
    const layers: LayerDef[] = input.length > 1 ? [{ type: 'flatten' }] : [];
    for (const units of raw.hidden ?? d.hidden) layers.push(dense(units, 'relu'));
    layers.push(dense(classes, 'linear'), SOFTMAX_FP32);
    return { input, classes, layers };
  }
  const d = SPEC_DEFAULTS.cnn;
  const input = raw.input ?? [...d.input];
  const classes = raw.classes ?? d.classes;
  const k = raw.kernelSize ?? d.kernelSize;
  const layers: LayerDef[] = [];
  for (const filters of raw.filters ?? d.filters) {
    layers.push(
      { type: 'conv2d', filters, kernelSize: [k, k], strides: [1, 1], padding: 'same', activation: 'relu', useBias: true },
      { type: 'maxPooling2d', poolSize: [2, 2], strides: [2, 2], padding: 'valid' },
    );
  }
  layers.push({ type: 'flatten' });
  for (const units of raw.dense ?? d.dense) layers.push(dense(units, 'relu'));
  layers.push(dense(classes, 'linear'), SOFTMAX_FP32);
  return { input, classes, layers };
}

function resolveLayer(raw: RawLayer): LayerDef {
  const d = SPEC_DEFAULTS.layer;
  if (raw.dense !== undefined) {
    const l = raw.dense;
    return withDtype<LayerDef>(
      { type: 'dense', units: l.units, activation: l.activation ?? d.activation, useBias: l.useBias ?? d.useBias },
      l.dtype,
    );
  }
  if (raw.conv2d !== undefined) {
    const l = raw.conv2d;
    return withDtype<LayerDef>(
      {
        type: 'conv2d',
        filters: l.filters,
        kernelSize: pair(l.kernelSize),
        strides: pair(l.strides ?? d.strides),
        padding: l.padding ?? d.padding,
        activation: l.activation ?? d.activation,
        useBias: l.useBias ?? d.useBias,
      },
      l.dtype,
    );
  }
  if (raw.maxPooling2d !== undefined) {
    const l = raw.maxPooling2d;
    const poolSize = pair(l.poolSize ?? d.poolSize);
    return withDtype<LayerDef>(
      { type: 'maxPooling2d', poolSize, strides: l.strides === undefined ? poolSize : pair(l.strides), padding: l.padding ?? d.padding },
      l.dtype,
    );
  }
  if (raw.dropout !== undefined) return { type: 'dropout', rate: raw.dropout.rate };
  if (raw.activation !== undefined) {
    return withDtype<LayerDef>({ type: 'activation', activation: raw.activation.name }, raw.activation.dtype);
  }
  return { type: 'flatten' };
}

export function resolveModel(name: string, raw: RawModel, problems: SpecProblem[]): ModelDef | undefined {
  const modelPath = ['models', name];
  const where = formatPath(modelPath);
  if (raw.preset !== undefined) {
    const expanded = expandPreset({ ...raw, preset: raw.preset });
    const model: ModelDef = { name, preset: raw.preset, ...expanded };
    try {
      inferLayerShapes(model);
    } catch (error) {
      if (!(error instanceof ModelShapeError)) throw error;
      const path = raw.input !== undefined ? [...modelPath, 'input'] : modelPath;
      problems.push(
        problem(path, `${where} (preset ${raw.preset}): ${error.message}`, {
          hint: raw.preset === 'cnn' ? 'each conv2d block halves height and width: use a larger input or fewer filters entries' : error.hint,
        }),
      );
      return undefined;
    }
    return model;
  }

  const input = raw.input ?? [];
  const rawLayers = raw.layers ?? [];
  const layers = rawLayers.map(resolveLayer);
  const layerPath = (index: number) => [...modelPath, 'layers', index];
  let output: number[];
  try {
    output = inferShapes(input, layers).at(-1) ?? input;
  } catch (error) {
    if (!(error instanceof ModelShapeError) || error.layerIndex === undefined) throw error;
    const path = layerPath(error.layerIndex);
    const layer = layers[error.layerIndex];
    problems.push(problem(path, `${formatPath(path)}: ${layer?.type ?? 'layer'} ${error.detail}`, { hint: error.hint }));
    return undefined;
  }
  const lastPath = layerPath(Math.max(0, rawLayers.length - 1));
  const classes = raw.classes ?? (output.length === 1 ? output[0] : undefined);
  if (classes === undefined) {
    problems.push(
      problem(lastPath, `${where} must end in a vector of class scores, but its last layer outputs ${formatShape(output)}`, {
        hint: 'add "- flatten: {}" and a dense layer with one unit per class',
      }),
    );
    return undefined;
  }
  if (raw.classes === undefined && classes < 2) {
    problems.push(
      problem(lastPath, `${where} must output at least 2 class scores, but its last layer outputs ${classes}`, {
        hint: 'a classifier needs two or more classes; give the last dense layer more units',
      }),
    );
    return undefined;
  }
  const model: ModelDef = { name, preset: null, input, classes, layers };
  try {
    inferLayerShapes(model);
  } catch (error) {
    if (!(error instanceof ModelShapeError)) throw error;
    problems.push(problem([...modelPath, 'classes'], `${where}: ${error.detail}`, { hint: error.hint }));
    return undefined;
  }
  return model;
}

function problem(path: SpecPath, message: string, options: { hint?: string } = {}): SpecProblem {
  return { path, message, ...options };
}
