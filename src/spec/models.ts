/**
 * Models of a spec: presets expanded into layer lists, hand-written `layers:` resolved with their defaults, and the
 * shapes checked layer by layer (problems point at the layer that does not fit).
 */
import { SPEC_DEFAULTS } from './defaults.js';
import { formatPath, type SpecPath, type SpecProblem } from './locator.js';
import { inferLayerShapes, inferShapes, ModelShapeError, formatShape } from './model-shapes.js';
import type { Activation, LayerDef, ModelDef, Padding, PresetName } from './types.js';

// The YAML as the schema guarantees it (optional keys still missing).
type Size2d = number | [number, number];
interface RawLayerCommon {
  dtype?: 'float32';
  id?: string;
  inputs?: string[];
}
type RawWindow = RawLayerCommon & { poolSize?: Size2d; strides?: Size2d; padding?: Padding };
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
  conv1d?: RawLayerCommon & { filters: number; kernelSize: number; strides?: number; padding?: Padding; activation?: Activation; useBias?: boolean };
  maxPooling2d?: RawWindow;
  averagePooling2d?: RawWindow;
  globalAveragePooling1d?: RawLayerCommon | null;
  globalAveragePooling2d?: RawLayerCommon | null;
  flatten?: RawLayerCommon | null;
  dropout?: RawLayerCommon & { rate: number };
  activation?: RawLayerCommon & { name: Activation };
  embedding?: RawLayerCommon & { vocab: number; units: number };
  layerNormalization?: RawLayerCommon & { epsilon?: number };
  batchNormalization?: RawLayerCommon & { momentum?: number; epsilon?: number };
  add?: RawLayerCommon | null;
  concatenate?: RawLayerCommon | null;
  multiHeadAttention?: RawLayerCommon & { heads: number; keySize: number; valueSize?: number; dropout?: number; causal?: boolean; useBias?: boolean };
}
export interface RawModel {
  preset?: PresetName;
  input?: number[];
  hidden?: number[];
  filters?: number[];
  kernelSize?: number;
  dense?: number[];
  classes?: number;
  layers?: RawLayer[];
  // transformer (and `blocks` for resnet)
  vocab?: number;
  length?: number;
  width?: number;
  heads?: number;
  blocks?: number;
  ffn?: number;
  dropout?: number;
  causal?: boolean;
}

/** What token data implies for a transformer preset that does not say: its vocabulary and sequence length. */
export interface TokenDefaults {
  vocab: number;
  length?: number;
}

const pair = (size: Size2d): [number, number] => (typeof size === 'number' ? [size, size] : [size[0], size[1]]);
/** Adds the keys every layer may carry, only those the spec gives (a sequential spec keeps its run ids). */
function withCommon<T extends object>(layer: T, raw: RawLayerCommon | null | undefined): T {
  const out = { ...layer } as Record<string, unknown>;
  if (raw?.dtype !== undefined) out.dtype = raw.dtype;
  if (raw?.id !== undefined) out.id = raw.id;
  if (raw?.inputs !== undefined) out.inputs = [...raw.inputs];
  return out as T;
}
const SOFTMAX_FP32: LayerDef = { type: 'activation', activation: 'softmax', dtype: 'float32' };

type PresetModel = RawModel & { preset: PresetName };

/** The layer list a preset stands for. */
export function expandPreset(raw: PresetModel, tokens?: TokenDefaults): { input: number[]; classes: number; layers: LayerDef[] } {
  const dense = (units: number, activation: Activation): LayerDef => ({ type: 'dense', units, activation, useBias: true });
  if (raw.preset === 'transformer') return expandTransformer(raw, tokens);
  if (raw.preset === 'resnet') return expandResnet(raw);
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

/**
 * An encoder-only transformer classifier, as keras_hub builds one: token embedding, `blocks` pre-norm encoder blocks
 * (layer norm → multi-head self-attention → residual add; layer norm → dense(ffn, gelu) → dense(width) → residual add;
 * dropout after the attention and the feed-forward output when `dropout` > 0), a final layer norm, average pooling
 * over the sequence, dense(classes) and a float32 softmax. No position embedding: the synthetic token task does not
 * depend on order (a documented limit).
 */
function expandTransformer(raw: PresetModel, tokens?: TokenDefaults): { input: number[]; classes: number; layers: LayerDef[] } {
  const d = SPEC_DEFAULTS.transformer;
  const vocab = raw.vocab ?? tokens?.vocab ?? d.vocab;
  const length = raw.length ?? tokens?.length ?? d.length;
  const width = raw.width ?? d.width;
  const heads = raw.heads ?? d.heads;
  const ffn = raw.ffn ?? d.ffnPerWidth * width;
  const dropout = raw.dropout ?? d.dropout;
  const causal = raw.causal ?? d.causal;
  const classes = raw.classes ?? d.classes;
  const layers: LayerDef[] = [{ type: 'embedding', id: 'embedding', vocab, units: width }];
  let residual = 'embedding';
  for (let b = 1; b <= (raw.blocks ?? d.blocks); b++) {
    const at = (part: string) => `block${b}_${part}`;
    layers.push(
      { type: 'layerNormalization', id: at('norm1'), epsilon: SPEC_DEFAULTS.layerNormalization.epsilon, inputs: [residual] },
      { type: 'multiHeadAttention', id: at('attention'), heads, keySize: Math.max(1, Math.floor(width / heads)), valueSize: Math.max(1, Math.floor(width / heads)), dropout, causal, useBias: true },
    );
    if (dropout > 0) layers.push({ type: 'dropout', id: at('attention_dropout'), rate: dropout });
    layers.push(
      { type: 'add', id: at('residual1'), inputs: [residual, dropout > 0 ? at('attention_dropout') : at('attention')] },
      { type: 'layerNormalization', id: at('norm2'), epsilon: SPEC_DEFAULTS.layerNormalization.epsilon },
      { type: 'dense', id: at('ffn1'), units: ffn, activation: 'gelu', useBias: true },
      { type: 'dense', id: at('ffn2'), units: width, activation: 'linear', useBias: true },
    );
    if (dropout > 0) layers.push({ type: 'dropout', id: at('ffn_dropout'), rate: dropout });
    layers.push({ type: 'add', id: at('residual2'), inputs: [at('residual1'), dropout > 0 ? at('ffn_dropout') : at('ffn2')] });
    residual = at('residual2');
  }
  layers.push(
    { type: 'layerNormalization', id: 'final_norm', epsilon: SPEC_DEFAULTS.layerNormalization.epsilon },
    { type: 'globalAveragePooling1d', id: 'pool' },
    { type: 'dense', id: 'logits', units: classes, activation: 'linear', useBias: true },
    { ...SOFTMAX_FP32, id: 'probabilities' },
  );
  return { input: [length], classes, layers };
}

/**
 * A ResNet v1 of basic blocks (He et al. 2015, the CIFAR form): a 3×3 stem convolution with batch norm and relu, then
 * per stage (`filters` entry) `blocks` basic blocks — conv3×3 → BN → relu → conv3×3 → BN, added to the block's input
 * (identity shortcut, or a 1×1 strided projection conv + BN where the shape changes) and then relu; every stage after
 * the first halves height and width. Global average pooling, dense(classes), float32 softmax. Convolutions before a
 * batch norm have no bias, as in Keras's applications.
 */
function expandResnet(raw: PresetModel): { input: number[]; classes: number; layers: LayerDef[] } {
  const d = SPEC_DEFAULTS.resnet;
  const input = raw.input ?? [...d.input];
  const classes = raw.classes ?? d.classes;
  const filters = raw.filters ?? [...d.filters];
  const blocks = raw.blocks ?? d.blocks;
  const conv = (id: string, units: number, size: number, stride: number, inputs?: string[]): LayerDef => ({
    type: 'conv2d',
    id,
    filters: units,
    kernelSize: [size, size],
    strides: [stride, stride],
    padding: 'same',
    activation: 'linear',
    useBias: false,
    ...(inputs === undefined ? {} : { inputs }),
  });
  const norm = (id: string): LayerDef => ({ type: 'batchNormalization', id, ...SPEC_DEFAULTS.batchNormalization });
  const relu = (id: string): LayerDef => ({ type: 'activation', id, activation: 'relu' });
  const layers: LayerDef[] = [conv('stem_conv', filters[0] ?? 16, 3, 1), norm('stem_norm'), relu('stem_relu')];
  let current = 'stem_relu';
  let channels = filters[0] ?? 16;
  filters.forEach((units, stage) => {
    for (let b = 1; b <= blocks; b++) {
      const at = (part: string) => `stage${stage + 1}_block${b}_${part}`;
      const stride = stage > 0 && b === 1 ? 2 : 1;
      layers.push(conv(at('conv1'), units, 3, stride), norm(at('norm1')), relu(at('relu1')), conv(at('conv2'), units, 3, 1), norm(at('norm2')));
      let shortcut = current;
      if (stride !== 1 || channels !== units) {
        layers.push(conv(at('projection'), units, 1, stride, [current]), norm(at('projection_norm')));
        shortcut = at('projection_norm');
      }
      layers.push({ type: 'add', id: at('add'), inputs: [shortcut, at('norm2')] }, relu(at('out')));
      current = at('out');
      channels = units;
    }
  });
  layers.push(
    { type: 'globalAveragePooling2d', id: 'pool' },
    { type: 'dense', id: 'logits', units: classes, activation: 'linear', useBias: true },
    { ...SOFTMAX_FP32, id: 'probabilities' },
  );
  return { input, classes, layers };
}

function resolveLayer(raw: RawLayer): LayerDef {
  const d = SPEC_DEFAULTS.layer;
  if (raw.dense !== undefined) {
    const l = raw.dense;
    return withCommon<LayerDef>({ type: 'dense', units: l.units, activation: l.activation ?? d.activation, useBias: l.useBias ?? d.useBias }, l);
  }
  if (raw.conv2d !== undefined) {
    const l = raw.conv2d;
    return withCommon<LayerDef>(
      {
        type: 'conv2d',
        filters: l.filters,
        kernelSize: pair(l.kernelSize),
        strides: pair(l.strides ?? d.strides),
        padding: l.padding ?? d.padding,
        activation: l.activation ?? d.activation,
        useBias: l.useBias ?? d.useBias,
      },
      l,
    );
  }
  if (raw.conv1d !== undefined) {
    const l = raw.conv1d;
    return withCommon<LayerDef>(
      {
        type: 'conv1d',
        filters: l.filters,
        kernelSize: l.kernelSize,
        strides: l.strides ?? d.strides,
        padding: l.padding ?? d.padding,
        activation: l.activation ?? d.activation,
        useBias: l.useBias ?? d.useBias,
      },
      l,
    );
  }
  for (const type of ['maxPooling2d', 'averagePooling2d'] as const) {
    const l = raw[type];
    if (l === undefined) continue;
    const poolSize = pair(l.poolSize ?? d.poolSize);
    return withCommon<LayerDef>({ type, poolSize, strides: l.strides === undefined ? poolSize : pair(l.strides), padding: l.padding ?? d.padding }, l);
  }
  if (raw.dropout !== undefined) return withCommon<LayerDef>({ type: 'dropout', rate: raw.dropout.rate }, raw.dropout);
  if (raw.activation !== undefined) return withCommon<LayerDef>({ type: 'activation', activation: raw.activation.name }, raw.activation);
  if (raw.embedding !== undefined) return withCommon<LayerDef>({ type: 'embedding', vocab: raw.embedding.vocab, units: raw.embedding.units }, raw.embedding);
  if (raw.layerNormalization !== undefined) {
    const l = raw.layerNormalization;
    return withCommon<LayerDef>({ type: 'layerNormalization', epsilon: l.epsilon ?? SPEC_DEFAULTS.layerNormalization.epsilon }, l);
  }
  if (raw.batchNormalization !== undefined) {
    const l = raw.batchNormalization;
    const b = SPEC_DEFAULTS.batchNormalization;
    return withCommon<LayerDef>({ type: 'batchNormalization', momentum: l.momentum ?? b.momentum, epsilon: l.epsilon ?? b.epsilon }, l);
  }
  if (raw.multiHeadAttention !== undefined) {
    const l = raw.multiHeadAttention;
    const m = SPEC_DEFAULTS.multiHeadAttention;
    return withCommon<LayerDef>(
      {
        type: 'multiHeadAttention',
        heads: l.heads,
        keySize: l.keySize,
        valueSize: l.valueSize ?? l.keySize,
        dropout: l.dropout ?? m.dropout,
        causal: l.causal ?? m.causal,
        useBias: l.useBias ?? m.useBias,
      },
      l,
    );
  }
  for (const type of ['globalAveragePooling1d', 'globalAveragePooling2d', 'add', 'concatenate'] as const) {
    if (type in raw) return withCommon<LayerDef>({ type }, raw[type]);
  }
  return withCommon<LayerDef>({ type: 'flatten' }, raw.flatten);
}

export function resolveModel(name: string, raw: RawModel, problems: SpecProblem[], tokens?: TokenDefaults): ModelDef | undefined {
  const modelPath = ['models', name];
  const where = formatPath(modelPath);
  if (raw.preset !== undefined) {
    const expanded = expandPreset({ ...raw, preset: raw.preset }, tokens);
    const model: ModelDef = { name, preset: raw.preset, ...expanded };
    try {
      inferLayerShapes(model);
    } catch (error) {
      if (!(error instanceof ModelShapeError)) throw error;
      const path = raw.input !== undefined ? [...modelPath, 'input'] : modelPath;
      problems.push(
        problem(path, `${where} (preset ${raw.preset}): ${error.message}`, {
          hint:
            raw.preset === 'cnn' ? 'each conv2d block halves height and width: use a larger input or fewer filters entries'
            : raw.preset === 'resnet' ? 'each stage after the first halves height and width: use a larger input or fewer filters entries'
            : error.hint,
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
    const layer = layers[error.layerIndex]!;
    const path = layerPath(error.layerIndex);
    const named = layer.id === undefined ? layer.type : `${layer.type} ${JSON.stringify(layer.id)}`;
    problems.push(problem([...path, ...(error.at.length > 0 ? [layer.type, ...error.at] : [])], `${formatPath(path)}: ${named} ${error.detail}`, { hint: error.hint }));
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
