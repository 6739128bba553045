import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../../src/worker/backend.js';
import { TensorLedger } from '../../src/worker/memory/ledger.js';
import { variableFrom } from '../../src/worker/model.js';
import type { OptimizerDef, OptimizerName } from '../../src/spec/types.js';
import { createOptimizer } from '../../src/worker/optimizer.js';

/** Runs `steps` updates with fixed pseudo-random gradients through mpx's optimizer and tfjs's reference one. */
let compared = 0;
function compare(name: OptimizerName, reference: tf.Optimizer, steps = 5, settings: Partial<OptimizerDef> = {}): number {
  const init = tf.randomNormal([7, 5], 0, 1, 'float32', 11);
  const ours = tf.variable(init.clone(), true, `ours-${name}-${compared}`);
  const theirs = tf.variable(init.clone(), true, `theirs-${name}-${compared++}`);
  const optimizer = createOptimizer({ name, learningRate: 0.01, momentum: 0.9, ...settings });
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

  it('rmsprop matches tfjs rmsprop (epsilon under the square root, as Keras), plain and with momentum', () => {
    expect(compare('rmsprop', tf.train.rmsprop(0.01, 0.9, 0, 1e-7, false), 5, { rho: 0.9, momentum: 0, centered: false })).toBeLessThan(1e-6);
    expect(compare('rmsprop', tf.train.rmsprop(0.01, 0.8, 0.5, 1e-7, false), 5, { rho: 0.8, momentum: 0.5, centered: false })).toBeLessThan(1e-6);
  });

  it('centered rmsprop adds epsilon to v − a², as Keras does (tfjs subtracts it: sqrt(v − (a² + ε)))', () => {
    const [lr, rho, mu, eps] = [0.01, 0.9, 0.9, 1e-7];
    const variable = variableFrom(tf.randomNormal([5], 0, 1, 'float32', 41), 'centered');
    const optimizer = createOptimizer({ name: 'rmsprop', learningRate: lr, momentum: mu, rho, centered: true });
    let [w, v, a, m] = [Array.from(variable.dataSync()), [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]];
    for (let step = 0; step < 4; step++) {
      const g = tf.randomNormal([5], 0, 1, 'float32', 50 + step);
      const gs = Array.from(g.dataSync());
      optimizer.apply([variable], [g]);
      v = v.map((x, i) => rho * x + (1 - rho) * gs[i]! ** 2);
      a = a.map((x, i) => rho * x + (1 - rho) * gs[i]!);
      m = m.map((x, i) => mu * x + (lr * gs[i]!) / Math.sqrt(v[i]! - a[i]! ** 2 + eps));
      w = w.map((x, i) => x - m[i]!);
      g.dispose();
    }
    Array.from(variable.dataSync()).forEach((value, i) => expect(Math.abs(value - w[i]!)).toBeLessThan(1e-5));
    optimizer.dispose();
    variable.dispose();
  });

  it('adamw is Keras\'s decoupled decay before the Adam step: w − w·wd·lr, then Adam', () => {
    const [lr, wd] = [0.01, 0.1];
    const init = tf.randomNormal([6, 4], 0, 1, 'float32', 21);
    const ours = tf.variable(init.clone(), true, 'ours-adamw');
    const theirs = tf.variable(init.clone(), true, 'theirs-adamw');
    const adamw = createOptimizer({ name: 'adamw', learningRate: lr, momentum: 0, weightDecay: wd });
    const adam = createOptimizer({ name: 'adam', learningRate: lr, momentum: 0 });
    for (let step = 0; step < 4; step++) {
      const g = tf.randomNormal([6, 4], 0, 1, 'float32', 30 + step);
      adamw.apply([ours], [g]);
      const decayed = tf.sub(theirs, tf.mul(tf.mul(theirs, wd), lr));
      theirs.assign(decayed);
      adam.apply([theirs], [g]);
      tf.dispose([g, decayed]);
    }
    expect(Array.from(ours.dataSync())).toEqual(Array.from(theirs.dataSync()));
    expect(adamw.slots()).toHaveLength(2);
    [adamw, adam].forEach((o) => o.dispose());
    tf.dispose([init, ours, theirs]);
  });

  it('rmsprop keeps Keras\'s slots: the velocity, a momentum slot when momentum > 0, the mean gradient when centered', () => {
    const variable = variableFrom(tf.ones([3]), 'rms-slots');
    const slots = (settings: Partial<OptimizerDef>) => {
      const optimizer = createOptimizer({ name: 'rmsprop', learningRate: 0.01, momentum: 0, rho: 0.9, centered: false, ...settings });
      const g = tf.onesLike(variable);
      optimizer.apply([variable], [g]);
      const count = optimizer.slots().length;
      optimizer.dispose();
      g.dispose();
      return count;
    };
    expect([slots({}), slots({ momentum: 0.9 }), slots({ centered: true }), slots({ momentum: 0.9, centered: true })]).toEqual([1, 2, 2, 3]);
    variable.dispose();
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
