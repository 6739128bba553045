"""
The seeded random streams of src/worker/random.ts, vectorised with numpy.

mulberry32 is counter-based: output n (0-based) depends only on the seed and on (n + 1) * 0x6d2b79f5 mod 2^32, so a
stream position is just a counter and any run of outputs is one vectorised computation. uint32 numpy arithmetic wraps
mod 2^32 exactly as JavaScript's Math.imul and `>>> 0` do, so the outputs are bit-identical to the TypeScript ones.
"""
import math
import struct

import numpy as np

_INCREMENT = 0x6D2B79F5
_ZERO_SEED = 0x9E3779B9  # createRandom's replacement for seed 0
_TWO_POW_32 = 4294967296.0


def _mulberry32(seed, start, count):
    """Outputs start .. start+count-1 of createRandom(seed), as float64 in [0, 1)."""
    base = (seed & 0xFFFFFFFF) or _ZERO_SEED
    counters = np.arange(start + 1, start + count + 1, dtype=np.uint64)
    t = ((base + counters * _INCREMENT) & 0xFFFFFFFF).astype(np.uint32)
    t = (t ^ (t >> np.uint32(15))) * (t | np.uint32(1))
    t ^= t + (t ^ (t >> np.uint32(7))) * (t | np.uint32(61))
    return (t ^ (t >> np.uint32(14))).astype(np.float64) / _TWO_POW_32


class Uniform:
    """createRandom(seed): a position in the stream; take(n) returns the next n draws."""

    def __init__(self, seed):
        self.seed = seed
        self.position = 0

    def take(self, count):
        values = _mulberry32(self.seed, self.position, count)
        self.position += count
        return values


class Normal:
    """
    createNormal(uniform): Box–Muller over pairs of uniforms, the cosine returned first and the sine kept as the spare
    for the next draw — the spare carries over between take() calls exactly as between calls of the TypeScript closure.
    """

    def __init__(self, uniform):
        self.uniform = uniform
        self.spare = None

    def take(self, count):
        head = []
        if self.spare is not None and count > 0:
            head = [self.spare]
            self.spare = None
            count -= 1
        pairs = (count + 1) // 2
        draws = self.uniform.take(2 * pairs)
        u = 1.0 - draws[0::2]  # (0, 1]: log(0) never happens
        v = draws[1::2]
        radius = np.sqrt(-2.0 * np.log(u))
        angle = 2.0 * math.pi * v
        values = np.empty(2 * pairs, dtype=np.float64)
        values[0::2] = radius * np.cos(angle)
        values[1::2] = radius * np.sin(angle)
        if count % 2:
            self.spare = float(values[-1])
            values = values[:-1]
        return np.concatenate([np.asarray(head, dtype=np.float64), values]) if head else values


def derive_seed(seed, stream):
    """deriveSeed: FNV-1a-style over the stream name's UTF-16 code units, with Math.imul's 32-bit wrap."""
    encoded = stream.encode('utf-16-le')
    value = (2166136261 ^ seed) & 0xFFFFFFFF
    for code in struct.unpack(f'<{len(encoded) // 2}H', encoded):  # charCodeAt: UTF-16 code units
        value = ((value ^ code) * 16777619) & 0xFFFFFFFF
    return value or 1
