/**
 * Reads one side of `mpx diff`: a results CSV, a results directory, or a git ref (the results directory as committed
 * there, read with `git cat-file`/`git ls-tree` — no checkout, the working tree is never touched). `REF:PATH` names
 * a file or directory at that ref.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, posix, relative, resolve, sep } from 'node:path';
import { MpxError } from '../errors.js';
import { CAPACITY_SUFFIX, parseCapacityCsv, type CapacityRow } from '../results/capacity.js';
import { parseRunMetadata, type RunMetadata } from '../results/metadata.js';
import { parseResultsCsv, type ResultTable } from '../results/table.js';
import { gitIn, type Git } from './git.js';

export interface ResultSide {
  /** For people: `results`, `main:results`, `results/a.csv`. */
  label: string;
  /** One CSV named directly (it is compared with the same-named CSV of the other side). */
  isSingleFile: boolean;
  /** Run matrices: `<spec>.csv`. */
  tables: ResultTable[];
  /** Capacity searches: `<spec>.capacity.csv` (named `<spec>.capacity`). */
  capacityTables: Array<ResultTable<CapacityRow>>;
}

type ParsedTable = ResultTable | ResultTable<CapacityRow>;

/** A side from the CSVs read: run matrices and capacity searches apart. */
function sideOf(label: string, isSingleFile: boolean, parsed: readonly ParsedTable[]): ResultSide {
  const isCapacity = (t: ParsedTable): t is ResultTable<CapacityRow> => t.schema.kind === 'capacity';
  return { label, isSingleFile, tables: parsed.filter((t): t is ResultTable => !isCapacity(t)), capacityTables: parsed.filter(isCapacity) };
}

/** A results CSV of either kind, by its name: `<spec>.capacity.csv` holds capacity searches. */
function parseAnyCsv(text: string, name: string, source: string, metadata: RunMetadata | null): ParsedTable {
  return name.endsWith(CAPACITY_SUFFIX) ? parseCapacityCsv(text, name, source, metadata) : parseResultsCsv(text, name, source, metadata);
}

export interface SideOptions {
  cwd: string;
  /** The results directory: what a bare git ref is read at (relative to cwd). */
  resultsDir: string;
  /** Only a path is accepted (the default head side: the working tree's results directory). */
  isPathOnly?: boolean;
}

export async function loadResultSide(arg: string, options: SideOptions): Promise<ResultSide> {
  const path = resolve(options.cwd, arg);
  const info = await stat(path).catch(() => null);
  if (info?.isFile()) {
    if (!arg.endsWith('.csv')) {
      throw new MpxError('USAGE', `${arg} is not a results CSV (a .csv file)`, { hint: 'name results/<spec>.csv, a results directory or a git ref' });
    }
    return sideOf(arg, true, [await readTableFile(path, arg)]);
  }
  if (info?.isDirectory()) {
    const names = (await readdir(path)).filter((n) => n.endsWith('.csv') && !n.startsWith('.')).sort();
    return sideOf(arg, false, await Promise.all(names.map((n) => readTableFile(join(path, n), join(arg, n)))));
  }
  if (options.isPathOnly) {
    throw new MpxError('FILE_NOT_FOUND', `${arg} does not exist`, {
      hint: 'run mpx run first, or name the head side: mpx diff <base> <head>',
    });
  }
  return loadGitSide(arg, options);
}

async function readTableFile(path: string, label: string): Promise<ParsedTable> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new MpxError('RESULTS_IO', `cannot read ${label}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const name = basename(path).replace(/\.csv$/, '');
  const meta = await readFile(join(dirname(path), `${specOf(name)}.meta.json`), 'utf8').catch(() => null);
  return parseAnyCsv(text, name, label, parseMetadata(meta));
}

/** Metadata only adds context: a missing or broken meta.json must not block a comparison. */
function parseMetadata(text: string | null): RunMetadata | null {
  return text === null ? null : parseRunMetadata(text);
}

async function loadGitSide(arg: string, options: SideOptions): Promise<ResultSide> {
  const git = checkedGit(options.cwd);
  // `REF:PATH` (git's own syntax) or a bare REF, which means the results directory at REF.
  const colon = arg.indexOf(':');
  const ref = colon < 0 ? arg : arg.slice(0, colon);
  const explicitPath = colon < 0 ? null : arg.slice(colon + 1);
  const commit = ref === '' ? null : await git(['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`]);
  if (commit === null || !commit.ok) {
    const inRepo = await git(['rev-parse', '--git-dir']);
    throw new MpxError('USAGE', `${arg} is neither a file, a directory nor a git ref${inRepo.ok ? '' : ' (and this is not a git repository)'}`, {
      hint: 'name a results CSV, a results directory, or a commit/branch/tag such as main or origin/main (fetch it first in CI)',
    });
  }
  const target = toGitPath(explicitPath ?? options.resultsDir, options.cwd);
  const label = `${ref}:${target}`;
  const object = gitObject(ref, target);
  const type = await git(['cat-file', '-t', object]);
  if (!type.ok && /outside repository/i.test(type.stderr)) {
    throw new MpxError('USAGE', `${arg}: ${target} is outside the git repository, so it cannot be read at ${ref}`, {
      hint: 'run mpx diff inside the repository, with --results-dir pointing at a directory in it',
    });
  }
  if (!type.ok) {
    if (explicitPath !== null) {
      throw new MpxError('FILE_NOT_FOUND', `${target} does not exist at ${ref}`, { hint: `list what is there: git ls-tree ${ref} -- ${posix.dirname(target)}/` });
    }
    return sideOf(label, false, []); // no results committed there yet: everything is new
  }
  if (type.stdout.trim() === 'blob') {
    if (!target.endsWith('.csv')) throw new MpxError('USAGE', `${label} is not a results CSV (a .csv file)`);
    return sideOf(label, true, [await readGitTable(git, ref, target)]);
  }
  const list = await git(['ls-tree', '--name-only', '--end-of-options', object]);
  if (!list.ok) throw new MpxError('RESULTS_IO', `cannot list ${label}: ${list.stderr.trim()}`);
  const names = list.stdout.split('\n').filter((n) => n.endsWith('.csv') && !n.startsWith('.')).sort();
  return sideOf(label, false, await Promise.all(names.map((n) => readGitTable(git, ref, posix.join(target, n)))));
}

async function readGitTable(git: Git, ref: string, path: string): Promise<ParsedTable> {
  const blob = await git(['cat-file', 'blob', gitObject(ref, path)]);
  if (!blob.ok) throw new MpxError('RESULTS_IO', `cannot read ${ref}:${path}: ${blob.stderr.trim()}`);
  const name = posix.basename(path).replace(/\.csv$/, '');
  const meta = await git(['cat-file', 'blob', gitObject(ref, posix.join(posix.dirname(path), `${specOf(name)}.meta.json`))]);
  return parseAnyCsv(blob.stdout, name, `${ref}:${path}`, parseMetadata(meta.ok ? meta.stdout : null));
}

/** `path` relative to cwd with `/` separators (`.` for cwd itself; may start with `../`). */
function toGitPath(path: string, cwd: string): string {
  const rel = relative(cwd, resolve(cwd, path));
  return rel === '' ? '.' : rel.split(sep).join('/');
}

/** `REF:./PATH` or `REF:../PATH`: git reads paths that start with ./ or ../ relative to the current directory. */
function gitObject(ref: string, path: string): string {
  return path === '..' || path.startsWith('../') ? `${ref}:${path}` : `${ref}:./${path}`;
}

/** The spec a table belongs to: a capacity table `<spec>.capacity` shares its spec's meta.json. */
function specOf(name: string): string {
  return name.endsWith(CAPACITY_SUFFIX) ? name.slice(0, -CAPACITY_SUFFIX.length) : name;
}

/**
 * The tables to compare, paired by name (a spec's run matrix and its capacity searches are two tables). A single CSV
 * on one side is compared with the same-named CSV of the other side; two single CSVs are compared with each other
 * whatever their names (when they are of one kind).
 */
export function pairSides(base: ResultSide, head: ResultSide): [ParsedTable[], ParsedTable[]] {
  const all = (side: ResultSide): ParsedTable[] => [...side.tables, ...side.capacityTables];
  const [baseTables, headTables] = [all(base), all(head)];
  if (base.isSingleFile && head.isSingleFile) {
    const [b, h] = [baseTables[0]!, headTables[0]!];
    if (b.schema.kind !== h.schema.kind) {
      throw new MpxError('USAGE', `${base.label} and ${head.label} are different kinds of results (${b.schema.kind} and ${h.schema.kind}); compare a capacity CSV with a capacity CSV`);
    }
    return [[{ ...b, name: h.name }], [h]];
  }
  if (base.isSingleFile) return [baseTables, headTables.filter((t) => t.name === baseTables[0]!.name)];
  if (head.isSingleFile) return [baseTables.filter((t) => t.name === headTables[0]!.name), headTables];
  return [baseTables, headTables];
}

/** git for reading a ref: a missing git is bad usage here (a ref was named), not a silent "no results". */
function checkedGit(cwd: string): Git {
  const git = gitIn(cwd);
  return async (args) => {
    const result = await git(args);
    if (result.isMissing) {
      throw new MpxError('USAGE', 'git is not installed (or not on PATH): a git ref cannot be read', {
        hint: 'install git, or compare two results files or directories',
      });
    }
    return result;
  };
}
