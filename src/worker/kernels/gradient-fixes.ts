/**
 * Gradients tfjs 4.22 gets wrong, replaced with TensorFlow's. `SquaredDifference` (tfjs-core
 * gradients/SquaredDifference_grad.ts) does not sum the gradient over broadcast axes, so
 * `squaredDifference(x, mean)` with a keepdims mean — what `tf.nn.moments`, and so Keras's layer and batch
 * normalisation, compute — fails with a shape error; TensorFlow's `_SquaredDifferenceGrad` reduces both sides to their
 * input shapes, as tfjs's own Sub and Multiply gradients do.
 */
import { tf } from '../tfjs.js';

const { backend_util } = tf;

/** `grad` summed over the axes `shape` was broadcast along, reshaped to `shape`. */
function reduceTo(grad: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = backend_util.getReductionAxes(shape, grad.shape);
  return tf.reshape(axes.length > 0 ? tf.sum(grad, axes) : grad, shape);
}

/** Registers the corrected gradients (global to tfjs, idempotent). */
export function registerGradientFixes(): void {
  tf.registerGradient({
    kernelName: 'SquaredDifference',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => {
      const [a, b] = saved as [tf.Tensor, tf.Tensor];
      const grad = dy as tf.Tensor;
      return {
        a: () => reduceTo(tf.mul(grad, tf.mul(tf.sub(a, b), 2)), a.shape),
        b: () => reduceTo(tf.mul(grad, tf.mul(tf.sub(b, a), 2)), b.shape),
      };
    },
  });
}
