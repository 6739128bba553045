/**
 * How much state an optimizer keeps per trainable value, from the spec alone: the fp32 slot tensors the engines
 * create (tfjs: src/worker/optimizer.ts; torch: mpx_torch/optimizer.py), one per variable each, as Keras 3 creates
 * them (keras/src/optimizers/*.py).
 */
import type { OptimizerDef } from './types.js';

/**
 * fp32 slot tensors per variable: Adam's and AdamW's m and v, momentum's velocity, none for plain SGD, and RMSprop's
 * velocity plus one momentum slot when `momentum` > 0 plus the mean gradient when `centered` (Keras creates each only
 * when it is used; tfjs's own RMSprop always keeps two).
 */
export function optimizerSlotsPerVariable(optimizer: OptimizerDef): number {
  switch (optimizer.name) {
    case 'adam':
    case 'adamw':
      return 2;
    case 'momentum':
      return 1;
    case 'sgd':
      return 0;
    case 'rmsprop':
      return 1 + (optimizer.momentum > 0 ? 1 : 0) + (optimizer.centered === true ? 1 : 0);
  }
}

/** Bytes of optimizer state for `trainableParameters` fp32 values (4 bytes per value per slot). */
export function optimizerSlotBytes(optimizer: OptimizerDef, trainableParameters: number): number {
  return 4 * optimizerSlotsPerVariable(optimizer) * trainableParameters;
}
