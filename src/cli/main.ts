#!/usr/bin/env node
/**
 * The mpx command line: parses flags, calls the stages, renders errors. The one catch for the whole program lives
 * here. Exit codes: 0 ok; 1 some run failed, or a `mpx diff --fail-on` threshold was exceeded; 2 bad input or usage;
 * 70 a bug in mpx; 130 interrupted.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { formatMpxError, isMpxError } from '../errors.js';
import { EXIT_BUG, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import type { DiffFormat } from './commands/diff.js';

// Commands are imported when they run: `mpx diff` and `mpx env` then start without compiling the spec schema.
const DIFF_FORMATS: readonly DiffFormat[] = ['terminal', 'markdown', 'json'];


function positiveInteger(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1) {
      throw new InvalidArgumentError(`${name} must be a whole number from 1 and up, got "${value}"`);
    }
    return Number(value);
  };
}

function nonNegativeInteger(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) > 10) {
      throw new InvalidArgumentError(`${name} must be a whole number from 0 to 10, got "${value}"`);
    }
    return Number(value);
  };
}

/** For repeatable options: `--filter a --filter b` → ['a', 'b']. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
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
    .option('--force', 're-run the selected runs even when their result is recorded', false)
    .option('--retry-failed', 're-run the selected runs whose recorded status is failed, timeout or crashed', false)
    .option('--memory-limit <size>', "budget for each run's peak, e.g. 2GiB: TensorFlow-modeled on tfjs, measured on torch (overrides the specs' memoryLimit); over it a run is recorded as oom")
    .option('--retries <n>', "restarts of a crashed run (overrides the specs' train.retries)", nonNegativeInteger('--retries'))
    .option('--worker-memory <size>', "memory one worker may take, e.g. 8GiB (default: this machine's memory ÷ jobs); a worker past it is killed and its run recorded as oom")
    .option(
      '--filter <key=value,...>',
      'run only matching cells, e.g. policy=mixed_float16,model=cnn; keys: model, batchSize, microBatchSize, policy, accumulationSteps, backend, cellId (snake_case too); "key=a|b" (quoted) or a repeated key = either (repeatable)',
      collect,
      [] as string[],
    )
    .addOption(maxRuns)
    .action(
      async (
        specs: string[],
        opts: {
          jobs?: number;
          resultsDir: string;
          failFast: boolean;
          maxRuns?: number;
          force: boolean;
          retryFailed: boolean;
          filter: string[];
          memoryLimit?: string;
          workerMemory?: string;
          retries?: number;
        },
      ) => {
        setExit(await (await import('./commands/run.js')).runCommand(specs, opts));
      },
    );

  program
    .command('diff')
    .description('compare results: each side a results CSV, a results directory or a git ref (head: the results directory)')
    .argument('<base>', 'a results CSV, a results directory, a git ref (its results directory), or REF:PATH')
    .argument('[head]', 'the same kinds; default: the --results-dir of the working tree')
    .addOption(new Option('--format <format>', 'output format').choices(DIFF_FORMATS).default('terminal'))
    .option('--fail-on <metric:threshold>', 'exit 1 when a metric changes beyond it (not noise): peak_bytes:+5%, samples_per_s:-10%, final_loss:0.01 (repeatable)', collect, [] as string[])
    .option('--tolerance <metric-or-kind=amount>', 'noise band: timing=25%, final_loss=1e-4; kinds: timing, process-memory, bytes, count, value (repeatable)', collect, [] as string[])
    .option('--results-dir <dir>', 'the results directory (the head side, and where a git ref is read)', 'results')
    .option('--all', 'also list unchanged values', false)
    .action(
      async (base: string, head: string | undefined, opts: { format: DiffFormat; failOn: string[]; tolerance: string[]; resultsDir: string; all: boolean }) => {
        setExit(await (await import('./commands/diff.js')).diffCommand(base, head, opts));
      },
    );

  program
    .command('env')
    .description('print the versions, backends and devices mpx detects here (what mpx run records in meta.json)')
    .option('--json', 'print JSON', false)
    .action(async (opts: { json: boolean }) => {
      setExit(await (await import('./commands/env.js')).envCommand(opts));
    });

  program
    .command('plan')
    .description('print the runs the specs expand to, without running them')
    .argument('<specs...>', 'spec files or globs')
    .option('--json', 'print a JSON array, one object per run', false)
    .addOption(maxRuns)
    .action(async (specs: string[], opts: { json: boolean; maxRuns?: number }) => {
      setExit(await (await import('./commands/plan.js')).planCommand(specs, opts));
    });

  program
    .command('validate')
    .description('check specs against the schema and cross-field rules; exit 2 on the first bad file')
    .argument('<specs...>', 'spec files or globs')
    .addOption(maxRuns)
    .action(async (specs: string[], opts: { maxRuns?: number }) => {
      setExit(await (await import('./commands/validate.js')).validateCommand(specs, opts));
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
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
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

void main(process.argv).then((code) => {
  process.exitCode = code;
});
