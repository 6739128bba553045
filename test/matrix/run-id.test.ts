import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  cellDocument,
  cellIdFromDigest,
  createCellHasher,
  hashCell,
  hashRun,
  runIdFromDigest,
} from '../../src/matrix/run-id.js';
import type { ResolvedCell } from '../../src/matrix/run-id.js';
import { POLICIES } from '../../src/spec/types.js';

function cell(): ResolvedCell {
  return {
    model: {
      name: 'mlp',
      preset: 'mlp',
      input: [784],
      classes: 10,
      layers: [
        { type: 'dense', units: 512, activation: 'relu', useBias: true },
        { type: 'dense', units: 10, activation: 'softmax', useBias: true, dtype: 'float32' },
      ],
    },
    data: { kind: 'synthetic', samples: 4096, evalSamples: 1024, noise: 0.5 },
    train: {
      steps: 30,
      warmupSteps: 3,
      optimizer: { name: 'adam', learningRate: 0.001, momentum: 0 },
      lossScale: 'dynamic',
      timeoutSeconds: 300,
      retries: 0,
    },
    policy: 'mixed_float16',
    batchSize: 64,
    accumulationSteps: 2,
    seed: 1234,
    backend: 'auto',
  };
}

/** Rebuilds a value with every object's keys in reverse insertion order. */
function reversedKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(reversedKeys) as T;
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([key, item]) => [key, reversedKeys(item)]),
  ) as T;
}

describe('canonicalJson', () => {
  it('sorts keys at every depth and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('drops undefined members like JSON.stringify, and turns undefined array items into null', () => {
    expect(canonicalJson({ a: undefined, b: [undefined, 1] })).toBe('{"b":[null,1]}');
  });

  it('is independent of key order and parses back to the same value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const json = canonicalJson(value);
        expect(canonicalJson(reversedKeys(value))).toBe(json);
        expect(JSON.parse(json)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('refuses what JSON cannot hold', () => {
    expect(() => canonicalJson(undefined)).toThrow(TypeError);
    expect(() => canonicalJson({ n: 1n })).toThrow(TypeError);
  });
});

describe('hashCell / hashRun', () => {
  it('are 16 hex characters', () => {
    expect(hashCell(cell())).toMatch(/^[0-9a-f]{16}$/);
    expect(hashRun(cell(), 0)).toMatch(/^[0-9a-f]{16}$/);
  });

  it('do not depend on key order', () => {
    expect(hashCell(reversedKeys(cell()))).toBe(hashCell(cell()));
    expect(hashRun(reversedKeys(cell()), 2)).toBe(hashRun(cell(), 2));
  });

  it('ignore the model name and train.timeoutSeconds', () => {
    const renamed = cell();
    renamed.model.name = 'renamed';
    renamed.train.timeoutSeconds = 5;
    expect(hashCell(renamed)).toBe(hashCell(cell()));
    expect(hashRun(renamed, 1)).toBe(hashRun(cell(), 1));
  });

  const changes: Array<[string, (c: ResolvedCell) => void]> = [
    ['model layer', (c) => (c.model.layers[0] = { type: 'dense', units: 256, activation: 'relu', useBias: true })],
    ['model layer dtype', (c) => delete c.model.layers[1]?.dtype],
    ['model input', (c) => (c.model.input = [28, 28, 1])],
    ['model classes', (c) => (c.model.classes = 5)],
    ['model preset', (c) => (c.model.preset = null)],
    ['data', (c) => (c.data = { kind: 'mnist', samples: 4096, evalSamples: 1024 })],
    ['data samples', (c) => (c.data.samples = 100)],
    ['train steps', (c) => (c.train.steps = 31)],
    ['train warmupSteps', (c) => (c.train.warmupSteps = 0)],
    ['train optimizer', (c) => (c.train.optimizer.learningRate = 0.01)],
    ['train lossScale', (c) => (c.train.lossScale = 1024)],
    ['policy', (c) => (c.policy = 'float32')],
    ['batchSize', (c) => (c.batchSize = 128)],
    ['accumulationSteps', (c) => (c.accumulationSteps = 4)],
    ['seed', (c) => (c.seed = 1)],
    ['backend', (c) => (c.backend = 'wasm')],
  ];
  it.each(changes)('change with %s', (_name, change) => {
    const changed = cell();
    change(changed);
    expect(hashCell(changed)).not.toBe(hashCell(cell()));
    expect(hashRun(changed, 0)).not.toBe(hashRun(cell(), 0));
  });

  it('runs of one cell differ by repeat index, and differ from the cell id', () => {
    const ids = [0, 1, 2].map((repeat) => hashRun(cell(), repeat));
    expect(new Set([...ids, hashCell(cell())]).size).toBe(4);
  });
});

describe('createCellHasher', () => {
  it('gives the sha256 of the canonical cell document, as hashCell and hashRun do', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...POLICIES),
        fc.integer({ min: 1, max: 1 << 20 }),
        fc.integer({ min: 1, max: 64 }),
        fc.nat(),
        (policy, batchSize, accumulationSteps, repeat) => {
          const resolved = { ...cell(), policy, batchSize, accumulationSteps };
          const digest = createCellHasher(resolved)(resolved);
          const expected = createHash('sha256').update(canonicalJson(cellDocument(resolved))).digest('hex');
          expect(digest).toBe(expected);
          expect(cellIdFromDigest(digest)).toBe(hashCell(resolved));
          expect(runIdFromDigest(digest, repeat)).toBe(hashRun(resolved, repeat));
        },
      ),
    );
  });
});

describe('committed results keep their ids', () => {
  // Specs that existed before layer graphs, new layer types and optimizers: every cell id in their committed CSV
  // must still be the id the planner gives the cell, or `mpx run` would redo (and `mpx diff` flag) every one.
  it.each(['seed-question', 'seed-claims', 'ci-smoke', 'calibration-runtime'])('results/%s.csv', async (name) => {
    const { readFileSync } = await import('node:fs');
    const { loadSpec } = await import('../../src/spec/load.js');
    const { planRuns } = await import('../../src/matrix/plan.js');
    const { parseResultsCsv } = await import('../../src/results/table.js');
    const csv = `results/${name}.csv`;
    const meta = JSON.parse(readFileSync(`results/${name}.meta.json`, 'utf8')) as { spec: { file: string } };
    const planned = planRuns((await loadSpec(meta.spec.file)).spec).cells.map((c) => c.cellId);
    const committed = parseResultsCsv(readFileSync(csv, 'utf8'), name, csv).rows.map((row) => row.cellId);
    expect(committed.length).toBeGreaterThan(0);
    expect(planned).toEqual(expect.arrayContaining(committed));
  });
});
