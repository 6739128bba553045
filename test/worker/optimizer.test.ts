import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../../src/worker/backend.js';
import { TensorLedger } from '../../src/worker/memory/ledger.js';
import { variableFrom } from '../../src/worker/model.js';
import { createOptimizer } from '../../src/worker/optimizer.js';

/** Runs `steps` updates with fixed pseudo-random gradients through mpx's optimizer and tfjs's reference one. */
function compare(name: 'sgd' | 'momentum' | 'adam', reference: tf.Optimizer, steps = 5): number {
  const init = tf.randomNormal([7, 5], 0, 1, 'float32', 11);
  const ours = tf.variable(init.clone(), true, `ours-${name}`);
  const theirs = tf.variable(init.clone(), true, `theirs-${name}`);
  const optimizer = createOptimizer({ name, learningRate: 0.01, momentum: 0.9 });
  for (let step = 0; step < steps; step++) {
    const g = tf.randomNormal([7, 5], 0, 1, 'float32', 100 + step);
    optimizer.apply([ours], [g]);
    reference.applyGradients({ [theirs.name]: g });
    g.dispose();
  }
  const difference = tf.max(tf.abs(tf.sub(ours, theirs))).dataSync()[0]!;
  optimizer.dispose();
  reference.dispose();
  [init, ours, theirs].forEach((t) => t.dispose());
  return difference;
}

describe('optimizers (Keras update rules, applied per variable)', () => {
  beforeAll(async () => {
    await startBackend('cpu');
  });

  it('sgd matches tfjs sgd', () => {
    expect(compare('sgd', tf.train.sgd(0.01))).toBe(0);
  });

  it('momentum matches tfjs momentum (same rule, written as Keras writes it)', () => {
    expect(compare('momentum', tf.train.momentum(0.01, 0.9))).toBeLessThan(1e-6);
  });

  it('adam matches tfjs adam up to where epsilon is added', () => {
    // Keras adds epsilon to sqrt(v) after bias correction of lr ("epsilon hat"); tfjs adds it to sqrt(v̂).
    expect(compare('adam', tf.train.adam(0.01, 0.9, 0.999, 1e-7))).toBeLessThan(1e-5);
  });

  it('adam holds two fp32 slots per parameter and frees its temporaries per variable', () => {
    const ledger = new TensorLedger();
    ledger.attach();
    // variableFrom disposes the initial tensor: a leaked one would keep the variable's first buffer alive.
    const variables = [variableFrom(tf.ones([100, 100]), 'big'), variableFrom(tf.ones([10]), 'small')];
    const grads = variables.map((v) => tf.onesLike(v));
    const before = ledger.liveBytes;
    const optimizer = createOptimizer({ name: 'adam', learningRate: 0.01, momentum: 0 });
    ledger.resetPeak();
    optimizer.apply(variables, grads);
    const paramBytes = 4 * (100 * 100 + 10);
    expect(ledger.liveBytes - before).toBe(2 * paramBytes);
    // The temporaries of one variable's update (sqrt, +ε, ÷, ×lr, −) on top of the slots — not those of every variable.
    expect(ledger.peakBytes - before).toBeLessThanOrEqual(2 * paramBytes + 5 * 4 * 100 * 100);
    optimizer.dispose();
    expect(ledger.liveBytes).toBe(before);
  });
});
