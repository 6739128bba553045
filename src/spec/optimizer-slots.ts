/**
 * How much state an optimizer keeps per trainable value, from the spec alone: the fp32 slot tensors the engines
 * create (tfjs: src/worker/optimizer.ts; torch: mpx_torch/optimizer.py), one per variable each.
 */
import type { OptimizerDef } from './types.js';

/** fp32 slot tensors per variable: Adam's m and v, momentum's velocity, none for plain SGD. */
export function optimizerSlotsPerVariable(optimizer: OptimizerDef): number {
  switch (optimizer.name) {
    case 'adam':
      return 2;
    case 'momentum':
      return 1;
    case 'sgd':
      return 0;
  }
}
