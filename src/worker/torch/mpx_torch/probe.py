"""
What this PyTorch can run here. Before a run, a tiny forward and backward of each op kind the model uses, in the
policy's 16-bit dtype on the run's device, finds the ops that are not implemented (PyTorch 1.13 has no float16 matmul,
conv or relu on CPU, for one) and turns them into a clear `unsupported` answer instead of a crash mid-run.
`--probe` reports the same for every policy, with the interpreter, PyTorch, devices and the BLAS in use.
"""
import ctypes
import math
import os
import platform
import re
import sys

import torch
import torch.nn.functional as F

from .model import activate, dropout

POLICY_DTYPES = {'mixed_bfloat16': torch.bfloat16, 'mixed_float16': torch.float16}

# Each probe gets t(*shape): a random tensor of the dtype on the device that requires grad. The ops are those
# model.py runs (F.pad before conv2d for TensorFlow's odd `same` pixel, -inf padding before max_pool2d).
OP_PROBES = {
    'matmul': lambda t: t(2, 3) @ t(3, 4),
    'bias add': lambda t: t(2, 3) + t(3),
    'conv2d': lambda t: F.conv2d(t(1, 2, 5, 5), t(3, 2, 3, 3), None, (1, 1), (1, 1)),
    'padding': lambda t: F.pad(t(1, 2, 4, 4), (0, 1, 0, 1)),
    'max_pool2d': lambda t: F.max_pool2d(F.pad(t(1, 2, 5, 5), (0, 1, 0, 1), value=-math.inf), 2, 2),
    'dropout': lambda t: dropout(t(8), 0.5, 1),
    'relu': lambda t: activate(t(2, 3), 'relu'),
    'sigmoid': lambda t: activate(t(2, 3), 'sigmoid'),
    'tanh': lambda t: activate(t(2, 3), 'tanh'),
    'softmax': lambda t: activate(t(2, 3), 'softmax'),
    'gelu': lambda t: activate(t(2, 3), 'gelu'),
    'conv1d': lambda t: F.conv1d(t(1, 2, 5), t(3, 2, 3), None, 1, 1),
    'avg_pool2d': lambda t: F.avg_pool2d(t(1, 2, 4, 4), 2, 2),
    'add': lambda t: t(2, 3) + t(2, 3),
    'concat': lambda t: torch.cat([t(2, 3), t(2, 2)], dim=-1),
    'batched matmul': lambda t: t(2, 3, 4) @ t(2, 4, 5),
}


def op_kinds(layers):
    """
    The op kinds the layers run in the policy's compute dtype (layers with dtype float32 run in float32; the
    normalisations, global pooling, the embedding's gather and the fused attention softmax run in float32 anyway).
    """
    kinds = []
    for layer in layers:
        if layer.get('dtype') == 'float32':
            continue
        kind = layer['type']
        if kind in ('dense', 'conv2d', 'conv1d'):
            kinds.append({'dense': 'matmul', 'conv2d': 'conv2d', 'conv1d': 'conv1d'}[kind])
            if kind != 'dense' and layer['padding'] == 'same':
                kinds.append('padding')
            if layer['useBias']:
                kinds.append('bias add')
            kinds.append(layer['activation'])
        elif kind == 'maxPooling2d':
            kinds.append('max_pool2d')
        elif kind == 'averagePooling2d':
            kinds.append('avg_pool2d')
        elif kind == 'dropout' and layer['rate'] > 0:
            kinds.append('dropout')
        elif kind == 'activation':
            kinds.append(layer['activation'])
        elif kind in ('add', 'concatenate'):
            kinds.append('add' if kind == 'add' else 'concat')
        elif kind == 'multiHeadAttention':
            kinds += ['matmul', 'batched matmul'] + (['bias add'] if layer['useBias'] else [])
            if layer['dropout'] > 0:  # Keras's explicit path: softmax and dropout in the compute dtype
                kinds += ['softmax', 'dropout']
    return [k for i, k in enumerate(kinds) if k in OP_PROBES and k not in kinds[:i]]


def _advice(policy, device):
    if device.type == 'cpu':
        return 'use mixed_bfloat16 on CPU, or a CUDA GPU' if policy == 'mixed_float16' else 'use float32, or a CUDA GPU'
    return 'use float32 or mixed_float16 on this GPU' if policy == 'mixed_bfloat16' else 'use float32 on this GPU'


def unsupported_reason(policy, kinds, device):
    """None when every op kind runs forward and backward in the policy's dtype on the device, else why not."""
    dtype = POLICY_DTYPES.get(policy)
    if dtype is None:
        return None

    def t(*shape):
        return torch.rand(shape, device=device).to(dtype).requires_grad_()

    for kind in kinds:
        try:
            OP_PROBES[kind](t).float().sum().backward()
        except RuntimeError as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            return (
                f'{policy} needs {kind} in {str(dtype).replace("torch.", "")} on {device.type}, which PyTorch '
                f'{torch.__version__} cannot run here ({first_line}): {_advice(policy, device)}'
            )
    return None


def _mapped_library(address):
    """The file mapped at `address` in this process, from /proc/self/maps."""
    with open('/proc/self/maps', encoding='utf-8') as maps:
        for line in maps:
            fields = line.split()
            start, end = (int(a, 16) for a in fields[0].split('-'))
            if start <= address < end and len(fields) >= 6:
                return fields[5]
    return None


def blas_library():
    """
    The library that serves torch's float32 BLAS calls: the one defining `sgemm_` as the dynamic linker resolves it
    for libtorch (global scope first, then libtorch_cpu's own dependencies), found by address in /proc/self/maps.
    Wheels that link MKL statically export no sgemm_ of another library: then torch's build config says, else
    "unknown".
    """
    torch.ones(4, 4) @ torch.ones(4, 4)
    handles = [ctypes.CDLL(None)]
    with open('/proc/self/maps', encoding='utf-8') as maps:
        torch_cpu = next((line.split()[-1] for line in maps if 'libtorch_cpu' in line), None)
    if torch_cpu:
        handles.append(ctypes.CDLL(torch_cpu))
    for handle in handles:
        try:
            address = ctypes.cast(handle.sgemm_, ctypes.c_void_p).value
        except AttributeError:
            continue
        path = _mapped_library(address) or 'unknown'
        if 'libtorch' in os.path.basename(path):
            break  # a BLAS linked into libtorch itself: only the build config can name it
        for name in ('openblas', 'mkl', 'blis', 'atlas', 'flexiblas'):
            if name in path.lower():
                return f'{name} ({path})'
        return f'reference BLAS ({path})' if 'libblas' in os.path.basename(path) else path
    built = re.search(r'BLAS_INFO=(\w+)', torch.__config__.show())
    return f'{built.group(1)} (torch build config)' if built and built.group(1) != 'generic' else 'unknown'


def cpu_name():
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as info:
            for line in info:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def policy_support(device):
    kinds = list(OP_PROBES)
    supported, reasons = {'float32': True}, {}
    for policy in POLICY_DTYPES:
        reason = unsupported_reason(policy, kinds, device)
        supported[policy] = reason is None
        if reason:
            reasons[policy] = reason
    return supported, reasons


def environment():
    """What `--probe` prints."""
    cuda = torch.cuda.is_available()
    cpu_policies, cpu_reasons = policy_support(torch.device('cpu'))
    cuda_policies, cuda_reasons = policy_support(torch.device('cuda:0')) if cuda else (None, None)
    return {
        'python': {'executable': sys.executable, 'version': platform.python_version()},
        'torch': torch.__version__,
        'cuda': cuda,
        'cudaVersion': torch.version.cuda,
        'cudaDevices': [
            {'name': torch.cuda.get_device_name(i), 'totalMemoryBytes': torch.cuda.get_device_properties(i).total_memory}
            for i in range(torch.cuda.device_count())
        ] if cuda else [],
        'cpu': cpu_name(),
        'threads': torch.get_num_threads(),
        'blas': blas_library(),
        'onednn': torch.backends.mkldnn.is_available(),
        'policies': {'cpu': cpu_policies, 'cuda': cuda_policies},
        'reasons': {'cpu': cpu_reasons, 'cuda': cuda_reasons},
    }
