/**
 * `mpx report [sources...]`: the Markdown and HTML reports of each spec's results, and the summary in the terminal.
 * A source is a spec (its results are `<results-dir>/<name>.csv`), or anything `mpx diff` reads: a results CSV, a
 * results directory, a git ref or `REF:PATH` (`result-sources.ts`). Default: the results directory. Reports are
 * written beside the CSV (results read from git: into the results directory), or into `--out-dir`.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';
import { MpxError } from '../../errors.js';
import { capacityPath, parseCapacityCsv, type CapacityTable } from '../../results/report/capacity.js';
import { htmlReport, markdownReport, type ReportInput } from '../../results/report/index.js';
import { summarizeResults } from '../../results/report/summary.js';
import { renderTerminalSummary } from '../../results/report/terminal.js';
import { writeReport } from '../../results/store.js';
import type { ResultTable } from '../../results/table.js';
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
  table: ResultTable;
  /** The CSV on disk; null when it was read from git. */
  csvPath: string | null;
  spec: ExperimentSpec | null;
}

const SPEC_FILE = /\.ya?ml$/i;

export async function reportCommand(args: string[], options: ReportCommandOptions): Promise<number> {
  const budgetOverride = parseBudget(options.budget);
  const cwd = process.cwd();
  const sources = await collectSources(args.length > 0 ? args : [options.resultsDir], options.resultsDir, cwd);
  for (const source of sources) {
    const { table } = source;
    const spec = source.spec ?? (await specOf(table, cwd));
    const input: ReportInput = {
      table,
      description: spec?.description ?? null,
      specFile: spec?.file ?? (table.metadata?.spec.file || null),
      budgetBytes: budgetOverride ?? spec?.memoryLimitBytes ?? null,
      capacity: source.csvPath === null ? null : await readCapacity(source.csvPath, table.source),
    };
    const outDir = options.outDir ?? (source.csvPath === null ? options.resultsDir : dirname(source.csvPath));
    const written: string[] = [];
    for (const renderer of [markdownReport, htmlReport]) written.push(writeReport(outDir, table.name, renderer.extension, await renderer.render(input)));
    const color = Boolean(process.stdout.isTTY) && process.env.NO_COLOR === undefined;
    const separator = source === sources[0] ? '' : '\n';
    process.stdout.write(`${separator}${renderTerminalSummary(summarizeResults(table.name, table.rows), { color }).join('\n')}\n`);
    process.stderr.write(`mpx: ${table.name}: report → ${written.map((path) => relative(cwd, path) || path).join(', ')}\n`);
  }
  return EXIT_OK;
}

/** Every source's tables, one per spec name (the same file named twice counts once). */
async function collectSources(args: string[], resultsDir: string, cwd: string): Promise<ReportSource[]> {
  const byName = new Map<string, ReportSource>();
  const add = (source: ReportSource): void => {
    const other = byName.get(source.table.name);
    if (other !== undefined && other.table.source !== source.table.source) {
      throw new MpxError('USAGE', `two sources hold results named ${source.table.name}: ${other.table.source} and ${source.table.source}`, {
        hint: 'report them one at a time, with --out-dir for one of them, so one report does not overwrite the other',
      });
    }
    byName.set(source.table.name, source);
  };
  for (const arg of await expandGlobs(args)) {
    if (SPEC_FILE.test(arg)) {
      add(await specSource(arg, resultsDir, cwd));
      continue;
    }
    const side = await loadResultSide(arg, { cwd, resultsDir });
    const isOnDisk = await stat(resolve(cwd, arg)).then(() => true, () => false);
    for (const table of side.tables) {
      add({ table, csvPath: isOnDisk ? resolve(cwd, table.source) : null, spec: null });
    }
    if (side.tables.length === 0) {
      throw new MpxError('FILE_NOT_FOUND', `no results CSV in ${side.label}`, { hint: 'run mpx run first, or name a results CSV, a results directory or a git ref' });
    }
  }
  return [...byName.values()];
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
  const csvPath = resolve(cwd, resultsDir, `${spec.name}.csv`);
  const exists = await stat(csvPath).then((s) => s.isFile(), () => false);
  if (!exists) {
    throw new MpxError('FILE_NOT_FOUND', `${join(resultsDir, `${spec.name}.csv`)} does not exist: the spec ${file} has no results yet`, {
      hint: `run it first: mpx run ${file}`,
    });
  }
  const side = await loadResultSide(join(resultsDir, `${spec.name}.csv`), { cwd, resultsDir, isPathOnly: true });
  return { table: side.tables[0]!, csvPath, spec };
}

/**
 * The spec behind results named by file (from `meta.json`), for its description and budget. Optional context: a spec
 * that is gone, renamed or broken leaves them out, with a note.
 */
async function specOf(table: ResultTable, cwd: string): Promise<ExperimentSpec | null> {
  const file = table.metadata?.spec.file;
  if (!file) return null;
  if (!(await stat(resolve(cwd, file)).then((s) => s.isFile(), () => false))) return null;
  try {
    const { spec } = await loadSpec(file);
    return spec.name === table.name ? spec : null;
  } catch (error) {
    if (!(error instanceof MpxError)) throw error;
    process.stderr.write(`mpx: note: ${table.name}: the report leaves out the description and budget of ${file}, which does not load (${error.message})\n`);
    return null;
  }
}

async function readCapacity(csvPath: string, csvLabel: string): Promise<CapacityTable | null> {
  const path = capacityPath(csvPath);
  const text = await readFile(path, 'utf8').catch(() => null);
  return text === null ? null : parseCapacityCsv(text, capacityPath(csvLabel));
}

function parseBudget(text: string | undefined): number | null {
  if (text === undefined) return null;
  const bytes = parseByteSize(text);
  if (bytes === null) {
    throw new MpxError('USAGE', `--budget must be a size such as ${BYTE_SIZE_EXAMPLES}, got "${text}"`, { hint: 'e.g. mpx report experiments/*.yaml --budget 16GiB' });
  }
  return bytes;
}
