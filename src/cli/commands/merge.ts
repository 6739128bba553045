/**
 * `mpx merge <specs...>`: folds the record files that shards (`mpx run --shard`, a Slurm array, a Kubernetes Indexed
 * Job, CI matrix jobs whose files were copied together) wrote into `<name>.runs.jsonl`, and rebuilds the CSV and
 * meta.json from every record. Atomic and idempotent; runs nothing. Exit 0 when every planned run has a result, 1
 * when some failed or none is recorded yet (the results hold what there is), 2 for bad input.
 */
import { mergeSpecRecords } from '../../results/spec-records.js';
import { FAILED_STATUSES } from '../../runner/protocol.js';
import { EXIT_FAILED, EXIT_OK } from '../exit-codes.js';
import { loadAndPlan } from '../load-specs.js';
import { assertNoWholeRun } from '../shard-guards.js';

export interface MergeCommandOptions {
  resultsDir: string;
  maxRuns?: number;
}

export async function mergeCommand(args: string[], options: MergeCommandOptions): Promise<number> {
  const planned = await loadAndPlan(args, options);
  assertNoWholeRun(options.resultsDir, 'which merges when it ends', 'wait for it to finish; it merges every record file then');
  let incomplete = 0;
  for (const { spec, plan, capacity } of planned) {
    if (capacity !== null) {
      process.stderr.write(`mpx: ${spec.name}: capacity searches are recorded by whole runs, not shards: nothing to merge\n`);
      continue;
    }
    const outcome = await mergeSpecRecords(options.resultsDir, spec, plan);
    const byId = new Map(outcome.records.map((r) => [r.runId, r]));
    const ok = outcome.records.filter((r) => r.status === 'ok').length;
    const failed = outcome.records.filter((r) => FAILED_STATUSES.has(r.status)).length;
    const missing = plan.runs.filter((run) => !byId.has(run.runId)).length;
    const files = outcome.removed.length + outcome.kept.length;
    const where = outcome.written === null ? `${options.resultsDir}/${spec.name}.csv unchanged` : `→ ${outcome.written.csv}`;
    const parts = [`${ok}/${plan.runs.length} runs ok`, failed > 0 ? `${failed} failed` : '', missing > 0 ? `${missing} not recorded yet` : ''].filter((p) => p !== '');
    process.stderr.write(`mpx: ${spec.name}: merged ${files} record file(s), ${outcome.fromFiles} new record(s); ${parts.join(', ')} ${where}\n`);
    if (outcome.kept.length > 0) {
      const who = outcome.kept.slice(0, 3).map((f) => (f.header === null ? f.path : `${f.header.writer.host} pid ${f.header.writer.pid}`)).join(', ');
      process.stderr.write(`mpx: ${spec.name}: kept ${outcome.kept.length} record file(s) still being written (${who}); merge again when they are done\n`);
    }
    if (failed > 0 || missing > 0) incomplete += 1;
  }
  if (incomplete > 0) {
    process.stderr.write('mpx: some runs failed or are not recorded yet: run their shards again (mpx slurm resubmits only those), or mpx run <specs> here\n');
    return EXIT_FAILED;
  }
  return EXIT_OK;
}
