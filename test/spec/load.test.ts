import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { formatMpxError, isMpxError, type MpxError, type MpxErrorCode } from '../../src/errors.js';
import { loadSpec, loadSpecText, MAX_SPEC_BYTES } from '../../src/spec/load.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/specs/', import.meta.url));
/** Fixture path as a user in the repository root would type it (the form messages show). */
const fixture = (name: string) => relative(process.cwd(), join(FIXTURES, name));

async function loadError(file: string): Promise<MpxError> {
  try {
    await loadSpec(file);
  } catch (error) {
    if (isMpxError(error)) return error;
    throw error;
  }
  throw new Error(`${file} loaded without an error`);
}

function textError(text: string | Uint8Array, file = 'spec.yaml'): MpxError {
  try {
    loadSpecText(text, file);
  } catch (error) {
    if (isMpxError(error)) return error;
    throw error;
  }
  throw new Error('the text loaded without an error');
}

/** [fixture in bad/, code, full rendered message with <F> standing for the fixture path]. */
const BAD: Array<[string, MpxErrorCode, string]> = [
  ['alias-bomb.yaml', 'SPEC_LIMIT', `<F>:3:8: aliases (*name) expand too much: more than 100 copies
  hint: write the values out instead of repeating aliases`],
  ['bad-loss-scale.yaml', 'SPEC_INVALID', `<F>:3:14: train.lossScale must be "dynamic", "none" or a number > 0 (at most 4294967296), got "dynamc"`],
  ['batch-too-large.yaml', 'SPEC_INVALID', `<F>:5:19: matrix.batchSize[1] must be at most 1048576, got 10000000
  hint: mpx caps this value so that a typo cannot exhaust the machine`],
  ['capacity-bad-budget.yaml', 'SPEC_INVALID', `<F>:3:21: capacity.budget must be a size such as 16GiB, 512MiB, 1.5GB or a number of bytes, got "16 gigs"`],
  ['capacity-min-above-max.yaml', 'SPEC_INVALID', `<F>:5:21: capacity.batchSize.min (512) must not be above capacity.batchSize.max (64)`],
  ['capacity-with-batch-size.yaml', 'SPEC_INVALID', `<F>:5:3: with capacity:, mpx searches the batch size; matrix.batchSize cannot be given too
  hint: remove matrix.batchSize; bound the search with capacity.batchSize: { min, max }`],
  ['capacity-with-memory-limit.yaml', 'SPEC_INVALID', `<F>:3:1: with capacity:, capacity.budget is every probe's memory budget; memoryLimit cannot be given too
  hint: remove memoryLimit (or move its value to capacity.budget)`],
  ['classes-mismatch.yaml', 'SPEC_INVALID', `<F>:5:14: models.custom: the model has 10 classes, but its last layer outputs 5 values
  hint: make the last layer output 10 values, or set classes: 5`],
  ['constructor-key.yaml', 'SPEC_INVALID', `<F>:3:3: key "constructor" is not allowed in a spec
  hint: __proto__, constructor and prototype are reserved names in JavaScript; rename the key`],
  ['deep-nesting.yaml', 'SPEC_LIMIT', `<F>:6:71: maps and lists are nested more than 64 levels deep
  hint: a spec needs only a few levels; check the indentation and brackets`],
  ['dense-after-conv.yaml', 'SPEC_INVALID', `<F>:7:9: models.convnet.layers[1]: dense needs a vector or a sequence [length, features], but gets [26, 26, 8]
  hint: add "- flatten: {}" before it`],
  ['duplicate-axis-value.yaml', 'SPEC_INVALID', `<F>:5:23: matrix.batchSize lists 32 twice, at [0] and [2]
  hint: each value of a list may appear only once`],
  ['duplicate-key.yaml', 'YAML_SYNTAX', `<F>:7:3: duplicate key "policy"; it is already set at line 5
  hint: keys of a map must be unique; remove or rename one of them`],
  ['empty-layer.yaml', 'SPEC_INVALID', `<F>:6:9: models.tiny.layers[0] is empty; a layer is a map with one key, the layer type
  hint: e.g. "- dense: {units: 10}"`],
  ['empty-matrix.yaml', 'SPEC_INVALID', `<F>:4:1: matrix has no axes and no include entries, so it has no cells to run
  hint: add an axis, e.g. policy: [float32, mixed_float16]`],
  ['seed-zero.yaml', 'SPEC_INVALID', `<F>:2:7: seed must be an integer ≥ 1, got 0
  hint: tfjs treats seed 0 as "no seed" (random), so seeds start at 1`],
  ['optimizer-shorthand.yaml', 'SPEC_INVALID', `<F>:3:14: train.optimizer must be a map, got "sgd"
  hint: write optimizer: { name: sgd }`],
  ['misplaced-preset-key.yaml', 'SPEC_INVALID', `<F>:5:5: "filters" in models.mlp only applies to preset: cnn
  hint: remove "filters", or use preset: cnn`],
  ['empty.yaml', 'SPEC_INVALID', `<F>: the file is empty; a spec needs at least name, models and matrix`],
  ['embedding-without-tokens.yaml', 'SPEC_INVALID', `<F>:6:20: models.net has an embedding layer, which needs integer token ids, but data kind is synthetic
  hint: use data: { kind: tokens, vocab: …, length: … }`],
  ['graph-add-shapes.yaml', 'SPEC_INVALID', `<F>:8:9: models.net.layers[2]: add needs inputs of one shape, but gets [32] from "wide" and [8] from "narrow"
  hint: add a dense (or 1×1 conv2d) projection on one branch so both have the same shape`],
  ['graph-cycle.yaml', 'SPEC_INVALID', `<F>:6:45: models.net.layers[0]: dense "a" takes input "c", which depends on this layer's own output: a cycle (a → c → b → a)
  hint: a model is a graph without cycles: break the loop`],
  ['graph-defined-later.yaml', 'SPEC_INVALID', `<F>:7:28: models.net.layers[1]: add takes input "b", which is defined after it (layer 3)
  hint: list layers in the order data flows through them: move it before this one`],
  ['graph-duplicate-id.yaml', 'SPEC_INVALID', `<F>:7:33: models.net.layers[1]: dense "block" repeats the id of layer 1
  hint: ids of layers must be unique`],
  ['graph-unknown-input.yaml', 'SPEC_INVALID', `<F>:8:25: models.net.layers[2]: add takes input "atn", but no layer has that id
  hint: did you mean "attn"?`],
  ['graph-unused-layer.yaml', 'SPEC_INVALID', `<F>:6:9: models.net.layers[0]: dense "side" is not used: no layer takes its output, and only the last layer is the model output
  hint: list "side" in a later layer's inputs, or remove it`],
  ['huge-number.yaml', 'SPEC_INVALID', `<F>:3:10: train.steps must be a finite number, got 1e400
  hint: the number is too large to hold (beyond about 1.8e308)`],
  ['many-problems.yaml', 'SPEC_INVALID', `<F>:2:10: repeats must be an integer from 1 to 100, got 0
<F>:5:10: train.steps must be an integer ≥ 1, got 0
<F>:6:22: train.optimizer.name must be one of adam, adamw, sgd, momentum, rmsprop, got "adamm"
  hint: did you mean "adam"?
<F>:8:23: unknown key "hiden" in models.mlp; expected one of: preset, input, hidden, classes
  hint: did you mean "hidden"?
<F>:10:12: matrix.policy[0] must be one of float32, mixed_float16, mixed_bfloat16, got "float16"
  hint: did you mean "float32"?
<F>:12:9: unknown key "polcy" in matrix.include[0]; expected one of: model, batchSize, policy, accumulationSteps, backend
  hint: did you mean "policy"?`],
  ['missing-matrix.yaml', 'SPEC_INVALID', `<F>:1:1: missing required key "matrix"
  hint: matrix: the cells to run (GitHub Actions strategy.matrix semantics)`],
  ['mnist-too-many-samples.yaml', 'SPEC_INVALID', `<F>:4:12: data.samples + data.evalSamples must be at most 10000 for kind: mnist, got 9000 + 2000
  hint: the mnist package ships 10000 images; training and evaluation images do not overlap`],
  ['mnist-wrong-input.yaml', 'SPEC_INVALID', `<F>:6:12: models.cifar.input must be [784] or [28, 28, 1] for data kind: mnist, got [32, 32, 3]
  hint: mnist images are 28×28 pixels with one grey channel`],
  ['momentum-with-adam.yaml', 'SPEC_INVALID', `<F>:3:28: train.optimizer.momentum only applies to name: momentum or rmsprop (this optimizer is adam)
  hint: remove momentum, or set name: momentum`],
  ['name-absolute.yaml', 'SPEC_INVALID', `<F>:1:7: name must be a safe file name: 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit, without '..', got "/tmp/results"`],
  ['name-dotdot.yaml', 'SPEC_INVALID', `<F>:1:7: name must be a safe file name: 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit, without '..', got "../../etc/cron.d/x"`],
  ['name-nul.yaml', 'SPEC_INVALID', `<F>:1:7: name must be a safe file name: 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit, without '..', got "run\\u0000.csv"`],
  ['negative-units.yaml', 'SPEC_INVALID', `<F>:6:25: models.tiny.layers[0].dense.units must be an integer ≥ 1, got -5`],
  ['not-a-map.yaml', 'SPEC_INVALID', `<F>:1:1: the spec must be a map, got a list
  hint: a spec is a map of keys such as name:, models: and matrix:`],
  ['pool-shrinks-to-zero.yaml', 'SPEC_INVALID', `<F>:8:9: models.small.layers[2]: maxPooling2d pool 2×2 does not fit its input 1×1 with padding valid
  hint: use padding: same, a smaller poolSize, fewer layers or a larger input`],
  ['proto-key.yaml', 'SPEC_INVALID', `<F>:2:1: key "__proto__" is not allowed in a spec
  hint: __proto__, constructor and prototype are reserved names in JavaScript; rename the key`],
  ['scalar-axis.yaml', 'SPEC_INVALID', `<F>:5:11: matrix.policy must be a list of values from float32, mixed_float16, mixed_bfloat16, got "mixed_float16"
  hint: use a list: policy: [mixed_float16]`],
  ['string-for-number.yaml', 'SPEC_INVALID', `<F>:3:10: train.steps must be an integer ≥ 1, got "ten"`],
  ['syntax-error.yaml', 'YAML_SYNTAX', `<F>:6:3: flow sequence in block collection must be sufficiently indented and end with a ]
  hint: the cause may be above this point: check the brackets, quotes and indentation that lead here`],
  ['tab-indent.yaml', 'YAML_SYNTAX', `<F>:3:1: tab used for indentation; YAML indents with spaces only
  hint: replace the tab with spaces`],
  ['tokens-into-dense.yaml', 'SPEC_INVALID', `<F>:7:16: models.net: dense reads the token ids directly; with data kind: tokens the model input must go to an embedding layer
  hint: start with "- embedding: { vocab: …, units: … }"`],
  ['two-documents.yaml', 'SPEC_INVALID', `<F>:6:1: the file holds 2 YAML documents; a spec is a single document
  hint: remove the "---" line, or put each spec in its own file`],
  ['two-layer-types.yaml', 'SPEC_INVALID', `<F>:7:9: models.tiny.layers[0] has 2 keys (dense, dropout); a layer is a map with exactly one key, the layer type
  hint: start each layer on its own "- " list item`],
  ['unknown-backend.yaml', 'SPEC_INVALID', `<F>:2:10: backend must be one of auto, tensorflow, wasm, cpu, torch, got "gpu"
  hint: use "tensorflow" (tfjs-node-gpu on CUDA) or "torch" (PyTorch, CUDA when available)`],
  ['unknown-layer-key.yaml', 'SPEC_INVALID', `<F>:6:28: unknown key "activaton" in models.tiny.layers[0].dense; expected one of: units, activation, useBias, dtype, id, inputs
  hint: did you mean "activation"?`],
  ['unknown-layer-type.yaml', 'SPEC_INVALID', `<F>:6:9: unknown layer type "dens" in models.tiny.layers[0]; expected one of: dense, conv2d, conv1d, maxPooling2d, averagePooling2d, globalAveragePooling1d, globalAveragePooling2d, flatten, dropout, activation, embedding, layerNormalization, batchNormalization, add, concatenate, multiHeadAttention
  hint: did you mean "dense"?`],
  ['unknown-matrix-key.yaml', 'SPEC_INVALID', `<F>:5:3: unknown key "batchsize" in matrix; expected one of: model, batchSize, policy, accumulationSteps, backend, include, exclude
  hint: did you mean "batchSize"?`],
  ['unknown-model-in-defaults.yaml', 'SPEC_INVALID', `<F>:5:10: unknown model "MLP" in defaults.model; models defines: mlp
  hint: did you mean "mlp"?`],
  ['unknown-model-in-exclude.yaml', 'SPEC_INVALID', `<F>:8:14: unknown model "transformer" in matrix.exclude[0].model; models defines: mlp, cnn
  hint: add it under models, or fix the name`],
  ['unknown-model-in-include.yaml', 'SPEC_INVALID', `<F>:7:16: unknown model "mpl" in matrix.include[0].model; models defines: mlp
  hint: did you mean "mlp"?`],
  ['unknown-model-in-matrix.yaml', 'SPEC_INVALID', `<F>:6:16: unknown model "cnnn" in matrix.model[1]; models defines: mlp, cnn
  hint: did you mean "cnn"?`],
  ['unknown-policy.yaml', 'SPEC_INVALID', `<F>:5:21: matrix.policy[1] must be one of float32, mixed_float16, mixed_bfloat16, got "mixed_fp16"
  hint: did you mean "mixed_float16"?`],
  ['unknown-preset.yaml', 'SPEC_INVALID', `<F>:3:18: models.net.preset must be one of mlp, cnn, transformer, resnet, got "vgg"
  hint: or leave out "preset" and write the model out (input, layers)`],
  ['unknown-top-key.yaml', 'SPEC_INVALID', `<F>:2:1: unknown key "seeds" at the top level; expected one of: name, description, seed, repeats, backend, data, train, models, defaults, matrix, memoryLimit, capacity, maxRuns
  hint: did you mean "seed"?`],
  ['unknown-tag.yaml', 'YAML_SYNTAX', `<F>:4:11: unknown YAML tag !foo; specs use plain YAML values
  hint: remove !foo`],
  ['unresolved-alias.yaml', 'YAML_SYNTAX', `<F>:5:11: alias *policies has no anchor &policies before it
  hint: define "&name" on a value above the alias`],
  ['warmup-not-below-steps.yaml', 'SPEC_INVALID', `<F>:4:16: train.warmupSteps (5) must be less than train.steps (5)
  hint: warm-up updates are not timed; leave at least one timed update`],
  ['weight-decay-with-adam.yaml', 'SPEC_INVALID', `<F>:3:28: train.optimizer.weightDecay only applies to name: adamw (this optimizer is adam)
  hint: remove weightDecay, or set name: adamw`],
  ['zero-batch-size.yaml', 'SPEC_INVALID', `<F>:5:15: matrix.batchSize[0] must be an integer ≥ 1, got 0`],
];

describe('bad specs: one fixture per problem, full message with file:line:col', () => {
  it.each(BAD)('%s', async (name, code, expected) => {
    const file = fixture(`bad/${name}`);
    const error = await loadError(file);
    expect(error.code).toBe(code);
    expect(formatMpxError(error)).toBe(expected.split('<F>').join(file));
  });

  it('has a test case for every bad fixture', () => {
    expect(readdirSync(join(FIXTURES, 'bad')).sort()).toEqual(BAD.map(([name]) => name).sort());
  });

  it('reports every schema problem of a file, sorted by position, with the first as the error itself', async () => {
    const error = await loadError(fixture('bad/many-problems.yaml'));
    expect(error.related).toHaveLength(5);
    const lines = [error, ...error.related].map((e) => e.line ?? 0);
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
    expect(error.related.every((e) => e.file === error.file && e.related.length === 0)).toBe(true);
  });
});

describe('reading files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mpx-spec-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports a missing file with a hint to check the path', async () => {
    const error = await loadError('experiments/does-not-exist.yaml');
    expect(error.code).toBe('FILE_NOT_FOUND');
    expect(formatMpxError(error)).toBe(
      `experiments/does-not-exist.yaml: file not found\n  hint: check the path; relative paths start from ${process.cwd()}`,
    );
  });

  it('reports a directory as not a file', async () => {
    const error = await loadError(dir);
    expect(error.code).toBe('NOT_A_FILE');
    expect(formatMpxError(error)).toBe(`${dir}: is a directory, not a spec file\n  hint: pass the spec files inside it, e.g. ${dir}/*.yaml`);
  });

  it('refuses a file over 1 MiB before reading it', async () => {
    const file = join(dir, 'big.yaml');
    writeFileSync(file, `name: big\n#${'x'.repeat(MAX_SPEC_BYTES)}\n`);
    const error = await loadError(file);
    expect(error.code).toBe('SPEC_LIMIT');
    expect(formatMpxError(error)).toBe(
      `${file}: the file is ${MAX_SPEC_BYTES + 12} bytes; a spec may be at most ${MAX_SPEC_BYTES} bytes (1 MiB)\n` +
        '  hint: is this the right file? a spec is a short YAML file of settings',
    );
  });

  it('applies the same limit to text', () => {
    expect(textError(`#${'x'.repeat(MAX_SPEC_BYTES)}`).code).toBe('SPEC_LIMIT');
  });

  it('names the line and column of the first byte that is not UTF-8', () => {
    const bytes = Buffer.concat([
      Buffer.from('name: ok\ndescription: caf'),
      Buffer.from([0xe9]), // "é" in Latin-1
      Buffer.from(' au lait\n'),
    ]);
    const error = textError(bytes, 'latin1.yaml');
    expect(error.code).toBe('YAML_SYNTAX');
    expect(formatMpxError(error)).toBe(
      'latin1.yaml:2:17: the file is not valid UTF-8 (byte 0xe9)\n  hint: save the file with UTF-8 encoding',
    );
  });

  it('counts columns in characters after multi-byte text', () => {
    const bytes = Buffer.concat([Buffer.from('name: ok\ndescription: é€'), Buffer.from([0xc3, 0x28])]);
    const error = textError(bytes);
    expect([error.line, error.col]).toEqual([2, 16]);
  });

  it('recognises UTF-16', () => {
    const error = textError(Buffer.from('\ufeffname: x\n', 'utf16le'), 'utf16.yaml');
    expect(formatMpxError(error)).toBe('utf16.yaml:1:1: the file is UTF-16; specs must be UTF-8\n  hint: save the file with UTF-8 encoding');
  });

  it('accepts a UTF-8 byte order mark', () => {
    const text = readFileSync(join(FIXTURES, 'good/minimal.yaml'));
    const { spec, locator } = loadSpecText(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), text]), 'bom.yaml');
    expect(spec.name).toBe('minimal');
    expect(locator.position(['name'])).toEqual({ line: 2, col: 7 });
  });

  it('treats whitespace-only text as empty', () => {
    expect(formatMpxError(textError('\n\n   \n', 'blank.yaml'))).toBe(
      'blank.yaml: the file is empty; a spec needs at least name, models and matrix',
    );
    expect(textError('---\n').message).toMatch(/^the file is empty/);
  });
});

describe('more YAML-level problems', () => {
  it('rejects keys that are maps or lists', () => {
    const error = textError('name: x\n? [a, b]\n: 1\nmodels: {m: {preset: mlp}}\nmatrix: {policy: [float32]}\n');
    expect(formatMpxError(error)).toBe('spec.yaml:2:3: keys must be plain names, not lists or maps');
  });

  it('rejects map entries without a key (null keys would become "")', () => {
    expect(formatMpxError(textError('name: x\n: 3\n'))).toBe('spec.yaml:2:3: a map entry has no key\n  hint: write the key before ":"');
    expect(textError('name: x\nnull: 3\n').message).toBe('a map entry has no key');
  });

  it('rejects .nan and .inf with the text as written', () => {
    const error = textError('name: x\nseed: .nan\ntrain: {learningRate: -.inf}\nmodels: {m: {preset: mlp}}\nmatrix: {policy: [float32]}\n');
    expect(formatMpxError(error)).toBe(
      'spec.yaml:2:7: seed must be a finite number, got .nan\n' +
        'spec.yaml:3:23: train.learningRate must be a finite number, got -.inf\n' +
        '  hint: the number is too large to hold (beyond about 1.8e308)',
    );
  });

  it('rejects prototype keys anywhere, before converting to JavaScript', () => {
    const error = textError('name: x\nmodels:\n  m:\n    preset: mlp\n    prototype: 1\nmatrix: {policy: [float32]}\n');
    expect([error.line, error.col, error.message]).toEqual([5, 5, 'key "prototype" is not allowed in a spec']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('reports an alias bomb even when its anchors sit in a list', () => {
    const lol = Array.from({ length: 6 }, (_, i) => `  - &l${i + 1} [${Array(10).fill(i === 0 ? '"lol"' : `*l${i}`).join(', ')}]`);
    const error = textError(`name: x\nbomb:\n${lol.join('\n')}\n`);
    expect(error.code).toBe('SPEC_LIMIT');
  });

  it('rejects an alias inside the value it names (the data would contain itself)', () => {
    expect(formatMpxError(textError('name: x\nmatrix: &m\n  include: [*m]\n'))).toBe(
      'spec.yaml:3:13: alias *m is used inside the value it names\n  hint: a value cannot contain itself; write it out',
    );
  });

  it('survives deep brackets without recursing', () => {
    const depth = 100_000; // the composer alone overflows the stack at a few thousand
    const error = textError(`name: x\nx: ${'['.repeat(depth)}${']'.repeat(depth)}\n`);
    expect([error.code, error.line, error.col]).toEqual(['SPEC_LIMIT', 2, 67]);
  });

  it('reports every syntax error of the document', () => {
    const error = textError('a: b: c\nd: [\n');
    expect(formatMpxError(error)).toBe(
      'spec.yaml:1:4: nested mappings are not allowed in compact mappings\n' +
        'spec.yaml:3:1: flow sequence in block collection must be sufficiently indented and end with a ]\n' +
        '  hint: the cause may be above this point: check the brackets, quotes and indentation that lead here',
    );
  });
});
