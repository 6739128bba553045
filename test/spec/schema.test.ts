import { describe, expect, it } from 'vitest';
import { SPEC_DEFAULTS } from '../../src/spec/defaults.js';
import { ACTIVATIONS, BACKEND_CHOICES, POLICIES } from '../../src/spec/types.js';
import { EXPERIMENT_SCHEMA, type SchemaNode } from '../../src/spec/schema.js';

const definitions = EXPERIMENT_SCHEMA.definitions ?? {};
const deref = (node: SchemaNode): SchemaNode =>
  node.$ref === undefined ? node : { ...definitions[node.$ref.replace('#/definitions/', '')], ...node };

/** Every [path, schema] in the schema, depth first. */
function* walk(node: unknown, path: string): Generator<[string, SchemaNode]> {
  if (node === null || typeof node !== 'object') return;
  yield [path, node];
  for (const [key, child] of Object.entries(node)) {
    if (key === 'default' || key === 'enum' || key === 'const' || key === 'required') continue;
    yield* walk(child, `${path}/${key}`);
  }
}

/** The schema at a property path, following $ref and the first oneOf branch that has the property. */
function at(path: string[]): SchemaNode {
  let node = deref(EXPERIMENT_SCHEMA);
  for (const key of path) {
    const candidates = [node, ...(node.oneOf ?? []).map(deref)];
    const found = candidates.map((c) => c.properties?.[key]).find((p) => p !== undefined);
    if (found === undefined) throw new Error(`no property ${path.join('.')}`);
    node = deref(found);
  }
  return node;
}

describe('schemas/experiment.schema.json', () => {
  it('describes every property', () => {
    const missing = [...walk(EXPERIMENT_SCHEMA, '#')]
      .filter(([path]) => /\/properties\/[^/]+$/.test(path))
      .filter(([, node]) => deref(node).description === undefined)
      .map(([path]) => path);
    expect(missing).toEqual([]);
  });

  it('closes every map: additionalProperties is false wherever properties are listed', () => {
    const open = [...walk(EXPERIMENT_SCHEMA, '#')]
      .filter(([, node]) => node.properties !== undefined && (node as { additionalProperties?: unknown }).additionalProperties !== false)
      .map(([path]) => path);
    expect(open).toEqual([]);
  });

  it('documents the defaults that resolve applies', () => {
    const d = SPEC_DEFAULTS;
    const cases: Array<[string[], unknown]> = [
      [['description'], d.description],
      [['seed'], d.seed],
      [['repeats'], d.repeats],
      [['backend'], d.backend],
      [['maxRuns'], d.maxRuns],
      [['data'], d.data],
      [['data', 'kind'], d.data.kind],
      [['data', 'samples'], d.data.samples],
      [['data', 'evalSamples'], d.data.evalSamples],
      [['data', 'noise'], d.data.noise],
      [['train'], d.train],
      [['train', 'steps'], d.train.steps],
      [['train', 'warmupSteps'], d.train.warmupSteps],
      [['train', 'optimizer'], d.train.optimizer],
      [['train', 'optimizer', 'name'], d.train.optimizer.name],
      [['train', 'optimizer', 'learningRate'], d.train.optimizer.learningRate],
      [['train', 'optimizer', 'momentum'], d.train.optimizer.momentum],
      [['train', 'lossScale'], d.train.lossScale],
      [['train', 'timeoutSeconds'], d.train.timeoutSeconds],
      [['defaults'], d.defaults],
      [['defaults', 'batchSize'], d.defaults.batchSize],
      [['defaults', 'policy'], d.defaults.policy],
      [['defaults', 'accumulationSteps'], d.defaults.accumulationSteps],
      [['capacity', 'metric'], d.capacity.metric],
      [['capacity', 'batchSize'], d.capacity.batchSize],
      [['capacity', 'batchSize', 'min'], d.capacity.batchSize.min],
      [['capacity', 'batchSize', 'max'], d.capacity.batchSize.max],
      [['capacity', 'confirmSteps'], d.capacity.confirmSteps],
      [['capacity', 'margin'], d.capacity.margin],
    ];
    for (const [path, expected] of cases) expect(at(path).default, path.join('.')).toEqual(expected);

    const props = (name: string) => definitions[name]?.properties ?? {};
    expect(props('mnistData').samples?.default).toBe(d.data.samples);
    expect(props('mnistData').evalSamples?.default).toBe(d.data.evalSamples);
    for (const key of ['input', 'hidden', 'classes'] as const) expect(props('mlpModel')[key]?.default, key).toEqual(d.mlp[key]);
    for (const key of ['input', 'filters', 'kernelSize', 'dense', 'classes'] as const) {
      expect(props('cnnModel')[key]?.default, key).toEqual(d.cnn[key]);
    }
    const layer = (type: string) => deref(definitions.layer?.properties?.[type] ?? {}).properties ?? {};
    expect(deref(layer('dense').activation ?? {}).default).toBe(d.layer.activation);
    expect(layer('dense').useBias?.default).toBe(d.layer.useBias);
    expect(deref(layer('conv2d').strides ?? {}).default).toBe(d.layer.strides);
    expect(deref(layer('conv2d').padding ?? {}).default).toBe(d.layer.padding);
    expect(deref(layer('maxPooling2d').poolSize ?? {}).default).toBe(d.layer.poolSize);
  });

  it('lists the same choices as the TypeScript types', () => {
    expect(at(['backend']).enum).toEqual([...BACKEND_CHOICES]);
    expect(at(['defaults', 'policy']).enum).toEqual([...POLICIES]);
    expect(at(['matrix', 'policy']).items?.enum).toEqual([...POLICIES]);
    expect(deref(definitions.matrixEntry?.properties?.policy ?? {}).enum).toEqual([...POLICIES]);
    expect([...(definitions.activation?.enum ?? [])].sort()).toEqual([...ACTIVATIONS].sort());
  });
});
