/**
 * `mpx diff <base> [head]`: compare results between two CSVs, directories or git refs (head defaults to the working
 * tree's results directory). Exit codes: 0 no threshold exceeded; 1 a `--fail-on` threshold exceeded; 2 bad input.
 */
import { MpxError } from '../../errors.js';
import { diffResults, type FailOnRule, type Tolerance } from '../../results/diff/compare.js';
import { renderDiffJson } from '../../results/diff/json.js';
import { renderDiffMarkdown } from '../../results/diff/markdown.js';
import { renderDiffTerminal } from '../../results/diff/terminal.js';
import { parseFailOn, parseTolerance } from '../diff-flags.js';
import { EXIT_FAILED, EXIT_OK } from '../exit-codes.js';
import { loadResultSide, pairSides } from '../result-sources.js';

export type DiffFormat = 'terminal' | 'markdown' | 'json';

export interface DiffCommandOptions {
  format: DiffFormat;
  /** `--fail-on <metric>:<threshold>` arguments. */
  failOn: string[];
  /** `--tolerance <metric or kind>=<amount>` arguments. */
  tolerance: string[];
  resultsDir: string;
  /** Also list unchanged metrics. */
  all: boolean;
}

export async function diffCommand(baseArg: string, headArg: string | undefined, options: DiffCommandOptions): Promise<number> {
  // Flags first: a typo in a gate must fail before any git work, and must never pass silently.
  const failOn: FailOnRule[] = options.failOn.map(parseFailOn);
  const tolerances: Record<string, Tolerance> = Object.fromEntries(options.tolerance.map(parseTolerance));

  const cwd = process.cwd();
  const base = await loadResultSide(baseArg, { cwd, resultsDir: options.resultsDir });
  const head = await loadResultSide(headArg ?? options.resultsDir, { cwd, resultsDir: options.resultsDir, isPathOnly: headArg === undefined });
  const [baseTables, headTables] = pairSides(base, head);
  if (baseTables.length === 0 && headTables.length === 0) {
    throw new MpxError('FILE_NOT_FOUND', `no results CSV to compare in ${base.label} or ${head.label}`, {
      hint: 'run mpx run first, or point at the directory holding the results (--results-dir)',
    });
  }
  const result = diffResults(baseTables, headTables, { failOn, tolerances, baseLabel: base.label, headLabel: head.label });
  const render = { showAll: options.all };
  process.stdout.write(
    options.format === 'json' ? renderDiffJson(result) : options.format === 'markdown' ? renderDiffMarkdown(result, render) : renderDiffTerminal(result, render),
  );
  if (result.failures.length > 0) {
    process.stderr.write(`mpx: ${result.failures.length} --fail-on threshold(s) exceeded\n`);
    return EXIT_FAILED;
  }
  return EXIT_OK;
}
