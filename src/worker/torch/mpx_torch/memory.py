"""
Memory of one training update, measured by the runtime (nothing is modelled here). As measureMemory in
src/worker/train.ts: a trainer is built, two updates run from the initial weights, the SECOND is measured (optimizer
slots exist then), and the trainer is thrown away.

- CUDA: the caching allocator's own counters. restingBytes = memory_allocated() before the update, peakBytes =
  max_memory_allocated() over it, reservedPeakBytes = max_memory_reserved() (what nvidia-smi shows, less the CUDA
  context). cuDNN/cuBLAS workspaces taken from the allocator count: they are real.
- CPU: PyTorch's profiler with profile_memory=True records every allocation and free of the CPU allocator with its
  address, size and the allocator's running total; profiling from before the trainer is built means that total is
  exactly the live bytes of the trainer's tensors. The events are replayed in time order: peakBytes is the largest
  total during the measured update, restingBytes the total when it starts.

Role columns only where bytes are attributable exactly: parameters, optimizer slots and accumulators are live for the
whole update, so their bytes at the peak are their tensors' bytes (4 per parameter under every policy). Gradients and
activations need the replay (CPU only): an allocation made inside a forward/backward range is an activation (forward
outputs, 16-bit weight copies, activation gradients, kernel scratch), unless it is one of the weight gradients that
range returns (known by address once it returns, and counted as such from its allocation). On CUDA they are null.
"""
import bisect

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from .errors import MemoryBudgetExceeded

MEASURED_UPDATE = 'mpx/measured-update'
FORWARD_BACKWARD = 'mpx/forward-backward'


class MemoryReport:
    def __init__(self, method, peak, resting, reserved_peak, persistent, grads, activations_peak):
        self.method = method
        self.peak_bytes = peak
        self.resting_bytes = resting
        self.reserved_peak_bytes = reserved_peak
        self.params_bytes, self.optimizer_bytes, self.accumulator_bytes = persistent
        self.grads_bytes = grads
        self.activations_peak_bytes = activations_peak


def tensor_bytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


def persistent_bytes(trainer):
    """(parameters with batch normalisation's moving statistics, optimizer slots, accumulators): alive throughout."""
    return (
        tensor_bytes(trainer.model.params) + tensor_bytes(trainer.model.state),
        tensor_bytes(trainer.optimizer.slots()),
        tensor_bytes(trainer.accumulators or []),
    )


def measure_memory(make_trainer, device):
    return _measure_cuda(make_trainer, device) if device.type == 'cuda' else _measure_cpu(make_trainer)


def _measure_cuda(make_trainer, device):
    trainer = make_trainer()
    trainer.update(0)
    torch.cuda.synchronize(device)
    resting = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    trainer.update(1)
    torch.cuda.synchronize(device)
    return MemoryReport(
        'torch.cuda.max_memory_allocated over the second update (caching-allocator bytes)',
        torch.cuda.max_memory_allocated(device),
        resting,
        torch.cuda.max_memory_reserved(device),
        persistent_bytes(trainer),
        None,
        None,
    )


def _storage_address(tensor):
    return tensor.data_ptr() - tensor.storage_offset() * tensor.element_size()


def _measure_cpu(make_trainer):
    grad_addresses = []  # per micro-batch of the measured update: the storages of the weight gradients it returned
    # Made before profiling starts: PyTorch 1.13's record_function allocates a tensor in its constructor.
    measured = record_function(MEASURED_UPDATE)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        trainer = make_trainer()
        trainer.update(0)
        with measured:
            trainer.update(1, on_grads=lambda grads: grad_addresses.append({_storage_address(g) for g in grads}))
    replay = _replay(profiler.profiler.kineto_results.experimental_event_tree(), grad_addresses)
    return MemoryReport(
        'torch.profiler allocation events of the CPU allocator, replayed (profile_memory=True)',
        replay['peak'],
        replay['resting'],
        None,
        persistent_bytes(trainer),
        replay['grads'],
        replay['activations_peak'],
    )


def _profile_events(roots):
    """
    (allocations, ranges): allocations as (time, order, address, signed bytes, allocator total, is ours) in time
    order; our mpx/* ranges as name -> [(start, end)]. An allocation made directly inside one of our ranges, not
    inside any op, is the profiler's own record_function handle (PyTorch 1.13 keeps it in a tensor): not ours.
    """
    allocations, ranges = [], {MEASURED_UPDATE: [], FORWARD_BACKWARD: []}
    stack = list(roots)
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        fields = event.extra_fields
        if isinstance(fields, torch._C._profiler._ExtraFields_Allocation):
            ours = event.parent is None or event.parent.name not in ranges
            allocations.append((event.start_time_ns, len(allocations), fields.ptr, fields.alloc_size,
                                fields.total_allocated, ours))
        elif event.name in ranges:
            ranges[event.name].append((event.start_time_ns, event.end_time_ns))
    allocations.sort()  # ties keep the order of the walk
    return allocations, ranges


def _replay(roots, grad_addresses):
    allocations, ranges = _profile_events(roots)
    (window_start, window_end), = ranges[MEASURED_UPDATE]
    forward_backward = sorted(ranges[FORWARD_BACKWARD])
    # The weight gradients a forward/backward range returns are the allocations live at their addresses when it ends.
    ends = [end for start, end in forward_backward if window_start <= start <= window_end]
    exact_roles = len(ends) == len(grad_addresses)
    marks = list(zip(ends, grad_addresses))

    def in_forward_backward(when):
        i = bisect.bisect_right(forward_backward, (when, float('inf'))) - 1
        return i >= 0 and when <= forward_backward[i][1]

    # First pass: one record [role, bytes] per allocation, shared by its free (so gradient marks act retroactively).
    # A free of a block allocated before this profile (possible when a process profiles twice) has no record.
    live, records = {}, []
    previous_total = None
    for when, _, address, size, allocator_total, ours in allocations:
        while marks and marks[0][0] < when:
            for a in marks.pop(0)[1]:
                if a in live:
                    live[a][0] = 'gradients'
        if size > 0:
            live[address] = [('activations' if in_forward_backward(when) else 'other') if ours else 'profiler', size]
            records.append(live[address])
        else:
            records.append(live.pop(address, None))
        # The allocator's own running total must move by each event's size: then the time order is its order.
        exact_roles = exact_roles and (previous_total is None or allocator_total - previous_total == size)
        previous_total = allocator_total

    if not exact_roles:  # order unknown: the allocator's totals alone, relative to where this profile began
        base = allocations[0][4] - allocations[0][3]
        before = [a[4] - base for a in allocations if a[0] < window_start]
        inside = [a[4] - base for a in allocations if window_start <= a[0] <= window_end]
        resting = before[-1] if before else 0
        return {'peak': max(inside + [resting]), 'resting': resting, 'grads': None, 'activations_peak': None}

    # Second pass: live bytes per role through the measured update (profiler handles not counted).
    by_role = {'activations': 0, 'gradients': 0, 'other': 0, 'profiler': 0}
    resting = peak = grads_at_peak = activations_peak = 0
    for (when, _, _, size, _, _), record in zip(allocations, records):
        if when > window_end:
            break
        if record is None:
            continue
        by_role[record[0]] += size
        counted = by_role['activations'] + by_role['gradients'] + by_role['other']
        if when < window_start:
            resting = peak = counted
            continue
        if counted > peak:
            peak, grads_at_peak = counted, by_role['gradients']
        activations_peak = max(activations_peak, by_role['activations'])
    return {'peak': peak, 'resting': resting, 'grads': grads_at_peak, 'activations_peak': activations_peak}


def check_budget(report, limit_bytes):
    if limit_bytes is not None and report.peak_bytes > limit_bytes:
        raise MemoryBudgetExceeded(report.peak_bytes, limit_bytes)

