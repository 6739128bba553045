/**
 * `npm run bench`: training speed on the embedded default backend, measured side by side in one run, against the
 * targets of the performance issue. A benchmark, not a test: it prints a table (or `--json`) and exits 0 whatever
 * the verdicts; 1 only when it could not run at all. Progress goes to stderr.
 *
 *   node dist/bench/main.js [--json]
 *
 * Internal: `--child stock` is the fresh process of the stock-wasm measurement.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { measureCapacity } from './capacity.js';
import { watchContention, type Contention } from './contention.js';
import { describeEnvironment } from './env.js';
import { measurePlan } from './plan.js';
import { measureReport } from './results-report.js';
import { measureOverhead, measurePool } from './processes.js';
import { buildNotes, buildRows, renderText, type BenchResults } from './report.js';
import { measureStock, measureStockInThisProcess } from './stock.js';
import { measureScaleOut } from './scale-out.js';
import { measureTorch } from './torch.js';

const MAIN_FILE = fileURLToPath(import.meta.url);
const WORKER_FILE = join(dirname(MAIN_FILE), '..', 'worker', 'main.js');
const PROBE_FILE = join(dirname(MAIN_FILE), 'probe.js');
const CLI_FILE = join(dirname(MAIN_FILE), '..', 'cli', 'main.js');

async function attempt<T>(fn: () => Promise<T> | T): Promise<T | { error: string }> {
  try {
    return await fn();
  } catch (error) {
    return { error: (error instanceof Error ? error.message : String(error)).split('\n')[0]! };
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { json: { type: 'boolean', default: false }, child: { type: 'string' } } });
  if (values.child === 'stock') {
    process.stdout.write(`${JSON.stringify(await measureStockInThisProcess())}\n`);
    return 0;
  }
  if (values.child !== undefined) throw new Error(`bench: unknown --child ${values.child}`);

  const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
  const started = performance.now();
  const environment = describeEnvironment();
  const contention: Record<string, Contention | null> = {};
  const section = async <T>(name: string, message: string, fn: () => Promise<T> | T): Promise<T | { error: string }> => {
    log(message);
    const watch = watchContention();
    const result = await attempt(fn);
    contention[name] = watch.stop();
    return result;
  };
  const plan = await section('plan', 'planning a 100,000-cell matrix', () => measurePlan());
  const report = await section('report', 'reporting a 1,000-row results CSV', () => measureReport());
  const { measureCompute } = await import('./compute.js');
  const compute = await section('compute', 'in-process training measurements', () => measureCompute(log));
  const stock = await section('stock', 'stock wasm in a fresh process', () => measureStock(MAIN_FILE));
  const overhead = await section('overhead', 'per-run overhead and its parts (probes)', () => measureOverhead(WORKER_FILE, PROBE_FILE));
  const pool = await section('pool', '2 workers vs 1 on an 8-run matrix, machine ceiling', () => measurePool(WORKER_FILE, PROBE_FILE));
  const torch = await section('torch', 'the torch engine on the same steps (PyTorch through Python)', () => measureTorch(log));
  const capacity = await section('capacity', 'the capacity study (experiments/capacity.yaml) searched from nothing', () => measureCapacity(CLI_FILE));
  const scaleOut = await section('scaleOut', 'scale-out: submitting 1,000 runs, merging, bookkeeping per run', () => measureScaleOut(CLI_FILE));

  const results: BenchResults = { environment, plan, compute, stock, overhead, pool, torch, report, capacity, scaleOut, contention, durationMs: performance.now() - started };
  const rows = buildRows(results);
  const notes = buildNotes(results, rows);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ ...results, rows, notes }, null, 2)}\n`);
  } else {
    process.stdout.write(`${renderText(results, rows, notes)}\n`);
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
