"""
One run, as trainRun in src/worker/train.ts: build data, measure memory (two updates from the initial weights, the
second measured, trainer thrown away), rebuild from the seed, train `steps` updates of `accumulationSteps`
micro-batches each, evaluate on the held-out split, return the measurements.
"""
import statistics
import time

import torch
import torch.nn.functional as F
from torch.profiler import record_function

from .data import batch_indices, build_dataset
from .loss_scale import LossScaler, all_finite
from . import rss
from .memory import FORWARD_BACKWARD, check_budget, measure_memory
from .model import build_model
from .optimizer import create_optimizer
from .seeded import derive_seed

PROBABILITY_EPSILON = 1e-7  # Keras's backend.epsilon(), the clip of cross-entropy on probabilities
EVAL_CHUNK = 256
COMPUTE_DTYPES = {'float32': torch.float32, 'mixed_bfloat16': torch.bfloat16, 'mixed_float16': torch.float16}


def cross_entropy(output, labels, outputs_probabilities):
    """Mean cross-entropy in float32 (crossEntropy in train.ts): clipped probabilities, or softmax on logits."""
    output = output.float()
    if not outputs_probabilities:
        return F.cross_entropy(output, labels)
    # −Σ onehot·log(clip(p)) per sample is −log(clip(p_label)): gather the label's probability first.
    picked = output.gather(1, labels.unsqueeze(1)).clamp(PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON)
    return -picked.log().mean()


def create_scaler(run):
    return LossScaler(run['train']['lossScale'] if run['policy'] == 'mixed_float16' else 'none')


class Trainer:
    """Model, optimizer and (when accumulating) persistent float32 gradient sums of one run."""

    def __init__(self, run, dataset, device):
        self.run, self.dataset, self.device = run, dataset, device
        self.model = build_model(run['model'], run['seed'], COMPUTE_DTYPES[run['policy']], device)
        self.optimizer = create_optimizer(run['train']['optimizer'])
        self.scaler = create_scaler(run)
        # One float32 sum per variable, allocated once, only when accumulating (Keras gradient-accumulation wrappers).
        self.accumulators = None
        self.train_x = torch.from_numpy(dataset.train_x)  # shares numpy's memory: no copy, no allocator bytes
        self.train_y = torch.from_numpy(dataset.train_y)
        # One range object reused for every micro-batch: PyTorch 1.13's record_function allocates in its constructor.
        self.forward_backward = record_function(FORWARD_BACKWARD)

    def batch(self, step, micro):
        k, size = self.run['accumulationSteps'], self.run['microBatchSize']
        index = torch.from_numpy(batch_indices(len(self.dataset.train_y), step, micro, size, k))
        return (self.train_x.index_select(0, index).to(self.device),
                self.train_y.index_select(0, index).to(self.device))

    def update(self, step, on_grads=None):
        """One optimizer update over accumulationSteps micro-batches; returns its mean loss."""
        k = self.run['accumulationSteps']
        params = self.model.params
        scale = self.scaler.scale
        loss_sum = 0.0
        grads = None
        for micro in range(k):
            x, y = self.batch(step, micro)
            with self.forward_backward:
                dropout_seed = derive_seed(self.run['seed'], f'dropout/{step}/{micro}')
                output = self.model.forward(x, training=True, dropout_seed=dropout_seed)
                loss = cross_entropy(output, y, self.model.outputs_probabilities)
                grads = torch.autograd.grad(loss * scale if scale != 1 else loss, params)
            del output, x, y
            if on_grads:
                on_grads(grads)
            loss_sum += loss.item()
            del loss
            if k > 1:
                self._accumulate(grads, micro)
                grads = None
        # One float32 update from the summed gradients; 1/k (mean loss) and 1/scale ride on the optimizer's scalars.
        summed = self.accumulators if k > 1 else grads
        finite = all_finite(summed) if self.scaler.checks_finiteness else True
        if self.scaler.update(finite):
            self.optimizer.apply(params, summed, 1.0 / (k * scale))
        return loss_sum / k

    @torch.no_grad()
    def _accumulate(self, grads, micro):
        if self.accumulators is None:
            self.accumulators = [torch.zeros_like(p) for p in self.model.params]
        for accumulator, g in zip(self.accumulators, grads):
            if micro == 0:
                accumulator.copy_(g)
            else:
                accumulator.add_(g)

    @torch.no_grad()
    def evaluate(self):
        """Accuracy on the held-out split in chunks of 256, under the run's policy."""
        x_all, y_all = self.dataset.eval_x, self.dataset.eval_y
        correct = 0
        for start in range(0, len(y_all), EVAL_CHUNK):
            x = torch.from_numpy(x_all[start : start + EVAL_CHUNK]).to(self.device)
            predicted = self.model.forward(x).argmax(-1).cpu()
            correct += int((predicted == torch.from_numpy(y_all[start : start + EVAL_CHUNK])).sum())
        return correct / len(y_all) if len(y_all) else 0.0


def train_run(run, device, memory_limit_bytes=None, mnist_dir=None, on_progress=None, engine=None):
    dataset = build_dataset(run['data'], run['model']['input'], run['model']['classes'], run['seed'], mnist_dir)
    memory = measure_memory(lambda: Trainer(run, dataset, device), device)
    check_budget(memory, memory_limit_bytes)

    trainer = Trainer(run, dataset, device)
    steps, warmup = run['train']['steps'], run['train']['warmupSteps']
    step_ms, losses = [], []
    for step in range(steps):
        started = time.perf_counter()
        losses.append(trainer.update(step))  # .item() waits for the device: the time is the update's
        elapsed = (time.perf_counter() - started) * 1000
        if step >= warmup:
            step_ms.append(elapsed)
        if on_progress:
            on_progress(step + 1, steps)
    # `steps: 0` is a memory probe (capacity search): an untrained model's accuracy says nothing, so none is taken.
    eval_accuracy = trainer.evaluate() if steps > 0 else float('nan')
    step_ms_median = statistics.median(step_ms) if step_ms else float('nan')
    measurements = {
        'backend': 'torch',
        'precision': 'native',
        'paramCount': trainer.model.param_count,
        'steps': steps,
        'stepMsMedian': step_ms_median,
        'samplesPerSecond': run['batchSize'] / (step_ms_median / 1000),
        'initialLoss': losses[0] if losses else float('nan'),
        'finalLoss': losses[-1] if losses else float('nan'),
        'evalAccuracy': eval_accuracy,
        'lossScaleFinal': trainer.scaler.scale if trainer.scaler.uses_scaling else None,
        'skippedSteps': trainer.scaler.skipped_steps,
        'peakBytes': memory.peak_bytes,
        'restingBytes': memory.resting_bytes,
        'paramsBytes': memory.params_bytes,
        'gradsBytes': memory.grads_bytes,
        'optimizerBytes': memory.optimizer_bytes,
        'accumulatorBytes': memory.accumulator_bytes,
        'activationsPeakBytes': memory.activations_peak_bytes,
        'peakModeledBytes': None,
        'activationsPeakModeledBytes': None,
        'peakTfModeledBytes': None,
        'activationsPeakTfModeledBytes': None,
        'peakTorchModeledBytes': None,
        'rssPeakBytes': rss.peak_bytes(),
        'wasmHeapBytes': None,
        'reservedPeakBytes': memory.reserved_peak_bytes,
        'engine': dict(engine or {}, memoryMethod=memory.method),
    }
    return measurements, trainer
