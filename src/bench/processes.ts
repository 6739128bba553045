/**
 * Measurements across processes: per-run overhead of the real worker (`dist/worker/main.js` through `runAll`) and
 * what it is made of (probes in fresh processes), the speed-up of 2 workers over 1 on an 8-run matrix, and the
 * machine's own ceiling for it (the same pure compute in 1 and in 2 processes at once).
 */
import { availableParallelism } from 'node:os';
import { execaNode } from 'execa';
import { runAll } from '../runner/pool.js';
import type { RunRecord } from '../runner/protocol.js';
import { childrenCpuMs } from './contention.js';
import { overheadRuns, poolRuns } from './specs.js';
import { median } from './stats.js';

export interface OverheadResults {
  /**
   * Per run: wall time from spawn to exit as the pool records it (`wallMs`), minus the run's timed training
   * (steps × median step time). The model is tiny and trains one step, so what is left is process start, imports,
   * backend init, data, the fp32 memory measurement, evaluation, IPC and exit. Median over the runs, ms.
   */
  overheadMs: number;
  wallMs: number[];
  /** Probes, median of their repeats: wall from spawn to exit in the parent, and their own timings. */
  probes: Record<string, { wallMs: number; importMs?: number; initMs?: number; startedMs: number }>;
}

export interface PoolSpeedup {
  oneWorkerMs: number;
  twoWorkersMs: number;
  speedup: number;
  /**
   * CPU time (user + system) the workers used with 1 job, ms; null off Linux. Above `oneWorkerMs` means a worker
   * keeps more than one core busy at times (V8's background compilation and GC threads), which a second worker then
   * competes for: 2 jobs can then be only about 2 × oneWorkerMs / oneWorkerCpuMs faster.
   */
  oneWorkerCpuMs: number | null;
  twoWorkersCpuMs: number | null;
  failed: string[];
}

export interface PoolResults extends PoolSpeedup {
  runs: number;
  /** Same fixed compute in 1 process, then in 2 at once: 2 × t1 / t2 (2 = two independent cores). */
  ceiling: number;
}

function checkRecords(records: RunRecord[]): string[] {
  return records.filter((r) => r.status !== 'ok').map((r) => `${r.runId}: ${r.status} ${r.reason ?? ''}`.trim());
}

async function runProbe(probeFile: string, args: string[]): Promise<{ wallMs: number; result: Record<string, number> }> {
  const started = performance.now();
  const child = await execaNode(probeFile, args, { timeout: 120_000 });
  const wallMs = performance.now() - started;
  return { wallMs, result: JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, number> };
}

/** Per run: wall time minus the timed training steps (steps × median step time), median over the runs. */
async function runOverhead(workerFile: string): Promise<{ overheadMs: number; wallMs: number[] }> {
  const records = await runAll(overheadRuns(), { workerFile, jobs: 1 });
  const failed = checkRecords(records);
  if (failed.length > 0) throw new Error(`overhead runs failed: ${failed.join('; ')}`);
  return {
    overheadMs: median(records.map((r) => r.wallMs - r.measurements!.steps * r.measurements!.stepMsMedian)),
    wallMs: records.map((r) => r.wallMs),
  };
}

export async function measureOverhead(workerFile: string, probeFile: string, repeats = 3): Promise<OverheadResults> {
  const { overheadMs, wallMs } = await runOverhead(workerFile);

  const probes: OverheadResults['probes'] = {};
  for (const what of ['noop', 'import:execa', 'import:tfjs', 'require:tfjs', 'backend:auto']) {
    const samples: Array<{ wallMs: number; result: Record<string, number> }> = [];
    for (let i = 0; i < repeats; i++) samples.push(await runProbe(probeFile, [what]));
    const pick = (key: string): number | undefined => {
      const values = samples.map((s) => s.result[key]).filter((v): v is number => typeof v === 'number');
      return values.length > 0 ? median(values) : undefined;
    };
    probes[what] = {
      wallMs: median(samples.map((s) => s.wallMs)),
      importMs: pick('importMs'),
      initMs: pick('initMs'),
      startedMs: pick('startedMs') ?? NaN,
    };
  }
  return { overheadMs, wallMs, probes };
}

/** 1-vs-2 process ceiling of this machine: the same wasm matmul work alone, then twice at once. */
async function measureCeiling(probeFile: string, reps = 300): Promise<number> {
  const once = async (count: number): Promise<number> => {
    const startAt = Date.now() + 1500; // both children import and init first, then start together
    const results = await Promise.all(Array.from({ length: count }, () => runProbe(probeFile, ['matmul', String(startAt), String(reps)])));
    return Math.max(...results.map((r) => r.result['computeMs']!));
  };
  const one = await once(1);
  const two = await once(2);
  return (2 * one) / two;
}

async function measureSpeedup(workerFile: string): Promise<PoolSpeedup> {
  const runs = poolRuns();
  const timeJobs = async (jobs: number): Promise<{ ms: number; cpuMs: number | null; failed: string[] }> => {
    const cpuBefore = childrenCpuMs();
    const started = performance.now();
    const records = await runAll(runs, { workerFile, jobs });
    const cpuAfter = childrenCpuMs();
    const cpuMs = cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore;
    return { ms: performance.now() - started, cpuMs, failed: checkRecords(records) };
  };
  const one = await timeJobs(1);
  const two = await timeJobs(2);
  return {
    oneWorkerMs: one.ms,
    twoWorkersMs: two.ms,
    speedup: one.ms / two.ms,
    oneWorkerCpuMs: one.cpuMs,
    twoWorkersCpuMs: two.cpuMs,
    failed: [...one.failed, ...two.failed],
  };
}

export async function measurePool(workerFile: string, probeFile: string): Promise<PoolResults> {
  const current = await measureSpeedup(workerFile);
  const ceiling = availableParallelism() >= 2 ? await measureCeiling(probeFile) : 1;
  return { runs: poolRuns().length, ...current, ceiling };
}
