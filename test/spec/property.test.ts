import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMpxError } from '../../src/errors.js';
import { loadSpecText } from '../../src/spec/load.js';

const SKETCH = readFileSync(new URL('../fixtures/specs/good/sketch.yaml', import.meta.url), 'utf8');

/** loadSpecText either returns a spec or throws an MpxError; anything else is a bug. */
function onlyMpxErrors(text: string | Uint8Array): boolean {
  try {
    loadSpecText(text, 'fuzz.yaml');
    return true;
  } catch (error) {
    if (isMpxError(error)) return true;
    throw error;
  }
}

/** Pieces of YAML syntax and of spec vocabulary, glued at random. */
const FRAGMENTS = [
  'name: x\n', 'models:\n', '  m: { preset: mlp }\n', '  c: { preset: cnn, input: [8, 8, 1] }\n', 'matrix:\n',
  '  policy: [float32]\n', '  batchSize: [', '32', ', 0', ']\n', 'train:\n', '  steps: ', '  warmupSteps: ', '1e400',
  '-1', '.nan', '0x10', 'null', '~', 'true', '"', "'", '\\0', '[', ']', '{', '}', ',', ': ', ':', '- ', '? ', '\t',
  '\n', '  ', '    ', '#', '---\n', '...\n', '&a ', '*a ', '*b ', '!!str ', '!foo ', '|\n', '>-\n', '%YAML 1.2\n',
  '__proto__: 1\n', 'constructor', 'layers:\n', '      - dense: { units: 10 }\n', '      - flatten:\n', 'conv2d',
  'kernelSize: [3, 0]', 'data: { kind: mnist }\n', 'lossScale: ', 'include:\n', '  - { model: ', '<<: *a\n', '\uFEFF',
  'é', '\u0000', '\r\n',
];

describe('loadSpecText never throws anything but MpxError', () => {
  it('on random strings', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), onlyMpxErrors), { numRuns: 500 });
  });

  it('on random unicode strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), onlyMpxErrors), { numRuns: 300 });
  });

  it('on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), onlyMpxErrors), { numRuns: 300 });
  });

  it('on random YAML-ish texts', () => {
    const text = fc.array(fc.constantFrom(...FRAGMENTS), { maxLength: 40 }).map((parts) => parts.join(''));
    fc.assert(fc.property(text, onlyMpxErrors), { numRuns: 1000 });
  });

  it('on the design sketch with random edits', () => {
    const edit = fc.record({
      at: fc.nat({ max: SKETCH.length }),
      remove: fc.nat({ max: 8 }),
      insert: fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ maxLength: 4 })),
    });
    const edited = fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) =>
      edits.reduce((text, e) => text.slice(0, e.at) + e.insert + text.slice(e.at + e.remove), SKETCH),
    );
    fc.assert(fc.property(edited, onlyMpxErrors), { numRuns: 1000 });
  });

  it('still loads the unedited sketch', () => {
    expect(loadSpecText(SKETCH, 'sketch.yaml').spec.name).toBe('seed-question');
  });
});
