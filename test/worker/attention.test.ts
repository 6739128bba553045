/**
 * Multi-head attention from primitives, against the same computation written out by hand with rounding exactly
 * where Keras 3 computes in the 16-bit dtype: the fused path (softmax in float32) and the explicit path (with dropout,
 * all in 16 bits); causal masking; cross-attention.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelDef, MultiHeadAttentionLayer } from '../../src/spec/types.js';
import { startBackend } from '../../src/worker/backend.js';
import { multiHeadAttention } from '../../src/worker/attention.js';
import { buildModel, type LayerContext } from '../../src/worker/model.js';
import { quantize } from '../../src/worker/precision/quantize.js';

const attention = (options: Partial<MultiHeadAttentionLayer> = {}): MultiHeadAttentionLayer => ({
  type: 'multiHeadAttention', heads: 2, keySize: 3, valueSize: 3, dropout: 0, causal: false, useBias: true, ...options,
});
const model = (layer: MultiHeadAttentionLayer, input = [5, 4]): ModelDef => ({ name: 'a', preset: null, input, classes: 4, layers: [layer, { type: 'flatten' }, { type: 'dense', units: 4, activation: 'linear', useBias: false }] });

/** The layer's output by hand: projections, scores, softmax, context, output projection, rounding where Keras does. */
function byHand(x: tf.Tensor, v: tf.Variable[], layer: MultiHeadAttentionLayer, grid: 'float16' | 'bfloat16' | null, training: boolean, seed: number): tf.Tensor {
  const q = (t: tf.Tensor) => (grid === null ? t : quantize(t, grid));
  const [batch, length] = x.shape as [number, number];
  const [wq, bq, wk, bk, wv, bv, wo, bo] = v.map((t) => q(t));
  const project = (w: tf.Tensor, b: tf.Tensor) => tf.transpose(q(tf.add(tf.reshape(q(tf.matMul(tf.reshape(q(x), [batch * length, -1]), w)), [batch, length, 2, 3]), tf.reshape(b, [2, 3]))), [0, 2, 1, 3]);
  const [query, key, value] = [project(wq!, bq!), project(wk!, bk!), project(wv!, bv!)];
  const mask = tf.linalg.bandPart(tf.ones([length, length]), -1, 0);
  let probabilities: tf.Tensor;
  if (!(training && layer.dropout > 0)) {
    let logits = tf.mul(q(tf.matMul(query, key, false, true)), 1 / Math.sqrt(3));
    if (layer.causal) logits = tf.where(tf.cast(tf.broadcastTo(mask, logits.shape), 'bool'), logits, tf.fill(logits.shape, -0.7 * 3.38953e38));
    probabilities = q(tf.softmax(logits));
  } else {
    let scores = q(tf.matMul(tf.transpose(q(tf.mul(tf.transpose(query, [0, 2, 1, 3]), 1 / Math.sqrt(3))), [0, 2, 1, 3]), key, false, true));
    const negative = grid === 'float16' ? -3e4 : -1e9;
    if (layer.causal) scores = q(tf.add(scores, q(tf.mul(tf.sub(1, mask), negative))));
    probabilities = q(tf.softmax(scores));
    if (layer.causal) probabilities = q(tf.mul(probabilities, mask));
    probabilities = q(tf.dropout(probabilities, layer.dropout, undefined, seed));
  }
  const context = tf.reshape(tf.transpose(q(tf.matMul(probabilities, value)), [0, 2, 1, 3]), [batch * length, 6]);
  return q(tf.add(tf.reshape(q(tf.matMul(context, wo!)), [batch, length, 4]), bo!));
}

describe('multi-head attention (wasm)', () => {
  beforeAll(async () => {
    await startBackend('wasm');
  });

  const cases = [
    ['fused path', attention(), true],
    ['fused path, causal', attention({ causal: true }), true],
    ['explicit path (dropout while training)', attention({ dropout: 0.3 }), true],
    ['explicit path, causal', attention({ dropout: 0.3, causal: true }), true],
    ['fused path at inference despite dropout', attention({ dropout: 0.3, causal: true }), false],
  ] as const;
  for (const grid of [null, 'float16', 'bfloat16'] as const) {
    it.each(cases)(`${grid ?? 'float32'}: %s is the computation written out by hand, bit for bit`, (_name, layer, training) => {
      const m = buildModel(model(layer), 9);
      const x = tf.randomNormal([3, 5, 4], 0, 2, 'float32', 10);
      const got = m.forward(x, { training, grid, dropoutSeed: 100 });
      const expected = tf.matMul(tf.reshape(byHand(x, m.variables.slice(0, 8), layer, grid, training, 100), [3, -1]), grid === null ? m.variables[8]! : quantize(m.variables[8]!, grid));
      const rounded = grid === null ? expected : quantize(expected, grid);
      expect(Array.from(got.dataSync())).toEqual(Array.from(rounded.dataSync()));
      m.dispose();
    });
  }

  it('causal: outputs at a position do not depend on later positions', () => {
    const layer = attention({ causal: true });
    const m = buildModel(model(layer), 11);
    const [queryKernel, queryBias, keyKernel, keyBias, valueKernel, valueBias, outputKernel, outputBias] = m.variables as tf.Variable[];
    const params = { queryKernel, queryBias, keyKernel, keyBias, valueKernel, valueBias, outputKernel, outputBias };
    const ctx: LayerContext = {
      isHalf: false, grid: null, training: false, dropoutSeed: 1,
      round: (t) => t, weight: (v) => v, cast: (t) => t,
      inPrecision: (_half, fn) => fn(), deferUpdate: () => undefined, tfjsOnly: (fn) => fn(), fused: (_name, fn) => fn(),
    };
    const x = tf.randomNormal([1, 5, 4], 0, 1, 'float32', 12);
    const changed = tf.concat([tf.slice(x, [0, 0, 0], [1, 3, 4]), tf.randomNormal([1, 2, 4], 0, 1, 'float32', 13)], 1);
    const firstThree = (input: tf.Tensor) => Array.from(tf.slice(multiHeadAttention(layer, params, [input], ctx), [0, 0, 0], [1, 3, 4]).dataSync());
    expect(firstThree(changed)).toEqual(firstThree(x));
    const all = (input: tf.Tensor) => Array.from(multiHeadAttention(layer, params, [input], ctx).dataSync());
    expect(all(changed)).not.toEqual(all(x));
    m.dispose();
  });

  it('cross-attention: query and value of different lengths give the query\'s shape', () => {
    const layer = attention({ heads: 1, keySize: 2, valueSize: 5 });
    const def: ModelDef = {
      name: 'x', preset: null, input: [6, 4], classes: 4,
      layers: [
        { type: 'conv1d', id: 'short', filters: 3, kernelSize: 2, strides: 2, padding: 'valid', activation: 'linear', useBias: true },
        { ...layer, inputs: ['input', 'short'] },
        { type: 'globalAveragePooling1d' },
      ],
    };
    const m = buildModel(def, 14);
    expect(m.forward(tf.ones([2, 6, 4]), { training: true, grid: 'bfloat16', dropoutSeed: 1 }).shape).toEqual([2, 4]);
    m.dispose();
  });
});
