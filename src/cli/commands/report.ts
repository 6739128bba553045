/**
 * `mpx report [sources...]`: the Markdown and HTML reports of each spec's results, and the summary in the terminal.
 * A source is a spec (its results are `<results-dir>/<name>.csv`), or anything `mpx diff` reads: a results CSV, a
 * results directory, a git ref or `REF:PATH` (`result-sources.ts`). Default: the results directory. Reports are
 * written beside the CSV (results read from git: into the results directory), or into `--out-dir`.
 */
import { stat } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';
import { MpxError } from '../../errors.js';
import { CAPACITY_SUFFIX } from '../../results/capacity.js';
import { capacityBasis, capacitySentences, type CapacityTable } from '../../results/report/capacity.js';
import { htmlReport, markdownReport, type ReportInput } from '../../results/report/index.js';
import { summarizeResults } from '../../results/report/summary.js';
import { renderTerminalSummary, TERMINAL_WIDTH } from '../../results/report/terminal.js';
import { writeReport } from '../../results/store.js';
import { RUNS_SCHEMA, type ResultTable } from '../../results/table.js';
import { loadSpec } from '../../spec/load.js';
import { BYTE_SIZE_EXAMPLES, parseByteSize } from '../../spec/size.js';
import type { ExperimentSpec } from '../../spec/types.js';
import { EXIT_OK } from '../exit-codes.js';
import { loadResultSide } from '../result-sources.js';

export interface ReportCommandOptions {
  /** Where a spec's results are, and the folder a bare git ref is read at. */
  resultsDir: string;
  /** Where reports are written; default beside each results CSV (the results directory for results read from git). */
  outDir?: string;
  /** `--budget`: the budget drawn on the charts, overriding the specs' memoryLimit. */
  budget?: string;
}

/** One spec's results to report, with what the spec adds. */
interface ReportSource {
  name: string;
  /** `<name>.csv`; null for a spec that only searches capacity. */
  table: ResultTable | null;
  /** `<name>.capacity.csv`; null when there is none. */
  capacity: CapacityTable | null;
  /** The directory on disk the CSVs were read from; null when they were read from git. */
  dir: string | null;
  spec: ExperimentSpec | null;
}

const SPEC_FILE = /\.ya?ml$/i;

export async function reportCommand(args: string[], options: ReportCommandOptions): Promise<number> {
  const budgetOverride = parseBudget(options.budget);
  const cwd = process.cwd();
  const sources = await collectSources(args.length > 0 ? args : [options.resultsDir], options.resultsDir, cwd);
  for (const source of sources) {
    const spec = source.spec ?? (await specOf(source, cwd));
    const table = source.table ?? emptyRunsTable(source.capacity!);
    const input: ReportInput = {
      table,
      description: spec?.description ?? null,
      specFile: spec?.file ?? (table.metadata?.spec.file || null),
      budgetBytes: budgetOverride ?? spec?.memoryLimitBytes ?? spec?.capacity?.budgetBytes ?? null,
      capacity: source.capacity,
    };
    const outDir = options.outDir ?? source.dir ?? options.resultsDir;
    const written: string[] = [];
    for (const renderer of [markdownReport, htmlReport]) written.push(writeReport(outDir, source.name, renderer.extension, await renderer.render(input)));
    const color = Boolean(process.stdout.isTTY) && process.env.NO_COLOR === undefined;
    const lines = [...(source.table === null ? [] : renderTerminalSummary(summarizeResults(source.name, table.rows), { color })), ...capacityLines(source)];
    process.stdout.write(`${source === sources[0] ? '' : '\n'}${lines.join('\n')}\n`);
    process.stderr.write(`mpx: ${source.name}: report → ${written.map((path) => relative(cwd, path) || path).join(', ')}\n`);
  }
  return EXIT_OK;
}

/** The capacity searches in the terminal: one line per search. */
function capacityLines({ name, capacity }: ReportSource): string[] {
  if (capacity === null || capacity.rows.length === 0) return [];
  const cut = (line: string) => (line.length > TERMINAL_WIDTH ? `${line.slice(0, TERMINAL_WIDTH - 1)}…` : line);
  return [cut(`${name}: largest batch that fits (${capacityBasis(capacity)})`), ...capacitySentences(capacity).map((s) => cut(`  ${s}`))];
}

/** A spec that only searches capacity has no run matrix: an empty one, named and sourced like its capacity CSV. */
function emptyRunsTable(capacity: CapacityTable): ResultTable {
  return { name: capacity.name.replace(/\.capacity$/, ''), source: capacity.source, header: [], columns: [], rows: [], metadata: capacity.metadata, schema: RUNS_SCHEMA };
}

/** Every source's results, one entry per spec name (a spec's run matrix and capacity CSV together). */
async function collectSources(args: string[], resultsDir: string, cwd: string): Promise<ReportSource[]> {
  const byName = new Map<string, ReportSource>();
  const add = (source: ReportSource): void => {
    const other = byName.get(source.name);
    if (other === undefined) {
      byName.set(source.name, source);
      return;
    }
    const sameFile = (a: { source: string } | null, b: { source: string } | null) => a === null || b === null || a.source === b.source;
    if (!sameFile(other.table, source.table) || !sameFile(other.capacity, source.capacity)) {
      const where = (s: ReportSource) => (s.table ?? s.capacity)!.source;
      throw new MpxError('USAGE', `two sources hold results named ${source.name}: ${where(other)} and ${where(source)}`, {
        hint: 'report them one at a time, with --out-dir for one of them, so one report does not overwrite the other',
      });
    }
    byName.set(source.name, { ...other, table: other.table ?? source.table, capacity: other.capacity ?? source.capacity, spec: other.spec ?? source.spec });
  };
  for (const arg of await expandGlobs(args)) {
    if (SPEC_FILE.test(arg)) {
      add(await specSource(arg, resultsDir, cwd));
      continue;
    }
    const side = await loadResultSide(arg, { cwd, resultsDir });
    if (side.tables.length === 0 && side.capacityTables.length === 0) {
      throw new MpxError('FILE_NOT_FOUND', `no results CSV in ${side.label}`, { hint: 'run mpx run first, or name a results CSV, a results directory or a git ref' });
    }
    const isOnDisk = await stat(resolve(cwd, arg)).then(() => true, () => false);
    const dirOf = (source: string) => (isOnDisk ? dirname(resolve(cwd, source)) : null);
    for (const table of side.tables) add({ name: table.name, table, capacity: null, dir: dirOf(table.source), spec: null });
    for (const capacity of side.capacityTables) add({ name: specName(capacity.name), table: null, capacity, dir: dirOf(capacity.source), spec: null });
    // A CSV named on its own brings the other CSV of its spec when it sits beside it.
    if (side.isSingleFile && isOnDisk) {
      const named = (side.tables[0] ?? side.capacityTables[0])!;
      const companion = join(dirname(arg), side.tables.length > 0 ? `${named.name}${CAPACITY_SUFFIX}.csv` : `${specName(named.name)}.csv`);
      if (await isFile(resolve(cwd, companion))) {
        const other = await loadResultSide(companion, { cwd, resultsDir, isPathOnly: true });
        for (const table of other.tables) add({ name: table.name, table, capacity: null, dir: dirOf(table.source), spec: null });
        for (const capacity of other.capacityTables) add({ name: specName(capacity.name), table: null, capacity, dir: dirOf(capacity.source), spec: null });
      }
    }
  }
  return [...byName.values()];
}

/** `seed.capacity` → `seed`: a capacity table is named after its file. */
function specName(tableName: string): string {
  return tableName.endsWith(CAPACITY_SUFFIX) ? tableName.slice(0, -CAPACITY_SUFFIX.length) : tableName;
}

function isFile(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isFile(), () => false);
}

/** Quoted globs are expanded here (as `mpx run` does); a pattern that matches nothing is an error. */
async function expandGlobs(args: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const arg of args) {
    if (!isDynamicPattern(arg)) {
      out.push(arg);
      continue;
    }
    const matches = (await glob(arg, { onlyFiles: true, expandDirectories: false })).sort();
    if (matches.length === 0) throw new MpxError('NO_MATCH', `the pattern ${arg} matches no file`, { hint: 'check the pattern and the current directory' });
    out.push(...matches);
  }
  return out;
}

async function specSource(file: string, resultsDir: string, cwd: string): Promise<ReportSource> {
  const { spec } = await loadSpec(file);
  const paths = [join(resultsDir, `${spec.name}.csv`), join(resultsDir, `${spec.name}${CAPACITY_SUFFIX}.csv`)];
  const existing = [];
  for (const path of paths) if (await isFile(resolve(cwd, path))) existing.push(path);
  if (existing.length === 0) {
    throw new MpxError('FILE_NOT_FOUND', `${paths[spec.capacity === null ? 0 : 1]} does not exist: the spec ${file} has no results yet`, {
      hint: `run it first: mpx run ${file}`,
    });
  }
  const sides = await Promise.all(existing.map((path) => loadResultSide(path, { cwd, resultsDir, isPathOnly: true })));
  return {
    name: spec.name,
    table: sides.flatMap((s) => s.tables)[0] ?? null,
    capacity: sides.flatMap((s) => s.capacityTables)[0] ?? null,
    dir: resolve(cwd, resultsDir),
    spec,
  };
}

/**
 * The spec behind results named by file (from `meta.json`), for its description and budget. Optional context: a spec
 * that is gone, renamed or broken leaves them out, with a note.
 */
async function specOf(source: ReportSource, cwd: string): Promise<ExperimentSpec | null> {
  const file = (source.table ?? source.capacity)!.metadata?.spec.file;
  if (!file || !(await isFile(resolve(cwd, file)))) return null;
  try {
    const { spec } = await loadSpec(file);
    return spec.name === source.name ? spec : null;
  } catch (error) {
    if (!(error instanceof MpxError)) throw error;
    process.stderr.write(`mpx: note: ${source.name}: the report leaves out the description and budget of ${file}, which does not load (${error.message})\n`);
    return null;
  }
}

function parseBudget(text: string | undefined): number | null {
  if (text === undefined) return null;
  const bytes = parseByteSize(text);
  if (bytes === null) {
    throw new MpxError('USAGE', `--budget must be a size such as ${BYTE_SIZE_EXAMPLES}, got "${text}"`, { hint: 'e.g. mpx report experiments/*.yaml --budget 16GiB' });
  }
  return bytes;
}
