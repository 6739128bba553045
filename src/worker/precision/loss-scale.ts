/**
 * Loss scaling with the rules of tf.keras 2.x `tf.keras.mixed_precision.LossScaleOptimizer`
 * (keras/mixed_precision/loss_scale_optimizer.py, `_DynamicLossScaleState.update` and
 * `_apply_gradients_cross_replica`):
 *
 * - dynamic (default): initial scale 2^15, growth every 2000 steps, multiplier 2.
 *   - finite gradients: if counter + 1 >= growthSteps, scale *= 2 (only if the new scale is finite as a
 *     float32, `_assign_if_finite`) and counter = 0; else counter += 1. The update is applied.
 *   - non-finite gradients: scale = max(scale / 2, 1), counter = 0, and the update is SKIPPED (the
 *     optimizer's iteration count still advances in Keras; that is the caller's business).
 * - fixed (`dynamic=False, initial_scale=N`): the scale never changes and updates are never skipped,
 *   even with non-finite gradients (Keras sets `should_apply_grads = True`).
 * - none: scale 1, never skipped (no LossScaleOptimizer at all).
 *
 * Keras 3 (keras/src/optimizers/loss_scale_optimizer.py) differs slightly: no lower bound of 1 when
 * halving, no finiteness check when doubling, and `dynamic=False` was removed. We follow tf.keras 2.x.
 */
import { tf } from '../tfjs.js';
import type { LossScaleDef } from '../../spec/types.js';

export type { LossScaleDef };

export interface DynamicLossScaleOptions {
  /** Defaults to 2^15, as in Keras. */
  initialScale?: number;
  /** Defaults to 2000, as in Keras. */
  growthSteps?: number;
}

export const DEFAULT_INITIAL_SCALE = 2 ** 15;
export const DEFAULT_GROWTH_STEPS = 2000;
const MULTIPLIER = 2;

export class LossScaler {
  readonly mode: 'dynamic' | 'fixed' | 'none';
  readonly growthSteps: number;
  private currentScale: number;
  private goodSteps = 0;
  private skipped = 0;

  constructor(def: LossScaleDef, options: DynamicLossScaleOptions = {}) {
    if (def !== 'dynamic' && (options.initialScale !== undefined || options.growthSteps !== undefined)) {
      throw new Error('LossScaler: initialScale/growthSteps only apply to the dynamic loss scale');
    }
    if (def === 'dynamic') {
      this.mode = 'dynamic';
      this.currentScale = options.initialScale ?? DEFAULT_INITIAL_SCALE;
      this.growthSteps = options.growthSteps ?? DEFAULT_GROWTH_STEPS;
      if (!(Number.isFinite(this.currentScale) && this.currentScale > 0)) {
        throw new Error(`LossScaler: initialScale must be a positive finite number, got ${this.currentScale}`);
      }
      if (!(Number.isInteger(this.growthSteps) && this.growthSteps >= 1)) {
        throw new Error(`LossScaler: growthSteps must be a positive integer, got ${this.growthSteps}`);
      }
    } else if (def === 'none') {
      this.mode = 'none';
      this.currentScale = 1;
      this.growthSteps = Infinity;
    } else if (typeof def === 'number' && Number.isFinite(def) && def > 0) {
      this.mode = 'fixed';
      this.currentScale = def;
      this.growthSteps = Infinity;
    } else {
      throw new Error(`LossScaler: expected 'dynamic', 'none' or a positive finite number, got ${String(def)}`);
    }
  }

  /** The factor to multiply the loss by (and divide the gradients by) this step. */
  get scale(): number {
    return this.currentScale;
  }

  /** Whether the loss is multiplied at all (false only for 'none'; a fixed scale of 1 still counts). */
  get usesScaling(): boolean {
    return this.mode !== 'none';
  }

  /**
   * Whether {@link update} needs to know if the gradients are finite (only the dynamic scale looks at it;
   * Keras with a fixed scale applies every update), so callers can skip the {@link allFinite} sync.
   */
  get checksFiniteness(): boolean {
    return this.mode === 'dynamic';
  }

  /** Consecutive finite steps since the last change of the scale (Keras `dynamic_counter`); 0 unless dynamic. */
  get counter(): number {
    return this.goodSteps;
  }

  /** Updates skipped because of non-finite gradients (only ever non-zero when dynamic). */
  get skippedSteps(): number {
    return this.skipped;
  }

  /**
   * Records one step's outcome and says whether to apply its update. Call once per step, after computing
   * the gradients with the current {@link scale}.
   */
  update(gradsFinite: boolean): { apply: boolean } {
    if (this.mode !== 'dynamic') return { apply: true };
    if (gradsFinite) {
      if (this.goodSteps + 1 >= this.growthSteps) {
        // Keras keeps the scale in a float32 variable and only assigns a finite new value.
        const grown = Math.fround(this.currentScale * MULTIPLIER);
        if (Number.isFinite(grown)) this.currentScale = grown;
        this.goodSteps = 0;
      } else {
        this.goodSteps += 1;
      }
      return { apply: true };
    }
    this.currentScale = Math.max(this.currentScale / MULTIPLIER, 1);
    this.goodSteps = 0;
    this.skipped += 1;
    return { apply: false };
  }
}

/**
 * True when every element of every gradient is finite, with one device sync and no gradient-sized temporary: the
 * sum of each gradient is NaN or ±Inf as soon as one element is. A sum of finite values can only overflow float32
 * if some element exceeds 3.4e38 / n — far beyond float16's 65504 — so such a step is non-finite in 16 bits anyway
 * and skipping it is what Keras would do. (Keras checks `is_finite` per element, which costs a bool copy.)
 */
export function allFinite(grads: readonly tf.Tensor[] | tf.NamedTensorMap): boolean {
  const list = Array.isArray(grads) ? (grads as readonly tf.Tensor[]) : Object.values(grads as tf.NamedTensorMap);
  if (list.length === 0) return true;
  const total = tf.tidy(() => tf.addN(list.map((g) => tf.sum(g))));
  try {
    return Number.isFinite(total.dataSync()[0]);
  } finally {
    total.dispose();
  }
}
