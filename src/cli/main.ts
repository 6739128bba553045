#!/usr/bin/env node
/**
 * The mpx command line: parses flags, calls the stages, renders errors. The one catch for the whole program lives
 * here. Exit codes: 0 ok; 1 some run failed, or a `mpx diff --fail-on` threshold was exceeded; 2 bad input or usage;
 * 3 (`mpx run --shard` only) no run failed but some are oom; 70 a bug in mpx; 130 interrupted.
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
    .option('--shard <index/count>', 'run one shard of the selected runs, e.g. 2/4 (1-based; no lock: shards on many hosts may share the results directory; merge them with mpx merge)')
    .addOption(maxRuns)
    .action(
      async (
        specs: string[],
        opts: {
          shard?: string;
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

  const slurm = program
    .command('slurm')
    .description('run specs on a Slurm cluster as a job array of shards plus a merge job; "mpx slurm status" shows each shard');
  slurm
    .command('submit', { isDefault: true })
    .description('submit the shards whose runs are not recorded yet (all, the first time) and a merge job (the default of mpx slurm)')
    .argument('<specs...>', 'spec files or globs')
    .option('--shards <n>', 'array tasks, each one shard of the runs (default: one per run, at most 1000; a resubmission keeps the first count)', positiveInteger('--shards'))
    .option('--throttle <n>', 'array tasks running at once (sbatch --array=…%n)', positiveInteger('--throttle'))
    .option('--time <limit>', 'time limit of each task, e.g. 2:00:00 (sbatch --time)')
    .option('--partition <name>', 'partition to submit to (sbatch --partition)')
    .option('--gpus-per-task <n>', 'GPUs per task (sbatch --gpus-per-task); mpx pins one worker to each', positiveInteger('--gpus-per-task'))
    .option('--gres <spec>', 'generic resources per task, e.g. gpu:1 (sbatch --gres)')
    .option('--cpus-per-task <n>', 'CPUs per task (sbatch --cpus-per-task)', positiveInteger('--cpus-per-task'))
    .option('--mem <size>', 'memory per task, e.g. 16G (sbatch --mem)')
    .option('--sbatch <option>', 'any other sbatch option for the tasks and the merge job, e.g. --sbatch=--account=proj (repeatable)', collect, [] as string[])
    .option('-j, --jobs <n>', 'worker processes per task (default: its GPUs, else its CPUs, else 1)', positiveInteger('--jobs'))
    .option('--results-dir <dir>', 'the shared results directory (all nodes must see it)', 'results')
    .option('--filter <key=value,...>', 'run only matching cells, as mpx run --filter (repeatable)', collect, [] as string[])
    .option('--force', 're-run every selected run, even recorded ones', false)
    .option('--retry-failed', 'also submit the shards whose runs failed, timed out or crashed, and re-run those runs', false)
    .option('--memory-limit <size>', 'as mpx run --memory-limit')
    .option('--retries <n>', 'as mpx run --retries', nonNegativeInteger('--retries'))
    .option('--dry-run', 'print the scripts and the sbatch commands; submit nothing', false)
    .option('--wait', 'wait until the tasks and the merge job have ended, then print the status', false)
    .addOption(maxRuns)
    .action(async (specs: string[], opts: import('./commands/slurm.js').SlurmSubmitOptions) => {
      setExit(await (await import('./commands/slurm.js')).slurmSubmitCommand(specs, opts));
    });
  slurm
    .command('status')
    .description('per shard: done, running, pending, failed or missing (from the recorded runs and squeue)')
    .argument('<specs...>', 'spec files or globs (as submitted)')
    .option('--results-dir <dir>', 'the shared results directory', 'results')
    .option('--filter <key=value,...>', 'as submitted (repeatable)', collect, [] as string[])
    .addOption(maxRuns)
    .action(async (specs: string[], opts: import('./commands/slurm.js').SlurmStatusOptions) => {
      setExit(await (await import('./commands/slurm.js')).slurmStatusCommand(specs, opts));
    });

  program
    .command('merge')
    .description('fold the record files of shards into results/<name>.runs.jsonl and rebuild the CSV and meta.json (runs nothing)')
    .argument('<specs...>', 'spec files or globs (the specs the shards ran)')
    .option('--results-dir <dir>', 'the results directory the shards wrote to', 'results')
    .addOption(maxRuns)
    .action(async (specs: string[], opts: { resultsDir: string; maxRuns?: number }) => {
      setExit(await (await import('./commands/merge.js')).mergeCommand(specs, opts));
    });

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
    .command('report')
    .description('write results/<name>.md and .html for each spec (charts, the answer, provenance) and print the summary')
    .argument('[sources...]', 'specs (their results), results CSVs, results directories, git refs or REF:PATH; default: the results directory')
    .option('--results-dir <dir>', "where a spec's results are, and the folder a git ref is read at", 'results')
    .option('--out-dir <dir>', 'where reports are written (default: beside each results CSV; results read from git: the results directory)')
    .option('--budget <size>', "memory budget drawn on the charts, e.g. 16GiB (default: the spec's memoryLimit)")
    .action(async (sources: string[], opts: { resultsDir: string; outDir?: string; budget?: string }) => {
      setExit(await (await import('./commands/report.js')).reportCommand(sources, opts));
    });

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
