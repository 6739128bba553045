"""
Optimizers with Keras's update rules, applied per variable IN PLACE, as TensorFlow's fused ResourceApply* kernels do
(torch.optim is not used: its foreach/fused paths and its Adam epsilon placement differ from Keras's). The gradient
factor 1 / (k · lossScale) rides on the scalar coefficients, so no unscaled copy of any gradient is made.

Adam's denominator sqrt(v) + ε is computed a chunk of ADAM_CHUNK elements at a time, so no variable-sized temporary
exists (TensorFlow's ResourceApplyAdam has none either); the same float32 operations per element, so the same values.
SGD and momentum need no temporary. Slots are float32 and created on the first update.
"""
import math

import torch

ADAM_BETA_1 = 0.9
ADAM_BETA_2 = 0.999
ADAM_EPSILON = 1e-7  # Keras's default, not PyTorch's 1e-8
# Elements per Adam denominator chunk: a 256 KiB float32 temporary at most (a 1024×1024 kernel would need 4 MiB).
ADAM_CHUNK = 1 << 16


def create_optimizer(definition):
    name = definition['name']
    if name == 'sgd':
        return Sgd(definition['learningRate'])
    if name == 'momentum':
        return Momentum(definition['learningRate'], definition['momentum'])
    if name == 'adam':
        return Adam(definition['learningRate'])
    raise ValueError(f'unknown optimizer {name!r}')


class Sgd:
    def __init__(self, learning_rate):
        self.learning_rate = learning_rate

    def slots(self):
        return []

    @torch.no_grad()
    def apply(self, params, grads, factor=1.0):
        for p, g in zip(params, grads):
            p.add_(g, alpha=-self.learning_rate * factor)


class Momentum:
    """Keras SGD(momentum=m): velocity = m·velocity − lr·g; variable += velocity."""

    def __init__(self, learning_rate, momentum):
        self.learning_rate, self.momentum = learning_rate, momentum
        self.velocity = []

    def slots(self):
        return list(self.velocity)

    @torch.no_grad()
    def apply(self, params, grads, factor=1.0):
        if not self.velocity:
            self.velocity = [torch.zeros_like(p) for p in params]
        for p, g, velocity in zip(params, grads, self.velocity):
            velocity.mul_(self.momentum).add_(g, alpha=-self.learning_rate * factor)
            p.add_(velocity)


class Adam:
    """Keras Adam: lr_t = lr·sqrt(1−β2^t)/(1−β1^t); m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; w −= lr_t·m/(sqrt(v)+ε)."""

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate
        self.iterations = 0
        self.m, self.v = [], []

    def slots(self):
        return self.m + self.v

    @torch.no_grad()
    def apply(self, params, grads, factor=1.0):
        if not self.m:
            self.m = [torch.zeros_like(p) for p in params]
            self.v = [torch.zeros_like(p) for p in params]
        self.iterations += 1
        t = self.iterations
        step_size = self.learning_rate * math.sqrt(1 - ADAM_BETA_2**t) / (1 - ADAM_BETA_1**t)
        # (1−β1)·(f·g) and (1−β2)·(f·g)² as coefficients of g: no copy of g.
        c1 = (1 - ADAM_BETA_1) * factor
        c2 = (1 - ADAM_BETA_2) * factor * factor
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m.mul_(ADAM_BETA_1).add_(g, alpha=c1)
            v.mul_(ADAM_BETA_2).addcmul_(g, g, value=c2)
            # Flat views of contiguous tensors: updating a chunk of p updates p.
            flat_p, flat_m, flat_v = p.view(-1), m.view(-1), v.view(-1)
            for start in range(0, flat_p.numel(), ADAM_CHUNK):
                part = slice(start, start + ADAM_CHUNK)
                flat_p[part].addcdiv_(flat_m[part], flat_v[part].sqrt().add_(ADAM_EPSILON), value=-step_size)
