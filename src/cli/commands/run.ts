/**
 * `mpx run <specs...>`: plan every spec, run all their runs in one worker pool, and rewrite each spec's results after
 * every finished run (so an interrupt or a crash of mpx itself never loses finished work).
 */
import { createRequire } from 'node:module';
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MpxError } from '../../errors.js';
import type { RunConfig } from '../../matrix/types.js';
import { aggregateCells } from '../../results/aggregate.js';
import { collectMetadata, readProvenance, type Provenance } from '../../results/metadata.js';
import { assertResultsDirWritable, writeResults } from '../../results/store.js';
import { detectGpus, findTensorflowPackage } from '../../runner/devices.js';
import { runAll } from '../../runner/pool.js';
import { createProgress } from '../../runner/progress.js';
import type { RunRecord } from '../../runner/protocol.js';
import { loadAndPlan, type PlannedSpec } from '../load-specs.js';

export interface RunCommandOptions {
  jobs?: number;
  maxRuns?: number;
  resultsDir: string;
  failFast: boolean;
}

const WORKER_FILE = fileURLToPath(new URL('../../worker/main.js', import.meta.url));

export async function runCommand(args: string[], options: RunCommandOptions): Promise<number> {
  const planned = await loadAndPlan(args, options);
  assertBackendsInstalled(planned);
  assertResultsDirWritable(options.resultsDir);
  const jobs = options.jobs ?? (await defaultJobCount(planned));
  const provenance = await readProvenance(process.cwd());
  const versions = tfjsVersions();

  const runs = planned.flatMap((p) => p.plan.runs);
  const specOf = new Map<RunConfig, PlannedSpec>();
  for (const p of planned) for (const run of p.plan.runs) specOf.set(run, p);
  const recordsBySpec = new Map<PlannedSpec, RunRecord[]>(planned.map((p) => [p, []]));

  const write = (p: PlannedSpec, records: RunRecord[]) =>
    writeResults(options.resultsDir, p.spec.name, {
      rows: aggregateCells(p.plan, records),
      records,
      metadata: collectMetadata({
        mpxVersion: MPX_VERSION,
        nodeVersion: process.version,
        tfjsVersions: versions,
        cpus: cpus(),
        gpu: null,
        provenance: provenance as Provenance | null,
        spec: { name: p.spec.name, file: p.spec.file, sha256: p.spec.sha256 },
        date: new Date(),
        plannedRuns: p.plan.runs.length,
        records,
      }),
    });

  const progress = createProgress({ total: runs.length, isTTY: Boolean(process.stderr.isTTY), stream: process.stderr, jobs });
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupt.signal.aborted) process.exit(130); // a second Ctrl-C: leave at once
    process.stderr.write(`\nmpx: ${signal}: stopping workers; finished runs are kept (press Ctrl-C again to exit at once)\n`);
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.stderr.write(`mpx: ${runs.length} runs from ${planned.length} spec(s), ${jobs} at a time\n`);
  try {
    await runAll(runs, {
      jobs,
      workerFile: WORKER_FILE,
      signal: interrupt.signal,
      failFast: options.failFast,
      onStart: (run) => progress.start(run),
      onProgress: (run, step, total) => progress.progress(run, step, total),
      onRecord: (record, run) => {
        progress.finish(record, run);
        const p = specOf.get(run)!;
        const records = recordsBySpec.get(p)!;
        records.push(record);
        write(p, records);
      },
    });
  } finally {
    progress.done();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  let failed = 0;
  for (const p of planned) {
    const records = recordsBySpec.get(p)!;
    if (records.length === 0) continue;
    const paths = write(p, records);
    failed += records.filter((r) => r.status === 'failed' || r.status === 'crashed' || r.status === 'timeout').length;
    const ok = records.filter((r) => r.status === 'ok').length;
    process.stderr.write(`mpx: ${p.spec.name}: ${ok}/${p.plan.runs.length} runs ok → ${paths.csv}\n`);
  }
  if (interrupt.signal.aborted) return 130;
  if (failed > 0) {
    process.stderr.write(`mpx: ${failed} run(s) failed; see the status and reason columns\n`);
    return 1;
  }
  return 0;
}

/** An explicitly requested `tensorflow` backend that is not installed is an input error, reported before any run. */
function assertBackendsInstalled(planned: PlannedSpec[]): void {
  for (const { spec } of planned) {
    if (spec.backend !== 'tensorflow' || findTensorflowPackage() !== null) continue;
    const at = spec.locate(['backend']);
    throw new MpxError('BACKEND_UNAVAILABLE', 'backend tensorflow is requested but neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed', {
      file: spec.file,
      line: at?.line,
      col: at?.col,
      hint: 'npm install @tensorflow/tfjs-node-gpu (it downloads libtensorflow), or use backend: auto to fall back to wasm',
    });
  }
}

/** One worker per core on CPU backends; one per GPU when the tensorflow backend can run on GPUs. */
async function defaultJobCount(planned: PlannedSpec[]): Promise<number> {
  const mayUseTensorflow = planned.some((p) => p.spec.backend === 'auto' || p.spec.backend === 'tensorflow');
  if (mayUseTensorflow && findTensorflowPackage() === '@tensorflow/tfjs-node-gpu') {
    const gpus = await detectGpus();
    if (gpus.length > 0) return gpus.length;
  }
  return availableParallelism();
}

const require = createRequire(import.meta.url);
const MPX_VERSION = (require('../../../package.json') as { version: string }).version;

function tfjsVersions(): Record<string, string> {
  const versions: Record<string, string> = {};
  for (const name of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      versions[name] = (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      // not installed
    }
  }
  return versions;
}
