import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseNvidiaSmiGpuList } from '../../src/runner/devices.js';
import { parseComputeApps, startGpuMemorySampler } from '../../src/runner/gpu-memory.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/nvidia-smi/${name}`, import.meta.url), 'utf8');
const MiB = 1024 * 1024;

describe('nvidia-smi parsers (documented format; see test/fixtures/nvidia-smi/README.md)', () => {
  it('reads per-process GPU memory and skips values that are not numbers', () => {
    const apps = parseComputeApps(fixture('compute-apps.txt'));
    expect([...apps]).toEqual([
      [48213, 1536 * MiB],
      [48214, 22 * MiB],
    ]);
  });

  it('sums a process that uses two GPUs', () => {
    expect(parseComputeApps('7, 100\n7, 28\n').get(7)).toBe(128 * MiB);
  });

  it('reads nothing from an empty list or an error text', () => {
    expect(parseComputeApps('').size).toBe(0);
    expect(parseComputeApps('No devices were found\n').size).toBe(0);
  });

  it('reads the GPU list', () => {
    expect(parseNvidiaSmiGpuList(fixture('query-gpu.txt'))).toEqual([
      { index: 0, name: 'NVIDIA H100 80GB HBM3', memoryTotalBytes: 81559 * MiB, driverVersion: '550.54.15' },
      { index: 1, name: 'NVIDIA H100 80GB HBM3', memoryTotalBytes: 81559 * MiB, driverVersion: '550.54.15' },
    ]);
    expect(parseNvidiaSmiGpuList('')).toEqual([]);
  });
});

describe('startGpuMemorySampler', () => {
  it('keeps the peak of the sampled process only', async () => {
    const outputs = ['10, 100\n11, 900\n', '10, 300\n11, 900\n', '10, 200\n'];
    let calls = 0;
    const sampler = startGpuMemorySampler(10, () => Promise.resolve(outputs[Math.min(calls++, outputs.length - 1)]!), 5);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await sampler.stop()).toBe(300 * MiB);
  });

  it('gives null when the process never shows up or nvidia-smi is missing', async () => {
    expect(await startGpuMemorySampler(10, () => Promise.resolve(null), 5).stop()).toBeNull();
    expect(await startGpuMemorySampler(10, () => Promise.resolve('11, 5\n'), 5).stop()).toBeNull();
  });
});
