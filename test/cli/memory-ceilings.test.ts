import { describe, expect, it } from 'vitest';
import { createMemoryCeilings, workerMemoryShare, type MachineMemoryFacts } from '../../src/cli/memory-ceilings.js';
import { WASM_HEAP_MAX_BYTES } from '../../src/runner/preflight.js';
import { runConfig } from '../helpers/builders.js';

const GiB = 2 ** 30;
const facts: MachineMemoryFacts = {
  totalBytes: 24 * GiB,
  jobs: 2,
  workerMemoryBytes: null,
  budgetOverrideBytes: null,
  hasTensorflowPackage: false,
  gpuCount: 0,
  torchHasCuda: false,
};

describe('workerMemoryShare', () => {
  it('is the machine divided by the jobs, or --worker-memory', () => {
    expect(workerMemoryShare(facts)).toEqual({ limitBytes: 12 * GiB, source: '24.0 GiB total ÷ 2 jobs' });
    expect(workerMemoryShare({ ...facts, jobs: 1 }).source).toBe('24.0 GiB total ÷ 1 job');
    expect(workerMemoryShare({ ...facts, workerMemoryBytes: GiB })).toEqual({ limitBytes: GiB, source: '--worker-memory' });
  });
});

describe('createMemoryCeilings', () => {
  const share = { limitBytes: 12 * GiB, source: '24.0 GiB total ÷ 2 jobs' };
  it('wasm, and auto without tfjs-node: the wasm heap and the machine share; the spec budget unless overridden', () => {
    const ceilings = createMemoryCeilings(facts);
    for (const backend of ['wasm', 'auto'] as const) {
      const run = runConfig('a', { backend, memoryLimitBytes: GiB });
      expect(ceilings(run)).toEqual({ budgetBytes: GiB, engine: { limitBytes: WASM_HEAP_MAX_BYTES, what: expect.stringContaining('wasm32') as string }, workerShare: share });
    }
    expect(createMemoryCeilings({ ...facts, budgetOverrideBytes: 2 * GiB })(runConfig('a', { memoryLimitBytes: GiB })).budgetBytes).toBe(2 * GiB);
  });

  it('tensors on a GPU are not checked against this machine\'s memory', () => {
    const gpu = createMemoryCeilings({ ...facts, hasTensorflowPackage: true, gpuCount: 1, torchHasCuda: true });
    expect(gpu(runConfig('a', { backend: 'auto' }))).toEqual({ budgetBytes: null, engine: null, workerShare: null });
    expect(gpu(runConfig('a', { backend: 'torch' })).workerShare).toBeNull();
    expect(gpu(runConfig('a', { backend: 'cpu' })).workerShare).toEqual(share);
    const cpuOnly = createMemoryCeilings({ ...facts, hasTensorflowPackage: true });
    expect(cpuOnly(runConfig('a', { backend: 'tensorflow' })).workerShare).toEqual(share);
    expect(cpuOnly(runConfig('a', { backend: 'torch' })).workerShare).toEqual(share);
  });
});
