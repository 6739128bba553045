/**
 * The cost of scaling out, without training anything: submitting a 1,000-run spec with `mpx slurm` (the whole CLI,
 * against a recorded-sbatch fake: shell scripts named sbatch/scontrol/squeue that log their arguments and print job
 * ids as `sbatch --parsable` does), merging 1,000 records from shard record files, and the results bookkeeping of one
 * finished run with 100 and with 10,000 records already there (and what the old whole-file rewrite cost).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, hostname, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { planRuns } from '../matrix/plan.js';
import type { Plan } from '../matrix/types.js';
import { aggregateCells } from '../results/aggregate.js';
import { collectMetadata, type MachineFacts } from '../results/metadata.js';
import { openRecordFile } from '../results/record-files.js';
import { mergeSpecRecords } from '../results/spec-records.js';
import { SpecResults } from '../results/spec-results.js';
import { writeDerivedResults, writeResults } from '../results/store.js';
import type { RunMeasurements, StoredRecord } from '../runner/protocol.js';
import { loadSpecText } from '../spec/load.js';
import { median } from '../util/stats.js';

export interface ScaleOutResults {
  submit: { runs: number; wallMs: number; sbatchCalls: number; arrays: number; shards: number } | { error: string };
  merge: { records: number; files: number; ms: number };
  /** Per finished run at each count of records already there (median of `ADDS` appends, fsync included). */
  bookkeeping: Array<{ records: number; perRunMs: number; rewriteMs: number; rebuildMs: number }>;
}

const ADDS = 40;

/** A spec of 200 cells (10 tiny MLPs × 10 batch sizes × 2 policies) and enough repeats for `runs` runs (a multiple of 200). */
function manyRunsSpec(runs: number): string {
  const widths = Array.from({ length: 10 }, (_, i) => 8 + i);
  return `
name: bench-scale-${runs}
seed: 1
repeats: ${Math.ceil(runs / 200)}
maxRuns: ${Math.ceil(runs / 200) * 200}
backend: wasm
data: { kind: synthetic, samples: 64, evalSamples: 16 }
train: { steps: 1, warmupSteps: 0, optimizer: { name: adam, learningRate: 0.001 } }
models:
${widths.map((w) => `  w${w}: { preset: mlp, input: [16], hidden: [${w}], classes: 2 }`).join('\n')}
matrix:
  model: [${widths.map((w) => `w${w}`).join(', ')}]
  batchSize: [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
  policy: [float32, mixed_bfloat16]
`;
}

function planOf(runs: number): Plan {
  return planRuns(loadSpecText(manyRunsSpec(runs), `bench-scale-${runs}.yaml`).spec);
}

function measurements(i: number): RunMeasurements {
  return {
    backend: 'wasm',
    precision: 'native',
    paramCount: 170 + i,
    steps: 1,
    stepMsMedian: 1.25 + i / 1000,
    samplesPerSecond: 5120.5 - i,
    initialLoss: 0.6931471805599453 + i / 1e6,
    finalLoss: 0.6812345678901234 - i / 1e6,
    evalAccuracy: 0.5625,
    lossScaleFinal: null,
    skippedSteps: 0,
    paramsBytes: 680,
    gradsBytes: 680,
    optimizerBytes: 1360,
    accumulatorBytes: 0,
    activationsPeakBytes: 1564,
    peakBytes: 4492 + i,
    restingBytes: 2040,
    peakModeledBytes: 4492 + i,
    activationsPeakModeledBytes: 1564,
    peakTfModeledBytes: 3000 + i,
    activationsPeakTfModeledBytes: 416,
    peakTorchModeledBytes: 3100 + i,
    reservedPeakBytes: null,
    rssPeakBytes: 87_781_376 + i,
    wasmHeapBytes: 16_777_216,
    engine: { device: 'cpu', deviceName: 'Bench CPU', memoryMethod: 'tensor ledger: every buffer of the backend counted once, fp32 graph' },
  };
}

/** One realistic ok record per run of the plan (~1 KB each, like a real one). */
function recordsOf(plan: Plan): StoredRecord[] {
  return plan.runs.map((run, i) => ({
    runId: run.runId,
    cellId: run.cellId,
    cellIndex: run.cellIndex,
    repeat: run.repeat,
    status: 'ok',
    reason: null,
    backend: 'wasm',
    wallMs: 812 + i,
    measurements: measurements(i),
    reachedBytes: null,
    gpuPeakBytes: null,
    attempts: 1,
    host: 'node-01',
  }));
}

const machine: MachineFacts = {
  mpxVersion: '0.0.0-bench',
  nodeVersion: process.version,
  tfjsVersions: {},
  os: { platform: process.platform, release: '', arch: process.arch },
  cpus: cpus().map((c) => ({ model: c.model })),
  gpus: [],
  provenance: null,
};

export async function measureScaleOut(cliFile: string): Promise<ScaleOutResults> {
  const root = mkdtempSync(join(tmpdir(), 'mpx-bench-scale-'));
  try {
    return { submit: measureSubmit(root, cliFile), merge: await measureMerge(root), bookkeeping: [100, 10_000].map((n) => measureBookkeeping(root, n)) };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** `mpx slurm <1,000-run spec>` with sbatch, scontrol and squeue replaced by scripts that record their calls. */
function measureSubmit(root: string, cliFile: string): ScaleOutResults['submit'] {
  const bin = join(root, 'fake-slurm');
  mkdirSync(bin);
  const log = join(root, 'sbatch.log');
  writeFileSync(log, '');
  const script = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  script('sbatch', `echo "$*" >> '${log}'\necho $(( 1000 + $(wc -l < '${log}') ))`);
  script('scontrol', 'echo "MaxArraySize            = 1001"');
  script('squeue', 'true');
  const specFile = join(root, 'bench-scale-1000.yaml');
  writeFileSync(specFile, manyRunsSpec(1000));
  try {
    const started = performance.now();
    const stdout = execFileSync(process.execPath, [cliFile, 'slurm', specFile, '--results-dir', join(root, 'results')], {
      cwd: root,
      env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const wallMs = performance.now() - started;
    const calls = readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
    const shards = Number(/ (\d+) shard\(s\) of (\d+)/.exec(stdout)?.[2] ?? 0);
    return { runs: 1000, wallMs, sbatchCalls: calls.length, arrays: calls.filter((c) => c.includes('--array=')).length, shards };
  } catch (error) {
    return { error: error instanceof Error ? error.message.split('\n')[0]! : String(error) };
  }
}

/** 1,000 records in 4 shard record files, merged: read, fold, write runs.jsonl, CSV and meta.json, remove the files. */
export async function measureMerge(root: string, runs = 1000): Promise<ScaleOutResults['merge']> {
  const dir = join(root, `merge-${runs}`);
  const plan = planOf(runs);
  const records = recordsOf(plan);
  const files = 4;
  for (let s = 0; s < files; s++) {
    const writer = openRecordFile(dir, plan.specName, {
      writer: { host: `node-0${s}`, pid: 2 ** 30 + s, shard: { index: s + 1, count: files }, startedAt: new Date(s).toISOString(), slurmJob: null },
      spec: { name: plan.specName, file: 'bench.yaml', sha256: '0'.repeat(64) },
      plannedRuns: plan.runs.length,
      cells: plan.cells.map((cell) => ({ ...cell, runsPlanned: 1 })),
      machine,
    });
    records.filter((_, i) => i % files === s).forEach((r) => writer.append(r));
    writer.close();
  }
  const started = performance.now();
  const outcome = await mergeSpecRecords(dir, { name: plan.specName, file: 'bench.yaml', sha256: '0'.repeat(64) }, plan);
  const ms = performance.now() - started;
  if (outcome.records.length !== records.length || outcome.removed.length !== files) throw new Error('bench: the merge did not fold every record');
  return { records: records.length, files, ms };
}

/**
 * With `n` records stored: the median cost of recording one more finished run (SpecResults.add: one append and
 * fsync to the record file; the CSV rebuild is due only every few seconds), what every run used to cost (rewriting
 * runs.jsonl, CSV and meta.json of n records), and one CSV + meta rebuild of n records (now at most every 5 s).
 */
function measureBookkeeping(root: string, n: number): ScaleOutResults['bookkeeping'][number] {
  const plan = planOf(n + ADDS);
  const records = recordsOf(plan);
  const stored = records.slice(0, n);
  const fresh = records.slice(n, n + ADDS);
  const dir = join(root, `bookkeeping-${n}`);
  const spec = { file: 'bench.yaml', sha256: '0'.repeat(64) };
  const results = new SpecResults(plan.specName, spec, plan, stored, dir, machine, { shard: null, host: hostname(), toRun: plan.runs.slice(n), schedulerJob: null });
  const perRun: number[] = [];
  for (const record of fresh) {
    const started = performance.now();
    results.add(record);
    perRun.push(performance.now() - started);
  }
  const metadata = () => collectMetadata({ ...machine, spec: { name: plan.specName, ...spec }, date: new Date(), plannedRuns: plan.runs.length, records: stored });
  const rewrite: number[] = [];
  const rebuild: number[] = [];
  for (let i = 0; i < 3; i++) {
    // Each as mpx did it: aggregate every record, then write.
    let started = performance.now();
    writeResults(join(root, `rewrite-${n}`), plan.specName, { rows: aggregateCells(plan, stored), records: stored, metadata: metadata() });
    rewrite.push(performance.now() - started);
    started = performance.now();
    writeDerivedResults(join(root, `rebuild-${n}`), plan.specName, { rows: aggregateCells(plan, stored), metadata: metadata() });
    rebuild.push(performance.now() - started);
  }
  return { records: n, perRunMs: median(perRun)!, rewriteMs: median(rewrite)!, rebuildMs: median(rebuild)! };
}
