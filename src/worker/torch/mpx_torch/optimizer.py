"""
Optimizers with Keras 3's update rules, applied per variable IN PLACE, as TensorFlow's fused ResourceApply* kernels do
(torch.optim is not used: its foreach/fused paths and its Adam epsilon placement differ from Keras's). The gradient
factor 1 / (k · lossScale) rides on the scalar coefficients, so no unscaled copy of any gradient is made. The same
float32 operations in the same order as src/worker/optimizer.ts.

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
    if name == 'adamw':
        return Adam(definition['learningRate'], definition.get('weightDecay', 0.0))
    if name == 'rmsprop':
        return RmsProp(definition['learningRate'], definition.get('rho', 0.9), definition['momentum'], definition.get('centered', False))
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
    """
    Keras Adam: lr_t = lr·sqrt(1−β2^t)/(1−β1^t); m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; w −= lr_t·m/(sqrt(v)+ε).
    With a weight decay, Keras's AdamW: each variable first becomes w − w·wd·lr (BaseOptimizer._apply_weight_decay).
    """

    def __init__(self, learning_rate, weight_decay=0.0):
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
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
            if self.weight_decay > 0:
                p.sub_(p * self.weight_decay * self.learning_rate)
            m.mul_(ADAM_BETA_1).add_(g, alpha=c1)
            v.mul_(ADAM_BETA_2).addcmul_(g, g, value=c2)
            # Flat views of contiguous tensors: updating a chunk of p updates p.
            flat_p, flat_m, flat_v = p.view(-1), m.view(-1), v.view(-1)
            for start in range(0, flat_p.numel(), ADAM_CHUNK):
                part = slice(start, start + ADAM_CHUNK)
                flat_p[part].addcdiv_(flat_m[part], flat_v[part].sqrt().add_(ADAM_EPSILON), value=-step_size)


RMSPROP_EPSILON = 1e-7  # Keras's default, under the square root


class RmsProp:
    """
    Keras RMSprop: v = ρ·v + (1−ρ)·g²; centered: a = ρ·a + (1−ρ)·g, denominator v − a² + ε, else v + ε;
    increment = lr·g / sqrt(denominator); with momentum m = μ·m + increment and w −= m, else w −= increment. Slots as
    Keras creates them: the velocity, a momentum slot only when μ > 0, the mean gradient only when centered. The
    increment is one gradient-sized temporary (TensorFlow's ResourceApplyRMSProp has none).
    """

    def __init__(self, learning_rate, rho, momentum, centered):
        self.learning_rate, self.rho, self.momentum, self.centered = learning_rate, rho, momentum, centered
        self.velocity, self.momentums, self.averages = [], [], []

    def slots(self):
        return self.velocity + self.momentums + self.averages

    @torch.no_grad()
    def apply(self, params, grads, factor=1.0):
        if not self.velocity:
            self.velocity = [torch.zeros_like(p) for p in params]
            self.momentums = [torch.zeros_like(p) for p in params] if self.momentum > 0 else []
            self.averages = [torch.zeros_like(p) for p in params] if self.centered else []
        rho = self.rho
        for i, (p, g) in enumerate(zip(params, grads)):
            velocity = self.velocity[i]
            velocity.mul_(rho).add_(g.square().mul_((1 - rho) * factor * factor))
            if self.centered:
                average = self.averages[i]
                average.mul_(rho).add_(g, alpha=(1 - rho) * factor)
                denominator = velocity.sub(average.square()).add_(RMSPROP_EPSILON)
            else:
                denominator = velocity.add(RMSPROP_EPSILON)
            increment = (g * (self.learning_rate * factor)).div_(denominator.sqrt_())
            if self.momentum > 0:
                self.momentums[i].mul_(self.momentum).add_(increment)
                p.sub_(self.momentums[i])
            else:
                p.sub_(increment)
