import { describe, expect, it } from 'vitest';
import { collectMetadata, type MetadataInput, parseRunMetadata } from '../../src/results/metadata.js';
import { plan, records } from './fixture.js';

const input: MetadataInput = {
  mpxVersion: '0.1.0',
  nodeVersion: 'v20.20.2',
  tfjsVersions: { '@tensorflow/tfjs-core': '4.22.0', '@tensorflow/tfjs-backend-cpu': '4.22.0' },
  os: { platform: 'linux', release: '6.8.0', arch: 'x64' },
  cpus: [{ model: 'Test CPU @ 3.0GHz ' }, { model: 'Test CPU @ 3.0GHz' }],
  gpus: [],
  provenance: { commit: 'a'.repeat(40), dirty: true },
  spec: { name: 'golden', file: 'experiments/golden.yaml', sha256: 'b'.repeat(64) },
  date: new Date(Date.UTC(2025, 0, 30, 12, 0, 0)),
  plannedRuns: plan.runs.length,
  records,
};

describe('collectMetadata', () => {
  it('summarises the inputs', () => {
    expect(collectMetadata(input)).toEqual({
      mpxVersion: '0.1.0',
      nodeVersion: 'v20.20.2',
      tfjsVersions: { '@tensorflow/tfjs-backend-cpu': '4.22.0', '@tensorflow/tfjs-core': '4.22.0' },
      backends: ['cpu', 'tensorflow', 'wasm'],
      cpu: { model: 'Test CPU @ 3.0GHz', cores: 2 },
      gpus: [],
      os: 'linux 6.8.0 x64',
      hosts: [],
      git: { commit: 'a'.repeat(40), dirty: true },
      spec: { name: 'golden', file: 'experiments/golden.yaml', sha256: 'b'.repeat(64) },
      date: '2025-01-30T12:00:00.000Z',
      runs: { planned: 24, recorded: 19, reused: 0, ok: 10, failed: 1, timeout: 4, crashed: 1, oom: 3, unsupported: 0 },
      torch: null,
    });
  });

  it('records GPUs (name, driver, memory) and how many records were reused from an earlier run', () => {
    const gpus = [{ index: 0, name: 'NVIDIA H100 80GB HBM3', memoryTotalBytes: 85_520_809_984, driverVersion: '550.54.15' }];
    const meta = collectMetadata({ ...input, gpus, reusedRuns: 7 });
    expect(meta.gpus).toEqual([{ name: 'NVIDIA H100 80GB HBM3', driverVersion: '550.54.15', memoryTotalBytes: 85_520_809_984 }]);
    expect(meta.runs.reused).toBe(7);
  });

  it('lists the hosts that ran the records, once each, sorted (records from before hosts were recorded have none)', () => {
    const hosted = records.map((r, i) => (i % 3 === 2 ? r : { ...r, host: i % 3 === 0 ? 'node-b' : 'node-a' }));
    expect(collectMetadata({ ...input, records: hosted }).hosts).toEqual(['node-a', 'node-b']);
  });

  it('is pure: same input, same output; no CPU info gives a null model', () => {
    expect(collectMetadata(input)).toEqual(collectMetadata(input));
    expect(collectMetadata({ ...input, cpus: [], records: [] }).cpu).toEqual({ model: null, cores: 0 });
  });
});

describe('parseRunMetadata', () => {
  it('reads back what collectMetadata wrote', () => {
    const written = collectMetadata(input);
    expect(parseRunMetadata(JSON.stringify(written))).toEqual(written);
  });

  it('gives what it can from an older or broken file, and null for what is not metadata', () => {
    expect(parseRunMetadata('{"mpxVersion":"0.0.1","git":{"commit":"abc"}}')).toMatchObject({
      mpxVersion: '0.0.1',
      git: { commit: 'abc', dirty: null },
      gpus: [],
      cpu: { model: null, cores: 0 },
    });
    expect(parseRunMetadata('not json')).toBeNull();
    expect(parseRunMetadata('[1,2]')).toBeNull();
  });
});
