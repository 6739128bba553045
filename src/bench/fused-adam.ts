/**
 * The optimizer change the benchmark proposes, made concrete so it can be measured: Keras Adam exactly as
 * `src/worker/optimizer.ts` computes it (same constants, same float32 operations, same bits), but each variable
 * updated by one `MpxAdamUpdate` kernel instead of 12 tf ops. The benchmark swaps it into a Trainer for a what-if
 * row; `mpx run` does not use it.
 */
import * as tf from '@tensorflow/tfjs';
import { adamUpdate } from '../worker/kernels/adam.js';
import type { Optimizer } from '../worker/optimizer.js';

const ADAM_EPSILON = 1e-7;
const ADAM_BETA_1 = 0.9;
const ADAM_BETA_2 = 0.999;

export class FusedAdam {
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  private iterations = 0;
  constructor(private readonly learningRate: number) {}

  private slot(map: Map<string, tf.Variable>, variable: tf.Variable, name: string): tf.Variable {
    let slot = map.get(variable.name);
    if (slot === undefined) {
      const zeros = tf.zerosLike(variable);
      slot = tf.variable(zeros, false, `${variable.name}/fused-${name}`);
      zeros.dispose();
      map.set(variable.name, slot);
    }
    return slot;
  }

  apply(variables: readonly tf.Variable[], grads: readonly tf.Tensor[], factor = 1): void {
    this.iterations++;
    const t = this.iterations;
    const stepSize = (this.learningRate * Math.sqrt(1 - ADAM_BETA_2 ** t)) / (1 - ADAM_BETA_1 ** t);
    const coefficients = {
      beta1: ADAM_BETA_1,
      c1: (1 - ADAM_BETA_1) * factor,
      beta2: ADAM_BETA_2,
      c2: (1 - ADAM_BETA_2) * factor * factor,
      epsilon: ADAM_EPSILON,
      stepSize,
    };
    variables.forEach((variable, i) => {
      const m = this.slot(this.m, variable, 'm');
      const v = this.slot(this.v, variable, 'v');
      const next = adamUpdate(m, v, variable, grads[i]!, coefficients);
      [m, v, variable].forEach((target, k) => {
        target.assign(next[k]!);
        next[k]!.dispose();
      });
    });
  }

  slots(): tf.Variable[] {
    return [...this.m.values(), ...this.v.values()];
  }

  dispose(): void {
    [...this.m.values(), ...this.v.values()].forEach((s) => s.dispose());
  }
}

/** Puts a FusedAdam into a trainer in place of its optimizer (the benchmark's what-if; same learning rate). */
export function useFusedAdam(trainer: { optimizer: Optimizer }, learningRate: number): void {
  const previous = trainer.optimizer;
  const fused = new FusedAdam(learningRate);
  (trainer as { optimizer: unknown }).optimizer = fused;
  previous.dispose();
}
