import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseVisibleDevices, placeWorkers, type GpuInfo } from '../../src/runner/devices.js';

describe('placeWorkers', () => {
  const gpu = (index: number): GpuInfo => ({ index, name: 'GPU', memoryTotalBytes: null, driverVersion: null });

  it('runs one worker per core on CPU backends, pinned to no GPU', () => {
    expect(placeWorkers(false, [gpu(0), gpu(1)])).toEqual({ jobs: availableParallelism(), devices: [] });
    expect(placeWorkers(true, [])).toEqual({ jobs: availableParallelism(), devices: [] });
    expect(placeWorkers(false, [gpu(0)], undefined, '0,1')).toEqual({ jobs: availableParallelism(), devices: [] });
  });

  it('runs one worker per GPU when workers may train on GPUs', () => {
    expect(placeWorkers(true, [gpu(0), gpu(1), gpu(2)])).toEqual({ jobs: 3, devices: ['0', '1', '2'] });
  });

  it('--jobs sets the count, not the pinning', () => {
    expect(placeWorkers(true, [gpu(0), gpu(1)], 4)).toEqual({ jobs: 4, devices: ['0', '1'] });
    expect(placeWorkers(false, [gpu(0)], 1)).toEqual({ jobs: 1, devices: [] });
  });

  it('inside a scheduler task, uses the GPUs CUDA_VISIBLE_DEVICES names, not those nvidia-smi lists', () => {
    const node = [gpu(0), gpu(1), gpu(2), gpu(3)];
    // Slurm gave this task the node's GPUs 2 and 3
    expect(placeWorkers(true, node, undefined, '2,3')).toEqual({ jobs: 2, devices: ['2', '3'] });
    expect(placeWorkers(true, node, 1, '3')).toEqual({ jobs: 1, devices: ['3'] });
    // UUIDs and MIG ids are passed on unchanged
    expect(placeWorkers(true, node, undefined, 'GPU-8f2c,MIG-1a2b')).toEqual({ jobs: 2, devices: ['GPU-8f2c', 'MIG-1a2b'] });
    // set but empty, or hiding every GPU: no GPU, one worker per core
    expect(placeWorkers(true, node, undefined, '')).toEqual({ jobs: availableParallelism(), devices: [] });
    expect(placeWorkers(true, node, undefined, '-1')).toEqual({ jobs: availableParallelism(), devices: [] });
  });
});

describe('parseVisibleDevices', () => {
  it('reads CUDA_VISIBLE_DEVICES as CUDA does: up to the first invalid entry', () => {
    expect(parseVisibleDevices(undefined)).toBeNull();
    expect(parseVisibleDevices('')).toEqual([]);
    expect(parseVisibleDevices('0')).toEqual(['0']);
    expect(parseVisibleDevices(' 1, 0 ')).toEqual(['1', '0']);
    expect(parseVisibleDevices('0,-1,1')).toEqual(['0']);
    expect(parseVisibleDevices('NoDevFiles')).toEqual([]); // Slurm, for GPUs without device files
  });
});
