/**
 * Optimizers with Keras's update rules, applied one variable at a time. tfjs's own optimizers run the update of
 * every variable inside one tf.tidy, so all their temporaries (about a dozen parameter-sized tensors for Adam) are
 * alive together at the end of a step; TensorFlow applies each variable with one fused kernel (ResourceApplyAdam).
 * Applying per variable keeps the measured peak close to what a real runtime holds. Slots are fp32 variables.
 */
import { tf } from './tfjs.js';
import type { OptimizerDef } from '../spec/types.js';
import { adamUpdate, hasFusedAdam } from './kernels/adam.js';
import type { TensorLedger } from './memory/ledger.js';
import type { MemoryRole } from './memory/replay.js';

/** Keras's default epsilon for Adam (`keras.optimizers.Adam(epsilon=1e-7)`). */
const ADAM_EPSILON = 1e-7;
const ADAM_BETA_1 = 0.9;
const ADAM_BETA_2 = 0.999;
/** Keras's default epsilon for RMSprop, added under the square root. */
const RMSPROP_EPSILON = 1e-7;

export interface Optimizer {
  /**
   * Applies one update; `grads[i]` belongs to `variables[i]` and counts `gradientFactor` times (loss-scale and
   * accumulation unscaling, folded into the update's scalar coefficients so no unscaled copy of a gradient is ever
   * made). Does not dispose the gradients. With a ledger, new values are tagged as parameters / optimizer slots when
   * assigned.
   */
  apply(variables: readonly tf.Variable[], grads: readonly tf.Tensor[], gradientFactor?: number, ledger?: TensorLedger): void;
  /** The optimizer's slot variables (fp32 state kept between updates). */
  slots(): tf.Variable[];
  /** Creates the slots of `variables` now (zeros, as a first update would), so that a first update is like any later one. */
  prepare(variables: readonly tf.Variable[]): void;
  dispose(): void;
}

export function createOptimizer(def: OptimizerDef): Optimizer {
  switch (def.name) {
    case 'sgd':
      return new Sgd(def.learningRate);
    case 'momentum':
      return new Momentum(def.learningRate, def.momentum);
    case 'adam':
      return new Adam(def.learningRate);
    case 'adamw':
      return new Adam(def.learningRate, def.weightDecay ?? 0);
    case 'rmsprop':
      return new RmsProp(def.learningRate, def.rho ?? 0.9, def.momentum, def.centered ?? false);
  }
}

/** Creates one zero-initialised fp32 slot per variable on first use. */
class Slots {
  private readonly byName = new Map<string, tf.Variable>();
  constructor(private readonly slotName: string) {}

  get(variable: tf.Variable): tf.Variable {
    let slot = this.byName.get(variable.name);
    if (!slot) {
      const zeros = tf.zerosLike(variable);
      slot = tf.variable(zeros, false, `${variable.name}/${this.slotName}`);
      zeros.dispose();
      this.byName.set(variable.name, slot);
    }
    return slot;
  }

  all(): tf.Variable[] {
    return [...this.byName.values()];
  }

  dispose(): void {
    this.byName.forEach((slot) => slot.dispose());
    this.byName.clear();
  }
}

/** Replaces a variable's value by `compute()`'s result without keeping an extra reference to the old buffer. */
function assignFrom(variable: tf.Variable, compute: () => tf.Tensor, role: MemoryRole, ledger?: TensorLedger): void {
  const next = tf.tidy(compute);
  variable.assign(next);
  next.dispose();
  ledger?.retag(variable, role);
}

class Sgd implements Optimizer {
  constructor(private readonly learningRate: number) {}
  apply(variables: readonly tf.Variable[], grads: readonly tf.Tensor[], factor = 1, ledger?: TensorLedger): void {
    const rate = this.learningRate * factor;
    variables.forEach((v, i) => assignFrom(v, () => tf.sub(v, tf.mul(grads[i]!, rate)), 'parameters', ledger));
  }
  slots(): tf.Variable[] {
    return [];
  }
  prepare(): void {}
  dispose(): void {}
}

/** Keras SGD(momentum=m): velocity = m·velocity − lr·g; variable += velocity. */
class Momentum implements Optimizer {
  private readonly velocity = new Slots('momentum');
  constructor(
    private readonly learningRate: number,
    private readonly momentum: number,
  ) {}
  apply(variables: readonly tf.Variable[], grads: readonly tf.Tensor[], factor = 1, ledger?: TensorLedger): void {
    const rate = this.learningRate * factor;
    variables.forEach((v, i) => {
      const velocity = this.velocity.get(v);
      assignFrom(velocity, () => tf.sub(tf.mul(velocity, this.momentum), tf.mul(grads[i]!, rate)), 'optimizer', ledger);
      assignFrom(v, () => tf.add(v, velocity), 'parameters', ledger);
    });
  }
  slots(): tf.Variable[] {
    return this.velocity.all();
  }
  prepare(variables: readonly tf.Variable[]): void {
    variables.forEach((v) => this.velocity.get(v));
  }
  dispose(): void {
    this.velocity.dispose();
  }
}

/**
 * Keras Adam: m, v moments; lr_t = lr·sqrt(1−β2^t)/(1−β1^t); variable −= lr_t·m/(sqrt(v)+ε). With a weight decay it
 * is Keras's AdamW: each variable first becomes w − w·wd·lr (`BaseOptimizer._apply_weight_decay`, before the step).
 */
class Adam implements Optimizer {
  private readonly m = new Slots('m');
  private readonly v = new Slots('v');
  private iterations = 0;
  constructor(
    private readonly learningRate: number,
    private readonly weightDecay = 0,
  ) {}
  apply(variables: readonly tf.Variable[], grads: readonly tf.Tensor[], factor = 1, ledger?: TensorLedger): void {
    this.iterations++;
    const t = this.iterations;
    const stepSize = (this.learningRate * Math.sqrt(1 - ADAM_BETA_2 ** t)) / (1 - ADAM_BETA_1 ** t);
    // Where the backend has the fused kernel (wasm), one pass per variable as TensorFlow's ResourceApplyAdam does:
    // the same float32 operations in the same order (same bits), without the tf-op form's temporaries.
    const isFused = hasFusedAdam();
    const coefficients = {
      beta1: ADAM_BETA_1,
      c1: (1 - ADAM_BETA_1) * factor,
      beta2: ADAM_BETA_2,
      c2: (1 - ADAM_BETA_2) * factor * factor,
      epsilon: ADAM_EPSILON,
      stepSize,
    };
    variables.forEach((variable, i) => {
      const g = grads[i]!;
      const m = this.m.get(variable);
      const v = this.v.get(variable);
      if (this.weightDecay > 0) {
        assignFrom(variable, () => tf.sub(variable, tf.mul(tf.mul(variable, this.weightDecay), this.learningRate)), 'parameters', ledger);
      }
      if (isFused) {
        const next = adamUpdate(m, v, variable, g, coefficients);
        ([m, v, variable] as const).forEach((target, k) => {
          target.assign(next[k]!);
          next[k]!.dispose();
          ledger?.retag(target, k === 2 ? 'parameters' : 'optimizer');
        });
        return;
      }
      // The unscaling factor rides on the scalar coefficients: (1−β1)·(f·g) and (1−β2)·(f·g)² need no copy of g.
      assignFrom(m, () => tf.add(tf.mul(m, ADAM_BETA_1), tf.mul(g, coefficients.c1)), 'optimizer', ledger);
      assignFrom(v, () => tf.add(tf.mul(v, ADAM_BETA_2), tf.mul(tf.square(g), coefficients.c2)), 'optimizer', ledger);
      assignFrom(variable, () => tf.sub(variable, tf.mul(tf.div(m, tf.add(tf.sqrt(v), ADAM_EPSILON)), stepSize)), 'parameters', ledger);
    });
  }
  slots(): tf.Variable[] {
    return [...this.m.all(), ...this.v.all()];
  }
  prepare(variables: readonly tf.Variable[]): void {
    for (const variable of variables) {
      this.m.get(variable);
      this.v.get(variable);
    }
  }
  dispose(): void {
    this.m.dispose();
    this.v.dispose();
  }
}

/**
 * Keras RMSprop (keras/src/optimizers/rmsprop.py): v = ρ·v + (1−ρ)·g²; centered: a = ρ·a + (1−ρ)·g and the
 * denominator v − a² + ε, else v + ε; increment = lr·g / sqrt(denominator); with momentum m = μ·m + increment and
 * w −= m, else w −= increment. Slots as Keras creates them: the velocity, a momentum slot only when μ > 0, the mean
 * gradient only when centered (tfjs's own RMSprop always keeps two).
 */
class RmsProp implements Optimizer {
  private readonly velocity = new Slots('velocity');
  private readonly momentums = new Slots('momentum');
  private readonly averages = new Slots('average_gradient');
  constructor(
    private readonly learningRate: number,
    private readonly rho: number,
    private readonly momentum: number,
    private readonly centered: boolean,
  ) {}
  apply(variables: readonly tf.Variable[], grads: readonly tf.Tensor[], factor = 1, ledger?: TensorLedger): void {
    const { rho, momentum } = this;
    variables.forEach((variable, i) => {
      const g = grads[i]!;
      // The unscaling factor f rides on the coefficients: (1−ρ)·(f·g)² = ((1−ρ)·f²)·g², lr·(f·g) = (lr·f)·g.
      const velocity = this.velocity.get(variable);
      assignFrom(velocity, () => tf.add(tf.mul(velocity, rho), tf.mul(tf.square(g), (1 - rho) * factor * factor)), 'optimizer', ledger);
      let average: tf.Variable | undefined;
      if (this.centered) {
        average = this.averages.get(variable);
        const a = average;
        assignFrom(a, () => tf.add(tf.mul(a, rho), tf.mul(g, (1 - rho) * factor)), 'optimizer', ledger);
      }
      const increment = () => {
        const denominator = average === undefined ? tf.add(velocity, RMSPROP_EPSILON) : tf.add(tf.sub(velocity, tf.square(average)), RMSPROP_EPSILON);
        return tf.div(tf.mul(g, this.learningRate * factor), tf.sqrt(denominator));
      };
      if (momentum > 0) {
        const m = this.momentums.get(variable);
        assignFrom(m, () => tf.add(tf.mul(m, momentum), increment()), 'optimizer', ledger);
        assignFrom(variable, () => tf.sub(variable, m), 'parameters', ledger);
      } else {
        assignFrom(variable, () => tf.sub(variable, increment()), 'parameters', ledger);
      }
    });
  }
  slots(): tf.Variable[] {
    return [...this.velocity.all(), ...this.momentums.all(), ...this.averages.all()];
  }
  prepare(variables: readonly tf.Variable[]): void {
    for (const variable of variables) {
      this.velocity.get(variable);
      if (this.momentum > 0) this.momentums.get(variable);
      if (this.centered) this.averages.get(variable);
    }
  }
  dispose(): void {
    this.velocity.dispose();
    this.momentums.dispose();
    this.averages.dispose();
  }
}
