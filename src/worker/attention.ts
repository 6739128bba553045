/**
 * Keras 3's MultiHeadAttention (keras/src/layers/attention/multi_head_attention.py) from trainable tfjs primitives —
 * tfjs's own layer cannot train (its Einsum has no gradient). Inputs are [batch, length, features]; query, key and
 * value are projected per head (Keras's EinsumDense: one matrix product and a bias add each), then one of Keras's two
 * paths, as TensorFlow runs them:
 *
 * - **fused** (no dropout while training, and always at inference): `ops.dot_product_attention`, whose TensorFlow
 *   implementation (keras/src/backend/tensorflow/nn.py `_dot_product_attention_xla`) computes the scores in the
 *   compute dtype, casts them to float32, scales them, masks them (`tf.where` on a boolean mask of the scores' shape),
 *   takes the softmax in float32 and casts the probabilities back to the compute dtype;
 * - **explicit** (dropout > 0 while training): the query scaled by 1/√keySize, scores, Keras's Softmax layer (a
 *   causal mask added as a large negative number, the output multiplied by the mask) and Dropout, all in the compute
 *   dtype.
 *
 * Then the probabilities times the values, and the output projection back to the query's width.
 */
import { tf } from './tfjs.js';
import type { MultiHeadAttentionLayer } from '../spec/types.js';
import type { LayerContext, LayerParams } from './model.js';

/** `_get_large_negative(float32)` of the fused path: −0.7 × the largest bfloat16-representable float32. */
const FUSED_LARGE_NEGATIVE = -0.7 * 3.38953e38;

/** Keras's Softmax layer mask value (`_large_negative_number`): −3e4 in float16, −1e9 otherwise. */
function explicitLargeNegative(ctx: LayerContext): number {
  return ctx.isHalf && ctx.grid === 'float16' ? -3e4 : -1e9;
}

/** [batch, length, width] → [batch, length, heads, size] through a kernel [width, heads·size] and a bias. */
function project(x: tf.Tensor, kernel: tf.Variable, bias: tf.Variable | undefined, heads: number, ctx: LayerContext): tf.Tensor {
  const [batch, length, width] = x.shape as [number, number, number];
  let y = ctx.round(tf.matMul(tf.reshape(x, [batch * length, width]), ctx.weight(kernel)));
  y = tf.reshape(y, [batch, length, heads, kernel.shape[1]! / heads]);
  if (bias !== undefined) y = ctx.round(tf.add(y, tf.reshape(ctx.weight(bias), [heads, kernel.shape[1]! / heads])));
  return y;
}

/** Lower-triangular [queryLength, keyLength] boolean mask: query t may attend to keys s ≤ t. */
function causalMask(queryLength: number, keyLength: number): tf.Tensor {
  return tf.tidy(() => tf.cast(tf.linalg.bandPart(tf.ones([queryLength, keyLength]), -1, 0), 'bool'));
}

export function multiHeadAttention(layer: MultiHeadAttentionLayer, p: LayerParams, inputs: tf.Tensor[], ctx: LayerContext): tf.Tensor {
  const [queryInput, valueInput = queryInput, keyInput = valueInput] = inputs as [tf.Tensor, tf.Tensor?, tf.Tensor?];
  const { heads, keySize } = layer;
  const [batch, queryLength] = queryInput.shape as [number, number, number];
  const keyLength = keyInput.shape[1]!;
  const query = project(queryInput, p.queryKernel!, p.queryBias, heads, ctx);
  const key = project(keyInput, p.keyKernel!, p.keyBias, heads, ctx);
  const value = project(valueInput, p.valueKernel!, p.valueBias, heads, ctx);
  const scale = 1 / Math.sqrt(keySize);
  // [batch, length, heads, size] → [batch, heads, length, size]; the transposes TensorFlow's Einsum makes inside.
  const byHead = (t: tf.Tensor) => tf.transpose(t, [0, 2, 1, 3]);
  const isExplicit = ctx.training && layer.dropout > 0;
  let probabilities: tf.Tensor;
  if (!isExplicit) {
    const scores = ctx.round(tf.matMul(byHead(query), byHead(key), false, true));
    const wide = ctx.inPrecision(false, () => {
      let logits = tf.mul(ctx.isHalf ? ctx.cast(scores, false) : scores, scale);
      if (layer.causal) {
        // TensorFlow materialises the combined mask at the scores' shape (logical_and with ones_like) and keeps it.
        const shape = [batch, heads, queryLength, keyLength];
        const mask = tf.broadcastTo(causalMask(queryLength, keyLength), shape);
        // tf.where materialises its broadcast operands; TensorFlow's SelectV2 broadcasts the scalar inside the kernel.
        const fill = ctx.tfjsOnly(() => tf.fill(shape, FUSED_LARGE_NEGATIVE));
        logits = tf.where(mask, logits, fill);
      }
      return tf.softmax(logits);
    });
    probabilities = ctx.isHalf ? ctx.cast(wide, true) : wide;
  } else {
    const scaled = ctx.round(tf.mul(query, scale));
    let scores = ctx.round(tf.matMul(byHead(scaled), byHead(key), false, true));
    let mask: tf.Tensor | undefined;
    if (layer.causal) {
      mask = tf.cast(causalMask(queryLength, keyLength), 'float32');
      const adder = ctx.round(tf.mul(tf.sub(1, mask), explicitLargeNegative(ctx)));
      scores = ctx.round(tf.add(scores, adder));
    }
    probabilities = ctx.round(tf.softmax(scores));
    if (mask !== undefined) probabilities = ctx.round(tf.mul(probabilities, mask));
    probabilities = ctx.round(tf.dropout(probabilities, layer.dropout, undefined, ctx.dropoutSeed));
  }
  const context = ctx.round(tf.matMul(probabilities, byHead(value)));
  const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch * queryLength, heads * layer.valueSize]);
  let output = ctx.round(tf.matMul(merged, ctx.weight(p.outputKernel!)));
  output = tf.reshape(output, [batch, queryLength, p.outputKernel!.shape[1]!]);
  if (p.outputBias !== undefined) output = ctx.round(tf.add(output, ctx.weight(p.outputBias)));
  return output;
}
