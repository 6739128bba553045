import { describe, expect, it } from 'vitest';
import { expandMatrix, expandMatrixTraced } from '../../src/matrix/expand.js';
import type { Axis, CellAxes, MatrixDef, MatrixEntry } from '../../src/spec/types.js';

/** Defaults chosen to be distinct from every matrix value below, so the table shows what came from defaults. */
const DEFAULTS: CellAxes = { model: 'dflt', batchSize: 1, policy: 'float32', accumulationSteps: 1, backend: 'auto' };

function matrix(
  axes: Partial<Pick<MatrixDef, Axis>>,
  extra: { include?: MatrixEntry[]; exclude?: MatrixEntry[]; axisOrder?: Axis[] } = {},
): MatrixDef {
  return {
    ...axes,
    axisOrder: extra.axisOrder ?? (Object.keys(axes) as Axis[]),
    include: extra.include ?? [],
    exclude: extra.exclude ?? [],
  };
}

/** Cells as [model, batchSize, policy, accumulationSteps] rows: easy to compare with GitHub's documented tables. */
function rows(def: MatrixDef, defaults: CellAxes = DEFAULTS): Array<[string, number, string, number]> {
  return expandMatrix(def, defaults).map((c) => [c.model, c.batchSize, c.policy, c.accumulationSteps]);
}

describe('expandMatrix: GitHub documented examples', () => {
  it('multi-dimension matrix: first key varies slowest (version × os)', () => {
    // version: [10, 12, 14], os: [ubuntu-latest, windows-latest] → 6 jobs, {10, ubuntu}, {10, windows}, {12, ubuntu}, …
    const def = matrix(
      { batchSize: [10, 12, 14], model: ['ubuntu', 'windows'] },
      { axisOrder: ['batchSize', 'model'] },
    );
    expect(rows(def)).toEqual([
      ['ubuntu', 10, 'float32', 1],
      ['windows', 10, 'float32', 1],
      ['ubuntu', 12, 'float32', 1],
      ['windows', 12, 'float32', 1],
      ['ubuntu', 14, 'float32', 1],
      ['windows', 14, 'float32', 1],
    ]);
  });

  it('"Expanding or adding matrix configurations" (fruit/animal/color/shape)', () => {
    // fruit → model (apple, pear, banana), animal → batchSize (cat 32, dog 64),
    // color → policy (green float16, pink bfloat16), shape → accumulationSteps (circle 2).
    const def = matrix(
      { model: ['apple', 'pear'], batchSize: [32, 64] },
      {
        include: [
          { policy: 'mixed_float16' }, // color: green
          { policy: 'mixed_bfloat16', batchSize: 32 }, // color: pink, animal: cat
          { model: 'apple', accumulationSteps: 2 }, // fruit: apple, shape: circle
          { model: 'banana' }, // fruit: banana
          { model: 'banana', batchSize: 32 }, // fruit: banana, animal: cat
        ],
      },
    );
    // GitHub's documented result:
    //   {fruit: apple, animal: cat, color: pink, shape: circle}
    //   {fruit: apple, animal: dog, color: green, shape: circle}
    //   {fruit: pear, animal: cat, color: pink}
    //   {fruit: pear, animal: dog, color: green}
    //   {fruit: banana}
    //   {fruit: banana, animal: cat}
    // (missing values are filled from DEFAULTS: batchSize 1, policy float32, accumulationSteps 1)
    expect(rows(def)).toEqual([
      ['apple', 32, 'mixed_bfloat16', 2],
      ['apple', 64, 'mixed_float16', 2],
      ['pear', 32, 'mixed_bfloat16', 1],
      ['pear', 64, 'mixed_float16', 1],
      ['banana', 1, 'float32', 1],
      ['banana', 32, 'float32', 1],
    ]);
  });

  it('"Example: Expanding configurations": an include matching one original combination extends only it', () => {
    // os: [windows-latest, ubuntu-latest], node: [14, 16], include {os: windows-latest, node: 16, npm: 6}
    const def = matrix(
      { model: ['windows', 'ubuntu'], batchSize: [14, 16] },
      { include: [{ model: 'windows', batchSize: 16, accumulationSteps: 6 }] },
    );
    expect(rows(def)).toEqual([
      ['windows', 14, 'float32', 1],
      ['windows', 16, 'float32', 6],
      ['ubuntu', 14, 'float32', 1],
      ['ubuntu', 16, 'float32', 1],
    ]);
  });

  it('"Example: Adding configurations": an include that would overwrite an original value is appended', () => {
    // os: [windows, ubuntu, macos], version: [12, 14, 16], include {os: windows-latest, version: 17} → 10 jobs
    const def = matrix(
      { model: ['windows', 'ubuntu', 'macos'], batchSize: [12, 14, 16] },
      { include: [{ model: 'windows', batchSize: 17 }] },
    );
    const result = rows(def);
    expect(result).toHaveLength(10);
    expect(result.at(-1)).toEqual(['windows', 17, 'float32', 1]);
    expect(result.slice(0, 3)).toEqual([
      ['windows', 12, 'float32', 1],
      ['windows', 14, 'float32', 1],
      ['windows', 16, 'float32', 1],
    ]);
  });

  it('"Excluding matrix configurations": partial matches, 12 − 3 = 9 jobs', () => {
    // os: [macos, windows], version: [12, 14, 16], environment: [staging, production]
    // exclude {os: macos, version: 12, environment: production}, {os: windows, version: 16}
    const def = matrix(
      { model: ['macos', 'windows'], batchSize: [12, 14, 16], policy: ['float32', 'mixed_float16'] },
      {
        exclude: [
          { model: 'macos', batchSize: 12, policy: 'mixed_float16' },
          { model: 'windows', batchSize: 16 },
        ],
      },
    );
    expect(rows(def)).toEqual([
      ['macos', 12, 'float32', 1],
      ['macos', 14, 'float32', 1],
      ['macos', 14, 'mixed_float16', 1],
      ['macos', 16, 'float32', 1],
      ['macos', 16, 'mixed_float16', 1],
      ['windows', 12, 'float32', 1],
      ['windows', 12, 'mixed_float16', 1],
      ['windows', 14, 'float32', 1],
      ['windows', 14, 'mixed_float16', 1],
    ]);
  });

  it('include-only matrix: the include entries are the combinations', () => {
    // include: [{site: production, datacenter: site-a}, {site: staging, datacenter: site-b}]
    const def = matrix(
      {},
      {
        include: [
          { model: 'production', batchSize: 8 },
          { model: 'staging', batchSize: 16 },
        ],
      },
    );
    expect(rows(def)).toEqual([
      ['production', 8, 'float32', 1],
      ['staging', 16, 'float32', 1],
    ]);
  });

  it('include adds back a combination that exclude removed (include is processed after exclude)', () => {
    const def = matrix(
      { model: ['a', 'b'] },
      { exclude: [{ model: 'b' }], include: [{ model: 'b', accumulationSteps: 2 }] },
    );
    expect(rows(def)).toEqual([
      ['a', 1, 'float32', 1],
      ['b', 1, 'float32', 2],
    ]);
  });
});

describe('expandMatrix: edge cases', () => {
  it('an include restating an original axis value selects those combinations; another value does not', () => {
    const def = matrix(
      { model: ['a', 'b'], policy: ['float32', 'mixed_float16'] },
      { include: [{ policy: 'mixed_float16', accumulationSteps: 4 }] },
    );
    expect(rows(def)).toEqual([
      ['a', 1, 'float32', 1],
      ['a', 1, 'mixed_float16', 4],
      ['b', 1, 'float32', 1],
      ['b', 1, 'mixed_float16', 4],
    ]);
  });

  it('values added by an earlier include may be overwritten by a later one; original values never are', () => {
    const def = matrix(
      { model: ['a', 'b'] },
      {
        include: [
          { accumulationSteps: 2 }, // added to both
          { model: 'a', accumulationSteps: 4 }, // overwrites the added 2 for a only
          { accumulationSteps: 8, policy: 'mixed_float16' }, // overwrites added values everywhere
        ],
      },
    );
    expect(rows(def)).toEqual([
      ['a', 1, 'mixed_float16', 8],
      ['b', 1, 'mixed_float16', 8],
    ]);
  });

  it('later includes never merge into appended combinations', () => {
    const def = matrix({ model: ['a'] }, { include: [{ model: 'x' }, { batchSize: 64 }] });
    expect(rows(def)).toEqual([
      ['a', 64, 'float32', 1],
      ['x', 1, 'float32', 1],
    ]);
  });

  it('when exclude removes everything, every include entry is appended', () => {
    const def = matrix(
      { model: ['a', 'b'] },
      { exclude: [{ model: 'a' }, { model: 'b' }], include: [{ policy: 'mixed_float16' }, { model: 'c' }] },
    );
    expect(rows(def)).toEqual([
      ['dflt', 1, 'mixed_float16', 1],
      ['c', 1, 'float32', 1],
    ]);
  });

  it('no axes and no includes expand to nothing; so does an exclude that removes everything', () => {
    expect(rows(matrix({}))).toEqual([]);
    expect(rows(matrix({ model: ['a'] }, { exclude: [{ model: 'a' }] }))).toEqual([]);
    expect(rows(matrix({ model: ['a'], batchSize: [] }))).toEqual([]);
  });

  it('an exclude key the combination lacks never matches', () => {
    const def = matrix({ model: ['a'] }, { exclude: [{ model: 'a', policy: 'float32' }] });
    expect(rows(def)).toEqual([['a', 1, 'float32', 1]]);
  });

  it('follows axisOrder, not the order of the fields', () => {
    const def = matrix(
      { model: ['a', 'b'], policy: ['float32', 'mixed_bfloat16'] },
      { axisOrder: ['policy', 'model'] },
    );
    expect(rows(def)).toEqual([
      ['a', 1, 'float32', 1],
      ['b', 1, 'float32', 1],
      ['a', 1, 'mixed_bfloat16', 1],
      ['b', 1, 'mixed_bfloat16', 1],
    ]);
  });

  it('keeps identical cells once, at their first position (also when defaults make them identical)', () => {
    const def = matrix(
      { model: ['a'], batchSize: [1, 2] },
      { include: [{ model: 'x' }, { model: 'x' }, { model: 'x', batchSize: 1 }, { model: 'a', batchSize: 2 }] },
    );
    expect(rows(def)).toEqual([
      ['a', 1, 'float32', 1],
      ['a', 2, 'float32', 1],
      ['x', 1, 'float32', 1],
    ]);
  });

  it('is pure: the matrix is not changed', () => {
    const def = matrix({ model: ['a', 'b'] }, { include: [{ model: 'a', batchSize: 4 }], exclude: [{ model: 'b' }] });
    const copy = structuredClone(def);
    expandMatrix(def, DEFAULTS);
    expandMatrix(def, DEFAULTS);
    expect(def).toEqual(copy);
  });
});

describe('expandMatrixTraced', () => {
  it('records where each value came from', () => {
    const def = matrix(
      { model: ['a', 'b'], accumulationSteps: [1, 2] },
      { include: [{ model: 'b', batchSize: 8 }, { model: 'z', accumulationSteps: 3 }] },
    );
    const traced = expandMatrixTraced(def, DEFAULTS);
    expect(traced[3]).toEqual({
      axes: { model: 'b', batchSize: 8, policy: 'float32', accumulationSteps: 2, backend: 'auto' },
      sources: {
        model: { kind: 'matrix', index: 1 },
        batchSize: { kind: 'include', index: 0 },
        policy: { kind: 'defaults' },
        accumulationSteps: { kind: 'matrix', index: 1 },
        backend: { kind: 'defaults' },
      },
    });
    expect(traced[4]?.sources).toEqual({
      model: { kind: 'include', index: 1 },
      batchSize: { kind: 'defaults' },
      policy: { kind: 'defaults' },
      accumulationSteps: { kind: 'include', index: 1 },
      backend: { kind: 'defaults' },
    });
  });
});

describe('the backend axis', () => {
  it('is an axis like the others: product, include and exclude apply, and the default fills it', () => {
    const def = matrix(
      { policy: ['float32', 'mixed_bfloat16'], backend: ['wasm', 'torch'] },
      { exclude: [{ policy: 'mixed_bfloat16', backend: 'wasm' }], include: [{ policy: 'float32', backend: 'torch', batchSize: 64 }] },
    );
    expect(expandMatrix(def, DEFAULTS).map((c) => [c.policy, c.backend, c.batchSize])).toEqual([
      ['float32', 'wasm', 1],
      ['float32', 'torch', 64],
      ['mixed_bfloat16', 'torch', 1],
    ]);
    expect(expandMatrix(matrix({ policy: ['float32'] }), DEFAULTS)[0]!.backend).toBe('auto');
  });
});
