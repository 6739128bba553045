"""
The resident set of the process: its peak for every run (rssPeakBytes), and, on request (MPX_TORCH_MEMORY_CHECK=1,
CPU only), a second figure for the peak of one update that shares nothing with the profiler's: how far the resident
set grows over it.

For the resident set to follow live buffers, glibc must hand every large block back to the kernel when it is freed:
prepare() (called before torch is imported) makes every block of 64 KiB or more its own mmap and trims freed heap
memory at once. Otherwise freed activations stay resident in the heap and a later buffer reuses them unseen, or a
freed-but-resident chunk counts as if live. This changes allocation behaviour for the whole process, which is why the
check is opt-in and runs after training and evaluation.
"""
import ctypes
import gc
import os
import resource

_M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 64 * 1024


def check_requested():
    return os.environ.get('MPX_TORCH_MEMORY_CHECK') == '1'


def prepare():
    libc = ctypes.CDLL(None)
    libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
    libc.mallopt(_M_TRIM_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def peak_bytes():
    """Peak resident set size of this process (getrusage ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _status_bytes(key):
    with open('/proc/self/status', encoding='utf-8') as status:
        for line in status:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f'no {key} in /proc/self/status')


def measure_update(update, resting_bytes):
    """
    Runs `update` (one more update of a trainer whose optimizer slots exist, as in the measured one) between a reset
    of the kernel's high-water mark (/proc/self/clear_refs 5) and a read of it: peak = resting bytes (the profiler's)
    + VmHWM after − VmRSS before. Counts what PyTorch's allocator does not see (memory libraries map themselves), and
    page and allocator rounding. Resets the high-water mark, so read peak_bytes() before.
    """
    gc.collect()
    ctypes.CDLL(None).malloc_trim(0)
    with open('/proc/self/clear_refs', 'w', encoding='ascii') as clear_refs:
        clear_refs.write('5')
    before = _status_bytes('VmRSS')
    update()
    return {
        'method': 'resident-set growth over one more update (VmHWM − VmRSS; glibc mmap threshold 64 KiB)',
        'peakBytes': resting_bytes + _status_bytes('VmHWM') - before,
    }
