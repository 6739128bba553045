#!/usr/bin/env node
/**
 * The mpx command line: parses flags, calls the stages, renders errors. The one catch for the whole program lives
 * here. Exit codes: 0 ok; 1 some run failed (or a gate the user asked for); 2 bad input or usage; 70 a bug in mpx;
 * 130 interrupted.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { formatMpxError, isMpxError } from '../errors.js';
import { planCommand } from './commands/plan.js';
import { runCommand } from './commands/run.js';
import { validateCommand } from './commands/validate.js';

const EXIT_USAGE = 2;
const EXIT_BUG = 70;

function positiveInteger(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1) {
      throw new InvalidArgumentError(`${name} must be a whole number from 1 and up, got "${value}"`);
    }
    return Number(value);
  };
}

function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('mpx')
    .description('Measure whether mixed precision really saves (or costs) training memory for your model')
    .showHelpAfterError('(run mpx --help for usage)')
    .exitOverride();
  const maxRuns = new Option('--max-runs <n>', 'allow a matrix with more runs than the spec\'s maxRuns').argParser(positiveInteger('--max-runs'));

  program
    .command('run')
    .description('validate, expand and run every cell of the specs; write results/<name>.csv')
    .argument('<specs...>', 'spec files or globs, e.g. experiments/*.yaml')
    .option('-j, --jobs <n>', 'worker processes at once (default: one per core; one per GPU on the GPU backend)', positiveInteger('--jobs'))
    .option('--results-dir <dir>', 'where results are written', 'results')
    .option('--fail-fast', 'stop scheduling runs after the first failed one', false)
    .addOption(maxRuns)
    .action(async (specs: string[], opts: { jobs?: number; resultsDir: string; failFast: boolean; maxRuns?: number }) => {
      setExit(await runCommand(specs, opts));
    });

  program
    .command('plan')
    .description('print the runs the specs expand to, without running them')
    .argument('<specs...>', 'spec files or globs')
    .option('--json', 'print a JSON array, one object per run', false)
    .addOption(maxRuns)
    .action(async (specs: string[], opts: { json: boolean; maxRuns?: number }) => {
      setExit(await planCommand(specs, opts));
    });

  program
    .command('validate')
    .description('check specs against the schema and cross-field rules; exit 2 on the first bad file')
    .argument('<specs...>', 'spec files or globs')
    .addOption(maxRuns)
    .action(async (specs: string[], opts: { maxRuns?: number }) => {
      setExit(await validateCommand(specs, opts));
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const program = buildProgram((code) => (exitCode = code));
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander already printed the message (or the help/version text)
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (isMpxError(error)) {
      process.stderr.write(`mpx: ${formatMpxError(error)}\n`);
      return EXIT_USAGE;
    }
    const detail = process.env.MPX_DEBUG ? `\n${error instanceof Error ? error.stack : String(error)}` : ' (set MPX_DEBUG=1 for the stack)';
    process.stderr.write(`mpx: internal error: ${error instanceof Error ? error.message : String(error)}; this is a bug in mpx${detail}\n`);
    return EXIT_BUG;
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
