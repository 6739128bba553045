/**
 * The bad-input corpus, end to end: every bad spec of test/fixtures/specs/bad/ plus the inputs below (non-UTF-8 and
 * UTF-16 files, a file over the size cap, a billion-laughs alias bomb, 100,000 nested brackets, NaN/Inf, prototype
 * keys, names that would escape results/, a matrix over the cap, a missing file, a directory, a glob matching
 * nothing, bad flags ...) is given to the BUILT `mpx run` (dist/cli/main.js), each in its own process and its own
 * empty working directory. Each must: exit 2; start stderr with `mpx: <file>:<line>:<col>: ` (or, where there is no
 * position to name, `mpx: <file>: ` / `mpx: ` as listed); say what to do; print no stack trace and no "internal
 * error"; and write nothing (no results directory, no other file). Then a fuzz pass: random edits of the good specs
 * through the loader and planner in-process (only MpxError may come out) and a sample of them through the CLI.
 * Build first (npx tsc -p .).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMpxError } from '../../src/errors.js';
import { planRuns } from '../../src/matrix/plan.js';
import { loadSpecText } from '../../src/spec/load.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const SPECS = fileURLToPath(new URL('../fixtures/specs/', import.meta.url));
const TOO_MANY_RUNS = fileURLToPath(new URL('../fixtures/cli/too-many-runs.yaml', import.meta.url));
const BAD_DIR = join(SPECS, 'bad');
const GOOD_DIR = join(SPECS, 'good');
const MINIMAL = readFileSync(join(GOOD_DIR, 'minimal.yaml'), 'utf8');

const STACK = /\n\s+at /;
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A message that tells the reader what to do: a hint line, or a rule stated in the message itself. */
const ACTIONABLE = /\n {2}hint: \S|must|needs|give at least|expected one of|may be at most|not allowed|is not valid|matches no/;

const TINY_MODEL = 'models:\n  m: { preset: mlp, input: [8], hidden: [4], classes: 2 }\n';
/** A valid spec with `extra` top-level lines and `matrix` lines. */
const spec = (extra: string, matrix = '  policy: [float32]\n') => `name: x\n${extra}${TINY_MODEL}matrix:\n${matrix}`;

interface Case {
  label: string;
  /** Files to create in the case's empty working directory. */
  files?: Record<string, string | Uint8Array>;
  /** Directories to create there. */
  dirs?: string[];
  /** Arguments after `mpx run` (before `--results-dir results`). */
  args: string[];
  /** What the first stderr line must match (anchored by the caller). */
  first: RegExp;
}

/** `^mpx: <file>:<line>:<col>: <message>` */
const at = (file: string, message: RegExp | string = '') =>
  new RegExp(`^mpx: ${escape(file)}:\\d+:\\d+: ${typeof message === 'string' ? escape(message) : message.source}`);
/** Inputs that have no line to point at name only the file: an empty file, one over the size cap, a missing one. */
const fileOnly = (file: string, message: string) => new RegExp(`^mpx: ${escape(file)}: ${escape(message)}`);

// ---- 1. every fixture of test/fixtures/specs/bad/ (their full messages are asserted in test/spec/load.test.ts) ----
/** Fixtures without a line to point at. */
const WITHOUT_POSITION: Record<string, string> = { 'empty.yaml': 'the file is empty' };
const fixtureCases: Case[] = readdirSync(BAD_DIR)
  .sort()
  .map((name) => {
    const file = join(BAD_DIR, name);
    const only = WITHOUT_POSITION[name];
    return { label: `bad/${name}`, args: [file], first: only === undefined ? at(file) : fileOnly(file, only) };
  });

// ---- 2. more bad specs, written to the case's directory ----
const billionLaughs = ['name: x', 'a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]']
  .concat('bcdefghi'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(', ')}]`))
  .join('\n');
const writtenCases: Case[] = (
  [
    ['non-UTF-8 bytes (Latin-1 é)', Buffer.from('name: caf\xe9\nmodels: {}\n', 'latin1'), at('s.yaml', 'the file is not valid UTF-8 (byte 0xe9)')],
    ['an overlong UTF-8 sequence', Buffer.from([...Buffer.from('name: '), 0xc0, 0xaf, 0x0a]), at('s.yaml', 'the file is not valid UTF-8 (byte 0xc0)')],
    ['UTF-16 with a byte-order mark', Buffer.from('\ufeffname: x\n', 'utf16le'), at('s.yaml', 'the file is UTF-16; specs must be UTF-8')],
    ['a file over 1 MiB', `# ${'x'.repeat(1_100_000)}\n`, fileOnly('s.yaml', 'the file is 1100003 bytes; a spec may be at most 1048576 bytes')],
    ['only comments', '# nothing here\n# at all\n', fileOnly('s.yaml', 'the file is empty')],
    ['only document markers', '---\n...\n', fileOnly('s.yaml', 'the file is empty')],
    ['billion laughs (9 levels of 9 aliases)', billionLaughs, at('s.yaml', 'aliases (*name) expand too much')],
    ['an alias inside its own anchor', 'a: &a [*a]\n', at('s.yaml', 'alias *a is used inside the value it names')],
    ['100,000 nested brackets', `name: x\nmatrix: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`, at('s.yaml', 'maps and lists are nested more than 64 levels deep')],
    ['a tab after CRLF line ends', 'name: x\r\nmodels:\r\n\tm: 1\r\n', at('s.yaml', 'tab used for indentation')],
    ['a top-level scalar', 'hello\n', at('s.yaml', 'the spec must be a map, got "hello"')],
    ['.inf steps', spec('train: { steps: .inf }\n'), at('s.yaml', 'train.steps must be a finite number, got .inf')],
    ['.nan steps', spec('train: { steps: .nan }\n'), at('s.yaml', 'train.steps must be a finite number, got .nan')],
    ['a 2^64 seed', spec('seed: 18446744073709551616\n'), at('s.yaml', 'seed must be at most 2147483647')],
    ['a 30-digit batch size', spec('', '  batchSize: [123456789012345678901234567890]\n'), at('s.yaml', 'matrix.batchSize[0] must be at most 1048576')],
    ['a fractional batch size', spec('', '  batchSize: [1.5]\n'), at('s.yaml', 'matrix.batchSize[0] must be an integer ≥ 1, got 1.5')],
    ['a zero batch size in include', spec('', '  policy: [float32]\n  include:\n    - { batchSize: 0 }\n'), at('s.yaml', 'matrix.include[0].batchSize must be an integer ≥ 1, got 0')],
    ['a negative sample count', spec('data: { kind: synthetic, samples: -64 }\n'), at('s.yaml', 'data.samples must be an integer ≥ 1, got -64')],
    ['a negative memoryLimit', spec('memoryLimit: -1\n'), at('s.yaml', 'memoryLimit must be a size')],
    ['a memoryLimit with a unit typo', spec('memoryLimit: 2XB\n'), at('s.yaml', 'memoryLimit must be a size')],
    ['a zero timeout', spec('train: { timeoutSeconds: 0 }\n'), at('s.yaml', 'train.timeoutSeconds must be a number > 0, got 0')],
    ['negative retries', spec('train: { retries: -1 }\n'), at('s.yaml', 'train.retries must be an integer from 0 to 10, got -1')],
    ['a boolean where a number belongs', spec('repeats: true\n'), at('s.yaml', 'repeats must be an integer from 1 to 100, got true')],
    ['a zero kernel size', 'name: x\nmodels:\n  c: { preset: cnn, input: [8, 8, 1], filters: [4], kernelSize: 0, dense: [4], classes: 2 }\nmatrix:\n  policy: [float32]\n', at('s.yaml', 'models.c.kernelSize must be an integer ≥ 1, got 0')],
    ['a 10^8-wide input', 'name: x\nmodels:\n  m: { preset: mlp, input: [100000000], hidden: [4], classes: 2 }\nmatrix:\n  policy: [float32]\n', at('s.yaml', 'models.m.input[0] must be at most 65536')],
    ['an axis of 1000 values', spec('', `  batchSize: [${Array.from({ length: 1000 }, (_, i) => i + 1).join(', ')}]\n`), at('s.yaml', 'matrix.batchSize must have at most 64 items, got 1000')],
    ['a batch size the accumulation steps do not divide', spec('', '  batchSize: [6]\n  accumulationSteps: [4]\n'), at('s.yaml', 'batchSize 6 is not divisible by accumulationSteps 4')],
    ['an empty include entry', spec('', '  policy: [float32]\n  include:\n    - {}\n'), at('s.yaml', 'matrix.include[0] is empty')],
    ['a model without a definition', 'name: x\nmodels:\n  m:\nmatrix:\n  policy: [float32]\n', at('s.yaml', 'models.m must be a map, got an empty value')],
    ['a key "prototype"', spec('prototype: 1\n'), at('s.yaml', 'key "prototype" is not allowed in a spec')],
    ['a quoted "__proto__" key in the matrix', spec('', '  policy: [float32]\n  "__proto__": [1]\n'), at('s.yaml', 'key "__proto__" is not allowed in a spec')],
    ['a list as a key', spec('', '  ? [a, b]\n  : [float32]\n'), at('s.yaml', 'keys must be plain names, not lists or maps')],
    ['a NUL in a key', spec('"a\\0b": 1\n'), at('s.yaml', 'unknown key "a\\u0000b" at the top level')],
    ['a name with a slash', spec('').replace('name: x', 'name: results/../../x'), at('s.yaml', /name must be a safe file name/)],
    ['a name "."', spec('').replace('name: x', 'name: "."'), at('s.yaml', /name must be a safe file name/)],
    ['a name of 65 characters', spec('').replace('name: x', `name: ${'a'.repeat(65)}`), at('s.yaml', /name must be a safe file name/)],
    ['a name that is a number', spec('').replace('name: x', 'name: 123'), at('s.yaml', 'name must be a string, got 123')],
  ] as Array<[string, string | Uint8Array, RegExp]>
).map(([label, content, first]) => ({ label, files: { 's.yaml': content }, args: ['s.yaml'], first }));

// ---- 3. paths, globs, several files, and flags ----
const otherCases: Case[] = [
  { label: 'a missing file', args: ['missing.yaml'], first: fileOnly('missing.yaml', 'file not found') },
  { label: 'a directory passed as a file', dirs: ['specs'], args: ['specs'], first: fileOnly('specs', 'is a directory, not a spec file') },
  { label: 'a quoted glob that matches nothing', args: ['nothing/*.yaml'], first: /^mpx: the pattern nothing\/\*\.yaml matches no file/ },
  { label: 'a matrix over the run cap', args: [TOO_MANY_RUNS], first: at(TOO_MANY_RUNS, 'matrix expands to 24 runs (12 cells × 2 repeats), above the limit of 10') },
  {
    label: 'two specs with the same name',
    files: { 'a.yaml': MINIMAL, 'b.yaml': MINIMAL },
    args: ['a.yaml', 'b.yaml'],
    first: at('b.yaml', 'name "minimal" is also used by a.yaml'),
  },
  {
    label: 'a glob with one bad spec among good ones (nothing runs)',
    files: { 'a.yaml': MINIMAL, 'b.yaml': 'name: b\nmodels: {}\nmatrix: {}\nseeds: 1\n' },
    args: ['*.yaml'],
    first: at('b.yaml'),
  },
  { label: 'a good spec next to a missing one (nothing runs)', files: { 'a.yaml': MINIMAL }, args: ['a.yaml', 'gone.yaml'], first: fileOnly('gone.yaml', 'file not found') },
  { label: '--memory-limit with a bad unit', files: { 'a.yaml': MINIMAL }, args: ['a.yaml', '--memory-limit', '2XB'], first: /^mpx: --memory-limit must be a size/ },
  { label: '--filter with an unknown key', files: { 'a.yaml': MINIMAL }, args: ['a.yaml', '--filter', 'polcy=float32'], first: /^mpx: --filter: unknown key "polcy"/ },
  { label: '--filter matching no run', files: { 'a.yaml': MINIMAL }, args: ['a.yaml', '--filter', 'policy=float16'], first: /^mpx: --filter policy=float16 matches no run/ },
  { label: '--retries out of range', files: { 'a.yaml': MINIMAL }, args: ['a.yaml', '--retries', '11'], first: /^error: option '--retries <n>' argument '11' is invalid/ },
];

const CASES: Case[] = [...fixtureCases, ...writtenCases, ...otherCases];

interface Outcome {
  exitCode?: number;
  stderr: string;
  stdout: string;
  /** Everything in the working directory afterwards that the case did not put there. */
  created: string[];
}

let work: string;
const outcomes = new Map<string, Outcome>();

async function runCase(c: Case, index: number): Promise<Outcome> {
  const cwd = join(work, `case-${index}`);
  mkdirSync(cwd);
  for (const [name, content] of Object.entries(c.files ?? {})) writeFileSync(join(cwd, name), content);
  for (const dir of c.dirs ?? []) mkdirSync(join(cwd, dir));
  const before = new Set(readdirSync(cwd));
  const result = await execa(process.execPath, [CLI, 'run', ...c.args, '--results-dir', 'results'], {
    cwd,
    reject: false,
    env: { MPX_DEBUG: '' },
    timeout: 30_000,
  });
  const created = readdirSync(cwd).filter((name) => !before.has(name));
  return { exitCode: result.exitCode, stderr: String(result.stderr), stdout: String(result.stdout), created };
}

/** Runs `fn` over `items`, `limit` at a time (each case is its own node process). */
async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p .)`);
  work = mkdtempSync(join(tmpdir(), 'mpx-corpus-'));
  const results = await pool(CASES, 2, runCase);
  CASES.forEach((c, i) => outcomes.set(c.label, results[i]!));
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe(`bad-input corpus: ${CASES.length} inputs (${fixtureCases.length} fixtures of specs/bad, ${writtenCases.length} written specs, ${otherCases.length} paths/globs/flags) → exit 2, file:line:col, nothing written`, () => {
  it('has at least 30 bad specs and covers every fixture of specs/bad', () => {
    expect(fixtureCases.length + writtenCases.length).toBeGreaterThanOrEqual(30);
    expect(fixtureCases.map((c) => c.label)).toEqual(readdirSync(BAD_DIR).sort().map((name) => `bad/${name}`));
  });

  it.each(CASES.map((c) => [c.label, c] as const))('%s', (_label, c) => {
    const outcome = outcomes.get(c.label)!;
    const { exitCode, stderr } = outcome;
    expect(exitCode, stderr).toBe(2);
    const [first = ''] = stderr.split('\n');
    expect(first).toMatch(c.first);
    expect(stderr).toMatch(ACTIONABLE);
    expect(stderr).not.toMatch(STACK);
    expect(stderr).not.toMatch(/internal error|this is a bug/);
    // nothing ran and nothing was written: no results directory, no other file
    expect(stderr).not.toMatch(/runs from \d+ spec/);
    expect(outcome.stdout).toBe('');
    expect(outcome.created).toEqual([]);
  });
});

// ---- fuzz ----

const GOOD_TEXTS = readdirSync(GOOD_DIR)
  .filter((name) => name.endsWith('.yaml'))
  .sort()
  .map((name) => readFileSync(join(GOOD_DIR, name), 'utf8'));

/** Pieces of YAML syntax and spec vocabulary to splice into good specs. */
const FRAGMENTS = [
  '\n', ': ', ':', '- ', '[', ']', '{', '}', ',', '"', "'", '#', '\t', '  ', '&a ', '*a', '<<: *a\n', '!!str ', '!!binary ',
  '---\n', '|\n', '>-\n', '? ', '0', '-1', '1e400', '.nan', '.inf', '0x10', '1_000', 'null', '~', 'true', '__proto__: 1\n',
  'constructor: 2\n', 'maxRuns: 100000\n', 'repeats: 100\n', 'accumulationSteps: [1, 2, 3, 64]', 'batchSize: [1, 3, 1048576]',
  'include:\n    - { model: x, batchSize: 7 }\n', 'exclude:\n    - { policy: float32 }\n', 'policy: [mixed_float16]',
  'layers:\n      - conv2d: { filters: 2, kernelSize: 9 }\n', 'input: [1, 1, 1]', 'memoryLimit: 1B\n', 'backend: cpu\n',
  'data: { kind: mnist, samples: 10000 }\n', 'é', '\u0000', '\uFEFF', '\r\n',
];

const edited = fc
  .tuple(
    fc.constantFrom(...GOOD_TEXTS),
    fc.array(
      fc.record({ at: fc.nat(), remove: fc.nat({ max: 12 }), insert: fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ maxLength: 6 })) }),
      { minLength: 1, maxLength: 5 },
    ),
  )
  .map(([text, edits]) =>
    edits.reduce((t, e) => {
      const i = e.at % (t.length + 1);
      return t.slice(0, i) + e.insert + t.slice(i + e.remove);
    }, text),
  );

describe('fuzz: random edits of the good specs', () => {
  it('load + plan in-process: 3000 edited specs, only MpxError ever comes out', () => {
    fc.assert(
      fc.property(edited, (text) => {
        try {
          planRuns(loadSpecText(text, 'fuzz.yaml').spec);
        } catch (error) {
          if (!isMpxError(error)) throw error;
        }
      }),
      { numRuns: 3000, seed: 20240611 },
    );
  });

  it('the built CLI (mpx validate) on 24 of them: exit 0 or 2, never a stack trace or an internal error', async () => {
    const texts = fc.sample(edited, { numRuns: 24, seed: 7 });
    const dir = join(work, 'fuzz');
    mkdirSync(dir);
    const outcomes = await pool(texts, 2, async (text, i) => {
      writeFileSync(join(dir, `f${i}.yaml`), text);
      const r = await execa(process.execPath, [CLI, 'validate', `f${i}.yaml`], { cwd: dir, reject: false, env: { MPX_DEBUG: '' }, timeout: 30_000 });
      return { text, exitCode: r.exitCode, stderr: String(r.stderr) };
    });
    for (const o of outcomes) {
      expect([0, 2], `${o.stderr}\n--- input ---\n${o.text}`).toContain(o.exitCode);
      expect(o.stderr).not.toMatch(STACK);
      expect(o.stderr).not.toMatch(/internal error/);
      if (o.exitCode === 2) expect(o.stderr).toMatch(/^mpx: f\d+\.yaml(:\d+:\d+)?: /);
    }
    // the edits are not all harmless: most of them must be rejected
    expect(outcomes.filter((o) => o.exitCode === 2).length).toBeGreaterThan(8);
  });
});
