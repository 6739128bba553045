/**
 * Keeps docs/spec-reference.md from drifting away from schemas/experiment.schema.json and from what the worked
 * example really expands to.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { planRuns } from '../../src/matrix/plan.js';
import { loadSpec } from '../../src/spec/load.js';

const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const DOC = readFileSync(root('docs/spec-reference.md'), 'utf8');
const SCHEMA = JSON.parse(readFileSync(root('schemas/experiment.schema.json'), 'utf8')) as unknown;
const EXAMPLE = root('docs/examples/include-exclude.yaml');

/** Every key of every `properties` map in the schema, at any depth (definitions and layer types included). */
function propertyNames(node: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(node)) {
    for (const item of node) propertyNames(item, found);
  } else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      if (key === 'properties' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
        for (const name of Object.keys(value)) found.add(name);
      }
      propertyNames(value, found);
    }
  }
  return found;
}

describe('docs/spec-reference.md', () => {
  const names = [...propertyNames(SCHEMA)].sort();

  it('finds the schema properties it guards', () => {
    // A sanity floor: if the walk broke, the test below would pass vacuously.
    expect(names).toEqual(expect.arrayContaining(['name', 'matrix', 'include', 'exclude', 'conv2d', 'dropout', 'dtype', 'noise']));
  });

  // In backticks, alone or as the last part of a dotted path (`optimizer.learningRate`).
  const escape = (text: string) => text.replace(/[$.*+?^()[\]{}|\\]/g, '\\$&');
  it.each(names)('documents schema property `%s`', (name) => {
    expect(DOC).toMatch(new RegExp(`\`(?:[\\w$]+\\.)*${escape(name)}\``));
  });

  it('has a section for every top-level key', () => {
    const topLevel = Object.keys((SCHEMA as { properties: Record<string, unknown> }).properties).filter((k) => k !== '$schema');
    for (const key of topLevel) expect(DOC).toMatch(new RegExp(`^## ${escape(key)}$`, 'm'));
  });

  it('states the cell count of the worked example, and the example plans to exactly that many cells', async () => {
    const stated = [...DOC.matchAll(/expands to (\d+) cells/g)].map((m) => Number(m[1]));
    expect(stated).toHaveLength(1);
    const spec = (await loadSpec(EXAMPLE)).spec;
    const plan = planRuns(spec);
    expect(plan.cells).toHaveLength(stated[0]!);
    expect(DOC).toContain(`${plan.runs.length} runs in ${plan.cells.length} cells`);
  });

  it('shows the example file verbatim', () => {
    expect(DOC).toContain(readFileSync(EXAMPLE, 'utf8').trimEnd());
  });
});
