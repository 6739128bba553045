"""
The model of a resolved ModelDef with plain torch ops and REAL dtypes (no autocast), under Keras 3's mixed-precision
policy: variables are float32; a layer casts its floating inputs to its compute dtype when they are not already in it
(autocast) and computes in it, a 16-bit layer also casts its weights (recast on every call, as Keras does); layers with
`dtype: float32` compute in float32. Embedding, layer and batch normalisation do not autocast (Keras: autocast = False):
an embedding gathers float32 rows and casts them to the compute dtype; the normalisations compute in float32 from a
float32 copy of a 16-bit input and cast the result; global average pooling reduces in float32 (Keras's ops.mean);
multi-head attention without dropout runs its softmax in float32 (ops.dot_product_attention). The layers form a graph:
each takes the outputs named in its `inputs` (default: the layer before) and the last one is the model's output.

Initial weights are drawn exactly as buildModel in src/worker/model.ts draws them (the 'weights' stream, layer order,
Keras's initialisers and weight order) and converted to PyTorch layouts, so the function is the tfjs model's: conv
kernels [kh, kw, in, out] -> [out, in, kh, kw] and [k, in, out] -> [out, in, k]; images are NCHW here and NHWC there,
so a dense layer fed by a flattened image gets its kernel rows permuted once at build time instead of permuting
activations (the permutation passes through dropout, activations and adds; any other consumer gets the features back
in TensorFlow's order). Sequences are [batch, length, features] as in TensorFlow. Dense kernels keep Keras's
[in, out] layout (y = x @ W).
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from .seeded import Uniform, derive_seed

MODEL_INPUT = 'input'
EMBEDDING_INIT_LIMIT = 0.05  # Keras's Embedding initialiser "uniform": RandomUniform(-0.05, 0.05)
SQRT_2 = 1.4142135623730951
NO_AUTOCAST = ('embedding', 'layerNormalization', 'batchNormalization')
# Permuted flat features pass through these unchanged (element-wise, no per-feature weights).
PERMUTATION_PRESERVING = ('dropout', 'activation', 'add')


def window_output(size, window, stride, padding):
    """TensorFlow's output size: `same` ceil(in / stride), `valid` ceil((in - window + 1) / stride)."""
    return math.ceil(size / stride) if padding == 'same' else math.ceil((size - window + 1) / stride)


def same_padding(size, window, stride):
    """TensorFlow's `same` padding of one dimension as (before, after): the odd pixel, if any, goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def window_padding(layer, height, width):
    """(left, right, top, bottom) padding of a conv2d / pooling layer on an input of height × width."""
    size = layer['kernelSize'] if layer['type'] == 'conv2d' else layer['poolSize']
    if layer['padding'] != 'same':
        return (0, 0, 0, 0)
    top, bottom = same_padding(height, size[0], layer['strides'][0])
    left, right = same_padding(width, size[1], layer['strides'][1])
    return (left, right, top, bottom)


def activate(x, activation, channels_first=False):
    if activation == 'relu':
        return torch.relu(x)
    if activation == 'sigmoid':
        return torch.sigmoid(x)
    if activation == 'tanh':
        return torch.tanh(x)
    if activation == 'softmax':
        return torch.softmax(x, dim=1 if channels_first else -1)  # TF's last axis = channels, axis 1 in NCHW
    if activation == 'gelu':
        # Keras's exact gelu; PyTorch runs it as one op (TensorFlow as five, see runtime-rules.ts).
        return F.gelu(x)
    return x  # linear


def is_image(x):
    return x.dim() == 4


def graph_sources(layers):
    """Per layer, the sources of its inputs: -1 for the model input, else an earlier layer's index."""
    index_by_id = {layer['id']: i for i, layer in enumerate(layers) if 'id' in layer}
    return [
        [-1 if name == MODEL_INPUT else index_by_id[name] for name in layer['inputs']] if 'inputs' in layer else [i - 1]
        for i, layer in enumerate(layers)
    ]


def output_shape(layer, shapes):
    """TensorFlow's per-sample output shape (as src/spec/model-shapes.ts; the spec was validated there)."""
    shape = shapes[0]
    kind = layer['type']
    if kind == 'dense':
        return shape[:-1] + [layer['units']]
    if kind in ('conv2d', 'maxPooling2d', 'averagePooling2d'):
        size = layer['kernelSize'] if kind == 'conv2d' else layer['poolSize']
        return [window_output(shape[0], size[0], layer['strides'][0], layer['padding']),
                window_output(shape[1], size[1], layer['strides'][1], layer['padding']),
                layer['filters'] if kind == 'conv2d' else shape[2]]
    if kind == 'conv1d':
        return [window_output(shape[0], layer['kernelSize'], layer['strides'], layer['padding']), layer['filters']]
    if kind in ('globalAveragePooling1d', 'globalAveragePooling2d'):
        return [shape[-1]]
    if kind == 'flatten':
        return [math.prod(shape)]
    if kind == 'embedding':
        return [shape[0], layer['units']]
    if kind == 'concatenate':
        return shape[:-1] + [sum(s[-1] for s in shapes)]
    return list(shape)  # dropout, activation, normalisations, add, multiHeadAttention (the query's shape)


class Layer:
    """One layer: its compute dtype, whether it autocasts, and `__call__(inputs, training, seed)`."""

    autocast = True

    def __init__(self, layer, dtype):
        self.layer, self.dtype = layer, dtype
        self.half = dtype != torch.float32


class Dense(Layer):
    def __init__(self, layer, dtype, kernel, bias):
        super().__init__(layer, dtype)
        self.kernel, self.bias = kernel, bias

    def __call__(self, inputs, training, seed):
        y = inputs[0] @ self.kernel.to(self.dtype)
        if self.bias is not None:
            y = y + self.bias.to(self.dtype)
        return activate(y, self.layer['activation'])


class Conv2d(Layer):
    def __init__(self, layer, dtype, kernel, bias, padding):
        super().__init__(layer, dtype)
        self.kernel, self.bias = kernel, bias
        self.stride = tuple(layer['strides'])
        left, right, top, bottom = padding
        # conv2d pads symmetrically; TensorFlow's odd `same` pixel (even kernels or strides > 1) needs an explicit pad.
        self.explicit_pad = (left, right, top, bottom) if (left, top) != (right, bottom) else None
        self.conv_padding = (0, 0) if self.explicit_pad else (top, left)

    def __call__(self, inputs, training, seed):
        x = inputs[0]
        if self.explicit_pad:
            x = F.pad(x, self.explicit_pad)
        y = F.conv2d(x, self.kernel.to(self.dtype), None, self.stride, self.conv_padding)
        if self.bias is not None:
            y = y + self.bias.to(self.dtype).view(1, -1, 1, 1)
        return activate(y, self.layer['activation'], channels_first=True)


class Conv1d(Layer):
    """Sequences are [batch, length, channels] (TensorFlow's layout); conv1d runs on the transposed view."""

    def __init__(self, layer, dtype, kernel, bias, length):
        super().__init__(layer, dtype)
        self.kernel, self.bias, self.stride = kernel, bias, layer['strides']
        before, after = same_padding(length, layer['kernelSize'], self.stride) if layer['padding'] == 'same' else (0, 0)
        self.explicit_pad = (before, after) if before != after else None
        self.conv_padding = 0 if self.explicit_pad else before

    def __call__(self, inputs, training, seed):
        x = inputs[0].transpose(1, 2)
        if self.explicit_pad:
            x = F.pad(x, self.explicit_pad)
        y = F.conv1d(x, self.kernel.to(self.dtype), None, self.stride, self.conv_padding).transpose(1, 2)
        if self.bias is not None:
            y = y + self.bias.to(self.dtype)
        return activate(y, self.layer['activation'])


class Pool2d(Layer):
    def __init__(self, layer, dtype, padding):
        super().__init__(layer, dtype)
        self.size, self.stride, self.padding = tuple(layer['poolSize']), tuple(layer['strides']), padding
        self.average = layer['type'] == 'averagePooling2d'

    def __call__(self, inputs, training, seed):
        x = inputs[0]
        left, right, top, bottom = self.padding
        if not any(self.padding):
            return (F.avg_pool2d if self.average else F.max_pool2d)(x, self.size, self.stride)
        if not self.average:
            # TensorFlow's `same` pooling ignores padded positions: -inf padding never wins a max.
            return F.max_pool2d(F.pad(x, self.padding, value=-math.inf), self.size, self.stride)
        if (left, top) == (right, bottom) and 2 * max(left, top) <= min(self.size):
            return F.avg_pool2d(x, self.size, self.stride, (top, left), count_include_pad=False)
        # Asymmetric `same`: sum over the zero-padded window, divided by how many real positions it covers.
        padded = F.pad(x, self.padding)
        window = self.size[0] * self.size[1]
        counts = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), self.padding), self.size, self.stride) * window
        return F.avg_pool2d(padded, self.size, self.stride) * (window / counts)


class GlobalAveragePooling(Layer):
    """Keras's ops.mean: a 16-bit input is reduced in float32 and the mean cast back."""

    def __call__(self, inputs, training, seed):
        x = inputs[0]
        dims = (2, 3) if is_image(x) else (1,)
        return x.float().mean(dims).to(self.dtype) if self.half else x.mean(dims)


class Flatten(Layer):
    def __call__(self, inputs, training, seed):
        return inputs[0].reshape(inputs[0].shape[0], -1)


class Dropout(Layer):
    """tf.dropout: keep with probability 1 - rate, scale kept values by 1 / (1 - rate); masks seeded per layer."""

    def __init__(self, layer, dtype):
        super().__init__(layer, dtype)
        self.rate = layer['rate']

    def __call__(self, inputs, training, seed):
        x = inputs[0]
        return dropout(x, self.rate, seed) if training and self.rate > 0 else x


def dropout(x, rate, seed):
    generator = torch.Generator(device=x.device)
    generator.manual_seed(seed)
    keep = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) >= rate
    return x * (keep.to(x.dtype) * (1.0 / (1.0 - rate)))


class Activation(Layer):
    def __call__(self, inputs, training, seed):
        return activate(inputs[0], self.layer['activation'], channels_first=is_image(inputs[0]))


class Embedding(Layer):
    autocast = False

    def __init__(self, layer, dtype, table):
        super().__init__(layer, dtype)
        self.table = table

    def __call__(self, inputs, training, seed):
        return F.embedding(inputs[0], self.table).to(self.dtype)  # float32 rows, cast to the compute dtype


class LayerNormalization(Layer):
    """Keras 3 on PyTorch: F.layer_norm on a float32 copy of the input, the result cast to the compute dtype."""

    autocast = False

    def __init__(self, layer, dtype, gamma, beta):
        super().__init__(layer, dtype)
        self.gamma, self.beta = gamma, beta

    def __call__(self, inputs, training, seed):
        x = inputs[0].float()
        if is_image(x):  # Keras normalises the last axis, the channels: axis 1 here
            return F.layer_norm(x.permute(0, 2, 3, 1), self.gamma.shape, self.gamma, self.beta, self.layer['epsilon']).permute(0, 3, 1, 2).to(self.dtype)
        return F.layer_norm(x, self.gamma.shape, self.gamma, self.beta, self.layer['epsilon']).to(self.dtype)


class BatchNormalization(Layer):
    """
    Keras's BatchNormalization in float32 on a float32 copy: batch statistics while training (biased variance, as
    tf.nn.moments), moving statistics moved by m·moving + (1 − m)·batch in place; the moving ones otherwise. One native
    kernel (torch.native_batch_norm), whose saved mean and inverse deviation give the batch variance.
    """

    autocast = False

    def __init__(self, layer, dtype, gamma, beta, moving_mean, moving_variance):
        super().__init__(layer, dtype)
        self.gamma, self.beta, self.moving_mean, self.moving_variance = gamma, beta, moving_mean, moving_variance

    def __call__(self, inputs, training, seed):
        x = inputs[0].float()
        channels_last = not is_image(x)  # images are NCHW: channels on axis 1, as native_batch_norm wants
        if channels_last:
            x = x.reshape(-1, x.shape[-1]) if x.dim() > 1 else x
        eps, momentum = self.layer['epsilon'], self.layer['momentum']
        if training:
            out, mean, invstd = torch.native_batch_norm(x, self.gamma, self.beta, None, None, True, 0.0, eps)
            with torch.no_grad():
                self.moving_mean.mul_(momentum).add_(mean, alpha=1 - momentum)
                self.moving_variance.mul_(momentum).add_(invstd.pow(-2) - eps, alpha=1 - momentum)
        else:
            out = F.batch_norm(x, self.moving_mean, self.moving_variance, self.gamma, self.beta, False, 0.0, eps)
        if channels_last:
            out = out.reshape(inputs[0].shape)
        return out.to(self.dtype)


class Add(Layer):
    def __call__(self, inputs, training, seed):
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out


class Concatenate(Layer):
    def __call__(self, inputs, training, seed):
        return torch.cat(inputs, dim=1 if is_image(inputs[0]) else -1)


class MultiHeadAttention(Layer):
    """
    Keras 3's MultiHeadAttention with the ops TensorFlow runs (src/worker/attention.ts): per-head projections; the
    fused path (no dropout while training) scores in the compute dtype, cast to float32, scaled, causal mask by where on
    a boolean mask of the scores' shape, softmax in float32, probabilities cast back; the explicit path scales the query,
    and runs scores, a causal mask added as a large negative number, softmax, the mask multiplied in and dropout in the
    compute dtype. Then probabilities × values and the output projection.
    """

    def __init__(self, layer, dtype, weights):
        super().__init__(layer, dtype)
        self.weights = weights  # query/key/value/output kernels [in, heads·size] and biases (None without)

    def _project(self, x, name):
        kernel, bias = self.weights[name]
        heads = self.layer['heads']
        y = (x @ kernel.to(self.dtype)).reshape(x.shape[0], x.shape[1], heads, kernel.shape[1] // heads)
        if bias is not None:
            y = y + bias.to(self.dtype).reshape(heads, kernel.shape[1] // heads)
        return y

    def __call__(self, inputs, training, seed):
        query_in = inputs[0]
        value_in = inputs[1] if len(inputs) > 1 else query_in
        key_in = inputs[2] if len(inputs) > 2 else value_in
        layer = self.layer
        query, key, value = self._project(query_in, 'query'), self._project(key_in, 'key'), self._project(value_in, 'value')
        batch, query_length, heads = query_in.shape[0], query_in.shape[1], layer['heads']
        key_length = key_in.shape[1]
        scale = 1.0 / math.sqrt(layer['keySize'])
        by_head = lambda t: t.permute(0, 2, 1, 3)  # noqa: E731 — [batch, heads, length, size]
        causal = torch.ones(query_length, key_length, dtype=torch.bool, device=query.device).tril() if layer['causal'] else None
        if not (training and layer['dropout'] > 0):
            logits = (by_head(query) @ by_head(key).transpose(-1, -2)).float() * scale
            if causal is not None:
                mask = torch.logical_and(torch.ones_like(logits, dtype=torch.bool), causal)
                logits = torch.where(mask, logits, -0.7 * 3.38953e38)
            probabilities = torch.softmax(logits, dim=-1).to(self.dtype)
        else:
            scores = by_head(query * scale) @ by_head(key).transpose(-1, -2)
            if causal is not None:
                mask = causal.to(self.dtype)
                large_negative = -3e4 if self.dtype == torch.float16 else -1e9
                scores = scores + (1.0 - mask) * large_negative
            probabilities = torch.softmax(scores, dim=-1)
            if causal is not None:
                probabilities = probabilities * mask
            probabilities = dropout(probabilities, layer['dropout'], seed)
        context = (probabilities @ by_head(value)).permute(0, 2, 1, 3).reshape(batch, query_length, heads * layer['valueSize'])
        kernel, bias = self.weights['output']
        out = context @ kernel.to(self.dtype)
        if bias is not None:
            out = out + bias.to(self.dtype)
        return out


class Model:
    def __init__(self, layers, sources, params, state, outputs_probabilities, materialise):
        self.layers = layers
        self.sources = sources
        #: Trainable float32 variables in layer order (Keras's weight order within a layer).
        self.params = params
        #: Non-trainable float32 state (batch normalisation's moving statistics).
        self.state = state
        self.param_count = sum(p.numel() for p in params)
        #: The model ends in a softmax: the loss takes probabilities, else logits.
        self.outputs_probabilities = outputs_probabilities
        #: Per layer, per input: an index putting permuted flat features back in TensorFlow's order (or None); one
        #: more entry, for the model's output.
        self.materialise = materialise

    def forward(self, x, training=False, dropout_seed=1):
        values = []
        # Drop each output after its last consumer, as a runtime frees it: a reference held here keeps it alive.
        last_use = {}
        for index, sources in enumerate(self.sources):
            for source in sources:
                last_use[source] = index
        for index, layer in enumerate(self.layers):
            inputs = []
            for position, source in enumerate(self.sources[index]):
                value = x if source == -1 else values[source]
                order = self.materialise[index][position]
                if order is not None:
                    value = value[:, order]
                if layer.autocast and value.is_floating_point() and value.dtype != layer.dtype:
                    value = value.to(layer.dtype)  # Keras autocasts a layer's floating inputs to its compute dtype
                inputs.append(value)
            del value
            values.append(layer(inputs, training, dropout_seed + index))
            del inputs
            for source in self.sources[index]:
                if last_use.get(source) == index and source >= 0:
                    values[source] = None
        final = self.materialise[-1][0]  # a flattened image as the model's output: classes back in TensorFlow's order
        return values[-1] if final is None else values[-1][:, final]


def build_model(model_def, seed, compute_dtype, device):
    """compute_dtype: torch.float32, torch.bfloat16 or torch.float16 (the policy's); variables are float32."""
    uniform = Uniform(derive_seed(seed, 'weights'))
    layer_defs = model_def['layers']
    sources = graph_sources(layer_defs)
    input_shape = list(model_def['input'])  # per sample, TensorFlow order
    shapes, perms, params, state, layers, materialise = [], [], [], [], [], []

    def variable(values, requires_grad=True):
        return torch.tensor(np.asarray(values, dtype=np.float32), dtype=torch.float32, device=device, requires_grad=requires_grad)

    def glorot(tf_shape, fan_in, fan_out):
        limit = math.sqrt(6 / (fan_in + fan_out))
        return ((uniform.take(math.prod(tf_shape)) * 2 - 1) * limit).astype(np.float32).reshape(tf_shape)

    def zeros(units):
        return variable(np.zeros(units, np.float32))

    for index, layer in enumerate(layer_defs):
        dtype = torch.float32 if layer.get('dtype') == 'float32' else compute_dtype
        kind = layer['type']
        in_shapes = [input_shape if s == -1 else shapes[s] for s in sources[index]]
        in_perms = [None if s == -1 else perms[s] for s in sources[index]]
        shape = in_shapes[0]
        # A permuted flat input: a dense layer takes it as it is (kernel rows permuted below), element-wise layers
        # pass it on, anything else gets the features back in TensorFlow's order.
        keeps_perm = kind == 'dense' or (kind in PERMUTATION_PRESERVING and all(p is not None and np.array_equal(p, in_perms[0]) for p in in_perms))
        order = [None if p is None or keeps_perm else torch.as_tensor(np.argsort(p), device=device) for p in in_perms]
        materialise.append(order)
        out_perm = in_perms[0] if keeps_perm and kind != 'dense' else None
        if kind == 'dense':
            kernel = glorot([shape[-1], layer['units']], shape[-1], layer['units'])
            if in_perms[0] is not None:
                kernel = kernel[in_perms[0]]
            kernel = variable(kernel)
            bias = zeros(layer['units']) if layer['useBias'] else None
            params += [p for p in (kernel, bias) if p is not None]
            layers.append(Dense(layer, dtype, kernel, bias))
        elif kind == 'conv2d':
            kh, kw = layer['kernelSize']
            channels, filters = shape[2], layer['filters']
            tf_kernel = glorot([kh, kw, channels, filters], kh * kw * channels, kh * kw * filters)
            kernel = variable(np.ascontiguousarray(tf_kernel.transpose(3, 2, 0, 1)))
            bias = zeros(filters) if layer['useBias'] else None
            params += [p for p in (kernel, bias) if p is not None]
            layers.append(Conv2d(layer, dtype, kernel, bias, window_padding(layer, shape[0], shape[1])))
        elif kind == 'conv1d':
            k, channels, filters = layer['kernelSize'], shape[1], layer['filters']
            tf_kernel = glorot([k, channels, filters], k * channels, k * filters)
            kernel = variable(np.ascontiguousarray(tf_kernel.transpose(2, 1, 0)))
            bias = zeros(filters) if layer['useBias'] else None
            params += [p for p in (kernel, bias) if p is not None]
            layers.append(Conv1d(layer, dtype, kernel, bias, shape[0]))
        elif kind in ('maxPooling2d', 'averagePooling2d'):
            layers.append(Pool2d(layer, dtype, window_padding(layer, shape[0], shape[1])))
        elif kind in ('globalAveragePooling1d', 'globalAveragePooling2d'):
            layers.append(GlobalAveragePooling(layer, dtype))
        elif kind == 'flatten':
            if len(shape) == 3:
                # Feature t of the NCHW flatten is feature permutation[t] of TensorFlow's NHWC flatten.
                out_perm = np.arange(math.prod(shape)).reshape(shape).transpose(2, 0, 1).reshape(-1)
            layers.append(Flatten(layer, dtype))
        elif kind == 'dropout':
            layers.append(Dropout(layer, dtype))
        elif kind == 'activation':
            layers.append(Activation(layer, dtype))
        elif kind == 'embedding':
            table = (uniform.take(layer['vocab'] * layer['units']) * 2 - 1) * EMBEDDING_INIT_LIMIT
            table = variable(table.astype(np.float32).reshape(layer['vocab'], layer['units']))
            params.append(table)
            layers.append(Embedding(layer, dtype, table))
        elif kind in ('layerNormalization', 'batchNormalization'):
            units = shape[-1]
            gamma, beta = variable(np.ones(units, np.float32)), zeros(units)
            params += [gamma, beta]
            if kind == 'layerNormalization':
                layers.append(LayerNormalization(layer, dtype, gamma, beta))
            else:
                moving = [variable(np.zeros(units, np.float32), False), variable(np.ones(units, np.float32), False)]
                state += moving
                layers.append(BatchNormalization(layer, dtype, gamma, beta, *moving))
        elif kind == 'multiHeadAttention':
            query, value = in_shapes[0], in_shapes[1] if len(in_shapes) > 1 else in_shapes[0]
            key = in_shapes[2] if len(in_shapes) > 2 else value
            heads, key_size, value_size = layer['heads'], layer['keySize'], layer['valueSize']
            weights = {}
            for name, width, size in (('query', query[-1], key_size), ('key', key[-1], key_size), ('value', value[-1], value_size)):
                # EinsumDense kernels [in, heads, size]: Keras's compute_fans gives fan_in = heads·in, fan_out = size·in.
                kernel = variable(glorot([width, heads * size], heads * width, size * width))
                weights[name] = (kernel, zeros(heads * size) if layer['useBias'] else None)
            out = query[-1]
            kernel = variable(glorot([heads * value_size, out], value_size * heads, out * heads))
            weights['output'] = (kernel, zeros(out) if layer['useBias'] else None)
            for name in ('query', 'key', 'value', 'output'):
                params += [p for p in weights[name] if p is not None]
            layers.append(MultiHeadAttention(layer, dtype, weights))
        elif kind == 'add':
            layers.append(Add(layer, dtype))
        elif kind == 'concatenate':
            layers.append(Concatenate(layer, dtype))
        else:
            raise ValueError(f'unknown layer type {kind!r}')
        shapes.append(output_shape(layer, in_shapes))
        perms.append(out_perm)

    last = layer_defs[-1] if layer_defs else {}
    outputs_probabilities = last.get('activation') == 'softmax' and last['type'] in ('activation', 'dense', 'conv2d', 'conv1d')
    # A permuted flat output (a flattened image as the model's output): back to TensorFlow's class order.
    materialise.append([None if not perms or perms[-1] is None else torch.as_tensor(np.argsort(perms[-1]), device=device)])
    return Model(layers, sources, params, state, outputs_probabilities, materialise)
