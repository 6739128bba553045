"""
Loss scaling with the rules of tf.keras 2.x LossScaleOptimizer, as src/worker/precision/loss-scale.ts implements them:

- dynamic: initial scale 2^15; after finite gradients, counter + 1 >= 2000 doubles the scale (only if the doubled
  value is finite as a float32) and resets the counter, else counts; non-finite gradients halve the scale (not below 1),
  reset the counter and SKIP the update.
- fixed number: never changes, never skips (Keras applies every update, even non-finite ones).
- none: scale 1, never skips.
"""
import math

import numpy as np
import torch

DEFAULT_INITIAL_SCALE = 2.0**15
DEFAULT_GROWTH_STEPS = 2000
MULTIPLIER = 2


class LossScaler:
    def __init__(self, definition, initial_scale=DEFAULT_INITIAL_SCALE, growth_steps=DEFAULT_GROWTH_STEPS):
        if definition == 'dynamic':
            self.mode, self.scale, self.growth_steps = 'dynamic', float(initial_scale), growth_steps
        elif definition == 'none':
            self.mode, self.scale, self.growth_steps = 'none', 1.0, math.inf
        elif isinstance(definition, (int, float)) and not isinstance(definition, bool) and 0 < definition < math.inf:
            self.mode, self.scale, self.growth_steps = 'fixed', float(definition), math.inf
        else:
            raise ValueError(f"lossScale: expected 'dynamic', 'none' or a positive finite number, got {definition!r}")
        self.counter = 0  # Keras's dynamic_counter: consecutive finite steps since the scale last changed
        self.skipped_steps = 0

    @property
    def uses_scaling(self):
        return self.mode != 'none'

    @property
    def checks_finiteness(self):
        """Only the dynamic scale looks at the gradients; callers skip the finiteness check otherwise."""
        return self.mode == 'dynamic'

    def update(self, grads_finite):
        """Records one step's outcome; returns whether to apply its update."""
        if self.mode != 'dynamic':
            return True
        if grads_finite:
            if self.counter + 1 >= self.growth_steps:
                grown = float(np.float32(self.scale * MULTIPLIER))  # Keras keeps the scale in a float32 variable
                if math.isfinite(grown):
                    self.scale = grown
                self.counter = 0
            else:
                self.counter += 1
            return True
        self.scale = max(self.scale / MULTIPLIER, 1.0)
        self.counter = 0
        self.skipped_steps += 1
        return False


def all_finite(tensors):
    """
    True when every element is finite, with one device sync and no gradient-sized temporary: a sum is NaN or ±Inf as
    soon as one element is. A sum of finite float32 values can only overflow if some element exceeds 3.4e38 / n, far
    beyond float16's 65504, so such a step is non-finite in 16 bits anyway (the same argument as loss-scale.ts).
    """
    if not tensors:
        return True
    total = torch.stack([t.sum(dtype=torch.float32) for t in tensors]).sum()
    return bool(torch.isfinite(total).item())
