import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { placeWorkers, type GpuInfo } from '../../src/runner/devices.js';

describe('placeWorkers', () => {
  const gpu = (index: number): GpuInfo => ({ index, name: 'GPU', memoryTotalBytes: null, driverVersion: null });

  it('runs one worker per core on CPU backends, pinned to no GPU', () => {
    expect(placeWorkers(false, [gpu(0), gpu(1)])).toEqual({ jobs: availableParallelism(), gpus: [] });
    expect(placeWorkers(true, [])).toEqual({ jobs: availableParallelism(), gpus: [] });
  });

  it('runs one worker per GPU when workers may train on GPUs', () => {
    expect(placeWorkers(true, [gpu(0), gpu(1), gpu(2)])).toEqual({ jobs: 3, gpus: [gpu(0), gpu(1), gpu(2)] });
  });

  it('--jobs sets the count, not the pinning', () => {
    expect(placeWorkers(true, [gpu(0), gpu(1)], 4)).toEqual({ jobs: 4, gpus: [gpu(0), gpu(1)] });
    expect(placeWorkers(false, [gpu(0)], 1)).toEqual({ jobs: 1, gpus: [] });
  });
});
