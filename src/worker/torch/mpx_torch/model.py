"""
The model of a resolved ModelDef with plain torch ops and REAL dtypes (no autocast), under Keras's mixed-precision
policy: variables are float32; every layer casts its input to its compute dtype when it is not already in it and
computes in it, a 16-bit layer also casts its weights (recast on every call, as Keras does); layers with
`dtype: float32` compute in float32.

Initial weights are drawn exactly as buildModel in src/worker/model.ts draws them (glorot uniform from the 'weights'
stream, layer order, kernel then bias, biases zero) and converted to PyTorch layouts, so the function is the tfjs
model's: conv kernels [kh, kw, in, out] -> [out, in, kh, kw]; images are NCHW here and NHWC there, so the first dense
layer after flattening an image gets its kernel rows permuted once at build time instead of permuting activations.
Dense kernels keep Keras's [in, out] layout (y = x @ W).
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from .seeded import Uniform, derive_seed


def window_output(size, window, stride, padding):
    """TensorFlow's output size: `same` ceil(in / stride), `valid` ceil((in - window + 1) / stride)."""
    return math.ceil(size / stride) if padding == 'same' else math.ceil((size - window + 1) / stride)


def same_padding(size, window, stride):
    """TensorFlow's `same` padding of one dimension as (before, after): the odd pixel, if any, goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def window_padding(layer, height, width):
    """(left, right, top, bottom) padding of a conv2d / maxPooling2d layer on an input of height × width."""
    size = layer['kernelSize'] if layer['type'] == 'conv2d' else layer['poolSize']
    if layer['padding'] != 'same':
        return (0, 0, 0, 0)
    top, bottom = same_padding(height, size[0], layer['strides'][0])
    left, right = same_padding(width, size[1], layer['strides'][1])
    return (left, right, top, bottom)


def activate(x, activation):
    if activation == 'relu':
        return torch.relu(x)
    if activation == 'sigmoid':
        return torch.sigmoid(x)
    if activation == 'tanh':
        return torch.tanh(x)
    if activation == 'softmax':
        return torch.softmax(x, dim=1 if x.dim() == 4 else -1)  # TF's last axis = channels, axis 1 in NCHW
    return x  # linear


class Dense:
    def __init__(self, layer, kernel, bias, dtype):
        self.activation, self.kernel, self.bias, self.dtype = layer['activation'], kernel, bias, dtype

    def __call__(self, x, training, seed):
        y = x @ self.kernel.to(self.dtype)
        if self.bias is not None:
            y = y + self.bias.to(self.dtype)
        return activate(y, self.activation)


class Conv2d:
    def __init__(self, layer, kernel, bias, dtype, padding):
        self.activation, self.kernel, self.bias, self.dtype = layer['activation'], kernel, bias, dtype
        self.stride = tuple(layer['strides'])
        left, right, top, bottom = padding
        # conv2d pads symmetrically; TensorFlow's odd `same` pixel (even kernels or strides > 1) needs an explicit pad.
        self.explicit_pad = (left, right, top, bottom) if (left, top) != (right, bottom) else None
        self.conv_padding = (0, 0) if self.explicit_pad else (top, left)

    def __call__(self, x, training, seed):
        if self.explicit_pad:
            x = F.pad(x, self.explicit_pad)
        y = F.conv2d(x, self.kernel.to(self.dtype), None, self.stride, self.conv_padding)
        if self.bias is not None:
            y = y + self.bias.to(self.dtype).view(1, -1, 1, 1)
        return activate(y, self.activation)


class MaxPool2d:
    def __init__(self, layer, dtype, padding):
        self.size, self.stride, self.dtype = tuple(layer['poolSize']), tuple(layer['strides']), dtype
        # TensorFlow's `same` pooling ignores padded positions: -inf padding never wins a max.
        self.pad = padding if any(padding) else None

    def __call__(self, x, training, seed):
        if self.pad:
            x = F.pad(x, self.pad, value=-math.inf)
        return F.max_pool2d(x, self.size, self.stride)


class Flatten:
    def __init__(self, dtype):
        self.dtype = dtype

    def __call__(self, x, training, seed):
        return x.reshape(x.shape[0], -1)


class Dropout:
    """tf.dropout: keep with probability 1 - rate, scale kept values by 1 / (1 - rate); masks seeded per layer."""

    def __init__(self, layer, dtype):
        self.rate, self.dtype = layer['rate'], dtype

    def __call__(self, x, training, seed):
        if not training or self.rate <= 0:
            return x
        generator = torch.Generator(device=x.device)
        generator.manual_seed(seed)
        keep = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) >= self.rate
        return x * (keep.to(x.dtype) * (1.0 / (1.0 - self.rate)))


class Activation:
    def __init__(self, layer, dtype):
        self.activation, self.dtype = layer['activation'], dtype

    def __call__(self, x, training, seed):
        return activate(x, self.activation)


class Model:
    def __init__(self, layers, params, outputs_probabilities, output_permutation):
        self.layers = layers
        #: Trainable float32 variables in layer order (kernel, then bias).
        self.params = params
        self.param_count = sum(p.numel() for p in params)
        #: The model ends in a softmax: the loss takes probabilities, else logits.
        self.outputs_probabilities = outputs_probabilities
        self.output_permutation = output_permutation

    def forward(self, x, training=False, dropout_seed=1):
        for index, layer in enumerate(self.layers):
            if x.dtype != layer.dtype:
                x = x.to(layer.dtype)  # Keras autocasts a layer's floating inputs to its compute dtype
            x = layer(x, training, dropout_seed + index)
        if self.output_permutation is not None:  # a flattened image as the output: back to TensorFlow's order
            x = x[:, self.output_permutation]
        return x


def build_model(model_def, seed, compute_dtype, device):
    """compute_dtype: torch.float32, torch.bfloat16 or torch.float16 (the policy's); variables are float32."""
    uniform = Uniform(derive_seed(seed, 'weights'))
    params, layers = [], []
    shape = list(model_def['input'])  # per sample, TensorFlow order
    permutation = None  # pending row order for the next dense kernel (after flattening an image)

    def variable(values):
        return torch.tensor(values, dtype=torch.float32, device=device, requires_grad=True)

    def glorot(tf_shape, fan_in, fan_out):
        limit = math.sqrt(6 / (fan_in + fan_out))
        return ((uniform.take(math.prod(tf_shape)) * 2 - 1) * limit).astype(np.float32).reshape(tf_shape)

    def bias_for(layer, units):
        return variable(np.zeros(units, np.float32)) if layer['useBias'] else None

    for layer in model_def['layers']:
        dtype = torch.float32 if layer.get('dtype') == 'float32' else compute_dtype
        kind = layer['type']
        if kind == 'dense':
            kernel = glorot([shape[0], layer['units']], shape[0], layer['units'])
            if permutation is not None:
                kernel, permutation = kernel[permutation], None
            kernel = variable(kernel)
            bias = bias_for(layer, layer['units'])
            params += [p for p in (kernel, bias) if p is not None]
            layers.append(Dense(layer, kernel, bias, dtype))
            shape = [layer['units']]
        elif kind in ('conv2d', 'maxPooling2d'):
            height, width, channels = shape
            padding = window_padding(layer, height, width)
            size = layer['kernelSize'] if kind == 'conv2d' else layer['poolSize']
            out_channels = layer['filters'] if kind == 'conv2d' else channels
            if kind == 'conv2d':
                kh, kw = size
                tf_kernel = glorot([kh, kw, channels, out_channels], kh * kw * channels, kh * kw * out_channels)
                kernel = variable(np.ascontiguousarray(tf_kernel.transpose(3, 2, 0, 1)))
                bias = bias_for(layer, out_channels)
                params += [p for p in (kernel, bias) if p is not None]
                layers.append(Conv2d(layer, kernel, bias, dtype, padding))
            else:
                layers.append(MaxPool2d(layer, dtype, padding))
            shape = [
                window_output(height, size[0], layer['strides'][0], layer['padding']),
                window_output(width, size[1], layer['strides'][1], layer['padding']),
                out_channels,
            ]
        elif kind == 'flatten':
            if len(shape) == 3:
                # Feature t of the NCHW flatten is feature permutation[t] of TensorFlow's NHWC flatten.
                permutation = np.arange(math.prod(shape)).reshape(shape).transpose(2, 0, 1).reshape(-1)
            layers.append(Flatten(dtype))
            shape = [math.prod(shape)]
        elif kind == 'dropout':
            layers.append(Dropout(layer, dtype))
        elif kind == 'activation':
            layers.append(Activation(layer, dtype))
        else:
            raise ValueError(f'unknown layer type {kind!r}')

    last = model_def['layers'][-1] if model_def['layers'] else {}
    outputs_probabilities = last.get('activation') == 'softmax' and last['type'] in ('activation', 'dense', 'conv2d')
    inverse = None
    if permutation is not None:
        inverse = torch.as_tensor(np.argsort(permutation), device=device)
    return Model(layers, params, outputs_probabilities, inverse)
