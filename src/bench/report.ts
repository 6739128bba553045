/**
 * The benchmark's table: one row per measurement with its value, target, the ratio the target is about and
 * pass/fail. Pure: builds rows from the measurements, renders Markdown text or a JSON document.
 */
import type { ComputeResults, PolicyProfile, StepMeasurement } from './compute.js';
import type { CapacityTiming } from './capacity.js';
import type { Contention } from './contention.js';
import type { BenchEnvironment } from './env.js';
import type { PlanTiming } from './plan.js';
import type { ReportTiming } from './results-report.js';
import type { ScaleOutResults } from './scale-out.js';
import type { OverheadResults, PoolResults } from './processes.js';
import type { StockResults } from './stock.js';
import type { TorchResults } from './torch.js';

export interface Row {
  id: string;
  measurement: string;
  value: string;
  /** Empty for rows that only inform. */
  target: string;
  /** The number the target is about (see `target`); null when there is none. */
  ratio: number | null;
  /** null: no target. */
  pass: boolean | null;
}

export interface BenchResults {
  environment: BenchEnvironment;
  plan: PlanTiming | { error: string };
  compute: ComputeResults | { error: string };
  stock: StockResults | { error: string };
  overhead: OverheadResults | { error: string };
  pool: PoolResults | { error: string };
  torch: TorchResults | { error: string };
  report: ReportTiming | { error: string };
  capacity: CapacityTiming | { error: string };
  scaleOut: ScaleOutResults | { error: string };
  /** Per section (plan, compute, stock, overhead, pool): other processes' share of the machine; null off Linux. */
  contention: Record<string, Contention | null>;
  durationMs: number;
}

/** Targets of the issue, as ratios. */
export const TARGETS = {
  mlpStepOfMatmul: 0.7,
  cnnSpeedupOverCpu: 8,
  mixedOverFloat32: 1.1,
  runOverheadS: 0.3,
  twoWorkerSpeedup: 1.8,
  planS: 1,
  reportS: 2,
  capacityS: 60,
  probesPerSearch: 6,
  submitS: 2,
  mergeS: 1,
  bookkeepingGrowth: 1.5,
} as const;

const ok = <T extends object>(value: T | { error: string }): value is T => !('error' in value);
const ms = (v: number): string => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v < 10 ? 2 : 1)} ms`);
const fixed = (v: number, digits = 2): string => v.toFixed(digits);

function stepOf(compute: ComputeResults, preset: string, policy: string): StepMeasurement | undefined {
  return compute.wasmSteps.find((s) => s.preset === preset && s.policy === policy);
}

function profileOf(compute: ComputeResults, preset: string, policy: string): PolicyProfile | undefined {
  return compute.profiles.find((p) => p.preset === preset && p.policy === policy);
}

/** The torch engine beside patched wasm on the same core: its steps, and wasm ÷ torch (above 1: torch is faster). */
function torchRows({ torch, compute }: BenchResults): Row[] {
  if (!ok(torch)) return [errorRow('torch', 'Torch engine (PyTorch through Python)', torch.error)];
  const rows: Row[] = [];
  const name = { mlp: 'MLP', cnn: 'CNN' } as const;
  for (const step of torch.steps) {
    const wasm = ok(compute) ? stepOf(compute, step.preset, 'float32') : undefined;
    const float32 = torch.steps.find((s) => s.preset === step.preset && s.policy === 'float32');
    const isFloat32 = step.policy === 'float32';
    rows.push({
      id: `torch.${step.preset}.${step.policy}`,
      measurement: isFloat32
        ? `${name[step.preset]} step, patched wasm ÷ torch (PyTorch ${torch.probe.torch}, ${torch.probe.cuda ? 'CUDA' : 'CPU'}), float32, batch ${step.batchSize}`
        : `  torch ${step.policy} (real 16-bit) ÷ torch float32`,
      value: isFloat32 ? `${wasm ? ms(wasm.step.wallMs) : '—'} vs ${ms(step.stepMs)}` : `${ms(step.stepMs)} vs ${float32 ? ms(float32.stepMs) : '—'}`,
      target: '',
      ratio: isFloat32 ? (wasm ? wasm.step.wallMs / step.stepMs : null) : float32 ? step.stepMs / float32.stepMs : null,
      pass: null,
    });
  }
  for (const failure of torch.failed) rows.push(errorRow('torch.failed', 'Torch engine run', failure));
  return rows;
}

function errorRow(id: string, measurement: string, error: string): Row {
  return { id, measurement, value: `error: ${error}`, target: '', ratio: null, pass: null };
}

export function buildRows(results: BenchResults): Row[] {
  const rows: Row[] = [];
  const { compute, stock, overhead, pool, plan } = results;

  if (ok(compute)) {
    const fwd = compute.forwardMatmul;
    rows.push({
      id: 'matmul.forward',
      measurement: `Forward matmul, MLP shapes (${fwd.shapes.map((s) => s.join('×')).join(', ')}), weights reused`,
      value: `${fixed(fwd.gflops, 1)} GFLOP/s`,
      target: '',
      ratio: null,
      pass: null,
    });
    for (const preset of ['mlp', 'cnn'] as const) {
      const step = stepOf(compute, preset, 'float32');
      if (step === undefined) continue;
      const ratio = step.gflops / fwd.gflops;
      const isMlp = preset === 'mlp';
      rows.push({
        id: `${preset}.step.gflops`,
        measurement: `${isMlp ? 'MLP 784-512-512-10' : 'CNN preset'} training step, float32, batch ${step.batchSize}, patched wasm`,
        value: `${fixed(step.gflops, 1)} GFLOP/s (${ms(step.step.wallMs)}, ${fixed(step.flops.trainingStep / 1e6, 1)} MFLOP)`,
        target: isMlp ? `ratio to forward matmul ≥ ${TARGETS.mlpStepOfMatmul}` : '',
        ratio,
        pass: isMlp ? ratio >= TARGETS.mlpStepOfMatmul : null,
      });
    }
    const mlp = stepOf(compute, 'mlp', 'float32');
    const cpuMlp = compute.cpuSteps.find((s) => s.preset === 'mlp');
    if (mlp && ok(stock) && stock.mlp) {
      rows.push({
        id: 'mlp.stock',
        measurement: 'MLP step, stock wasm (fresh process, no mpx kernels) ÷ patched wasm',
        value: `${ms(stock.mlp.step.wallMs)} vs ${ms(mlp.step.wallMs)}`,
        target: '',
        ratio: stock.mlp.step.wallMs / mlp.step.wallMs,
        pass: null,
      });
    } else if (!ok(stock)) {
      rows.push(errorRow('mlp.stock', 'MLP step, stock wasm', stock.error));
    }
    if (mlp && cpuMlp) {
      rows.push({
        id: 'mlp.cpu',
        measurement: 'MLP step, cpu backend ÷ patched wasm',
        value: `${ms(cpuMlp.step.wallMs)} vs ${ms(mlp.step.wallMs)}`,
        target: '',
        ratio: cpuMlp.step.wallMs / mlp.step.wallMs,
        pass: null,
      });
    }
    if (ok(stock)) {
      rows.push({
        id: 'cnn.stock',
        measurement: 'CNN step, stock wasm',
        value: stock.cnn ? ms(stock.cnn.step.wallMs) : `cannot train: ${stock.cnnError ?? 'unknown error'}`,
        target: '',
        ratio: null,
        pass: null,
      });
    }
    const cnn = stepOf(compute, 'cnn', 'float32');
    const cpuCnn = compute.cpuSteps.find((s) => s.preset === 'cnn');
    if (cnn && cpuCnn) {
      const ratio = cpuCnn.step.wallMs / cnn.step.wallMs;
      rows.push({
        id: 'cnn.cpu',
        measurement: `CNN step, cpu backend ÷ patched wasm (batch ${cnn.batchSize})`,
        value: `${ms(cpuCnn.step.wallMs)} vs ${ms(cnn.step.wallMs)}`,
        target: `ratio ≥ ${TARGETS.cnnSpeedupOverCpu}`,
        ratio,
        pass: ratio >= TARGETS.cnnSpeedupOverCpu,
      });
    }
    for (const preset of ['mlp', 'cnn'] as const) {
      const base = stepOf(compute, preset, 'float32');
      for (const policy of ['mixed_float16', 'mixed_bfloat16'] as const) {
        const step = stepOf(compute, preset, policy);
        if (!base || !step) continue;
        const ratio = step.step.wallMs / base.step.wallMs;
        rows.push({
          id: `${preset}.${policy}`,
          measurement: `${preset === 'mlp' ? 'MLP' : 'CNN'} step, ${policy} (emulated) ÷ float32`,
          value: `${ms(step.step.wallMs)} vs ${ms(base.step.wallMs)}`,
          target: `ratio ≤ ${fixed(TARGETS.mixedOverFloat32)}`,
          ratio,
          pass: ratio <= TARGETS.mixedOverFloat32,
        });
        const profile = profileOf(compute, preset, policy);
        if (profile) {
          rows.push({
            id: `${preset}.${policy}.quantize`,
            measurement: `  MpxQuantize per step (separate profiled pass)`,
            value:
              `${fixed(profile.quantizeCalls, 0)} calls, ${fixed(profile.quantizeElements / 1e6, 2)} M elements ` +
              `(already on the grid: ${fixed(profile.noopQuantizeCalls, 0)} calls, ${fixed(profile.noopQuantizeElements / 1e6, 2)} M), ` +
              `${ms(profile.quantizeMs)} = ${fixed((100 * profile.quantizeMs) / step.step.wallMs, 1)}% of the step`,
            target: '',
            ratio: null,
            pass: null,
          });
        }
      }
    }
  } else {
    rows.push(errorRow('compute', 'In-process training measurements', compute.error));
  }
  rows.push(...torchRows(results));

  if (ok(overhead)) {
    const s = overhead.overheadMs / 1000;
    rows.push({
      id: 'run.overhead',
      measurement: 'Per-run overhead: worker wall time (spawn → exit) − its training, tiny 1-step run',
      value: `${fixed(s)} s`,
      target: `≤ ${TARGETS.runOverheadS} s (ratio ≤ 1)`,
      ratio: s / TARGETS.runOverheadS,
      pass: s <= TARGETS.runOverheadS,
    });
    const probe = (name: string, label: string, field: 'wallMs' | 'importMs' | 'initMs'): void => {
      const p = overhead.probes[name];
      const value = p?.[field];
      if (value === undefined || Number.isNaN(value)) return;
      rows.push({ id: `run.overhead.${name}.${field}`, measurement: `  ${label}`, value: ms(value), target: '', ratio: null, pass: null });
    };
    probe('noop', 'node start → exit, nothing imported (spawn wall)', 'wallMs');
    probe('import:execa', 'import execa (the parent\'s IPC library, which the worker does not load)', 'importMs');
    probe('import:tfjs', 'ESM import of @tensorflow/tfjs + backend-wasm (Node lexes the CommonJS sources for named exports)', 'importMs');
    probe('require:tfjs', 'the same two packages with require, as the worker loads them (src/worker/tfjs.ts)', 'importMs');
    probe('backend:auto', "startBackend('auto') → wasm (after imports)", 'initMs');
  } else {
    rows.push(errorRow('run.overhead', 'Per-run overhead', overhead.error));
  }

  if (ok(pool)) {
    rows.push({
      id: 'pool.speedup',
      measurement: `2 workers ÷ 1 worker, ${pool.runs}-run matrix (runAll, real worker)`,
      value: `${ms(pool.oneWorkerMs)} → ${ms(pool.twoWorkersMs)}${pool.failed.length > 0 ? ` (${pool.failed.length} runs failed)` : ''}`,
      target: `ratio ≥ ${TARGETS.twoWorkerSpeedup}`,
      ratio: pool.speedup,
      pass: pool.speedup >= TARGETS.twoWorkerSpeedup && pool.failed.length === 0,
    });
    if (pool.oneWorkerCpuMs !== null) {
      const cores = pool.oneWorkerCpuMs / pool.oneWorkerMs;
      rows.push({
        id: 'pool.cpu-bound',
        measurement: '  bound from CPU use: 1 worker keeps this many cores busy on average (V8 JIT, GC, wasm tier-up threads); 2 ÷ it',
        value: `${fixed(cores)} cores → about ${fixed(2 / cores)}×`,
        target: '',
        ratio: 2 / cores,
        pass: null,
      });
    }
    rows.push({
      id: 'pool.ceiling',
      measurement: '  machine ceiling: same wasm matmuls in 2 processes ÷ 1',
      value: `${fixed(pool.ceiling)}×`,
      target: '',
      ratio: pool.ceiling,
      pass: null,
    });
  } else {
    rows.push(errorRow('pool.speedup', '2 workers vs 1', pool.error));
  }

  if (ok(plan)) {
    const s = plan.firstMs / 1000;
    rows.push({
      id: 'plan.100k',
      measurement: `Plan a ${plan.cells.toLocaleString('en-US')}-cell matrix (loadSpecText + planRuns, first call)`,
      value: `${fixed(s)} s (warm ${fixed(plan.warmMs / 1000)} s)`,
      target: `< ${TARGETS.planS} s (ratio < 1)`,
      ratio: s / TARGETS.planS,
      pass: s < TARGETS.planS,
    });
  } else {
    rows.push(errorRow('plan.100k', 'Plan a 100,000-cell matrix', plan.error));
  }

  const { report } = results;
  if (ok(report)) {
    const s = report.firstMs / 1000;
    rows.push({
      id: 'report.1k',
      measurement: `Report a ${report.rows.toLocaleString('en-US')}-row results CSV (parse, summary, Markdown, HTML with 7 charts; first call)`,
      value: `${fixed(s)} s (warm ${fixed(report.warmMs / 1000)} s; HTML ${fixed(report.htmlBytes / 1e6, 1)} MB)`,
      target: `< ${TARGETS.reportS} s (ratio < 1)`,
      ratio: s / TARGETS.reportS,
      pass: s < TARGETS.reportS,
    });
  } else {
    rows.push(errorRow('report.1k', 'Report a 1,000-row results CSV', report.error));
  }
  rows.push(...capacityRows(results.capacity));
  rows.push(...scaleOutRows(results.scaleOut));
  return rows;
}

/** The capacity study searched from nothing: its wall time and the probes per search. */
export function capacityRows(capacity: BenchResults['capacity']): Row[] {
  if (!ok(capacity)) return [errorRow('capacity', 'Capacity study (experiments/capacity.yaml)', capacity.error)];
  const s = capacity.wallMs / 1000;
  const sorted = [...capacity.probes].sort((a, b) => a - b);
  const most = sorted.at(-1) ?? 0;
  const medianProbes = sorted.length === 0 ? 0 : sorted[Math.floor((sorted.length - 1) / 2)]!;
  return [
    {
      id: 'capacity.wall',
      measurement: `mpx run experiments/capacity.yaml --force: ${capacity.searches} searches, probes in fresh workers (whole CLI)`,
      value: `${fixed(s, 1)} s`,
      target: `< ${TARGETS.capacityS} s (ratio < 1)`,
      ratio: s / TARGETS.capacityS,
      pass: s < TARGETS.capacityS,
    },
    {
      id: 'capacity.probes',
      measurement: `Probes per search that found its boundary (exact to one sample), plus one confirmation run each`,
      value: `median ${medianProbes}, most ${most} (${capacity.mostProbes})`,
      target: `most ≤ ${TARGETS.probesPerSearch} (ratio ≤ 1)`,
      ratio: most / TARGETS.probesPerSearch,
      pass: most <= TARGETS.probesPerSearch,
    },
  ];
}

/** Submitting, merging and per-run bookkeeping: the costs that grow with the matrix. */
export function scaleOutRows(scaleOut: BenchResults['scaleOut']): Row[] {
  if (!ok(scaleOut)) return [errorRow('scale', 'Scale-out (submit, merge, bookkeeping)', scaleOut.error)];
  const rows: Row[] = [];
  const { submit, merge, bookkeeping } = scaleOut;
  if (ok(submit)) {
    const s = submit.wallMs / 1000;
    const isOnePerArray = submit.sbatchCalls === submit.arrays + 1;
    rows.push({
      id: 'slurm.submit.1000',
      measurement: `mpx slurm on a ${submit.runs.toLocaleString('en-US')}-run spec, whole CLI (sbatch/scontrol/squeue: a recorded fake)`,
      value: `${fixed(s)} s, ${submit.sbatchCalls} sbatch calls (${submit.arrays} array of ${submit.shards} tasks + the merge job)`,
      target: `< ${TARGETS.submitS} s, one sbatch call per array (ratio < 1)`,
      ratio: s / TARGETS.submitS,
      pass: s < TARGETS.submitS && isOnePerArray,
    });
  } else {
    rows.push(errorRow('slurm.submit.1000', 'mpx slurm on a 1,000-run spec', submit.error));
  }
  rows.push({
    id: 'merge.1000',
    measurement: `Merge ${merge.records.toLocaleString('en-US')} records from ${merge.files} shard record files (read, fold, write runs.jsonl, CSV, meta.json; remove)`,
    value: ms(merge.ms),
    target: `< ${TARGETS.mergeS} s (ratio < 1)`,
    ratio: merge.ms / 1000 / TARGETS.mergeS,
    pass: merge.ms / 1000 < TARGETS.mergeS,
  });
  const [small, large] = bookkeeping;
  if (small && large) {
    const growth = large.perRunMs / small.perRunMs;
    rows.push({
      id: 'bookkeeping.per-run',
      measurement: `Results bookkeeping per finished run (append + fsync to its record file), ${large.records.toLocaleString('en-US')} ÷ ${small.records.toLocaleString('en-US')} records there`,
      value: `${ms(large.perRunMs)} vs ${ms(small.perRunMs)}`,
      target: `constant: ratio ≤ ${TARGETS.bookkeepingGrowth}`,
      ratio: growth,
      pass: growth <= TARGETS.bookkeepingGrowth,
    });
    for (const b of [small, large]) {
      rows.push({
        id: `bookkeeping.rewrite.${b.records}`,
        measurement: `  before: rewriting runs.jsonl, CSV and meta.json after every run, ${b.records.toLocaleString('en-US')} records`,
        value: ms(b.rewriteMs),
        target: '',
        ratio: null,
        pass: null,
      });
    }
    rows.push({
      id: 'bookkeeping.rebuild',
      measurement: `  CSV + meta.json rebuilt from ${large.records.toLocaleString('en-US')} records (now at most every 5 s, and ≤ 5% of the time)`,
      value: ms(large.rebuildMs),
      target: '',
      ratio: null,
      pass: null,
    });
  }
  return rows;
}

/** Why a target missed (or what limits it), from the measurements themselves. */
export function buildNotes(results: BenchResults, rows: Row[]): string[] {
  const notes: string[] = [];
  const { compute, overhead, pool, environment } = results;
  const busy = Object.entries(results.contention).filter((entry): entry is [string, Contention] => (entry[1]?.othersShare ?? 0) > 0.05);
  if (busy.length > 0) {
    notes.push(
      `NOT A QUIET MACHINE: other processes used ${busy.map(([name, c]) => `${Math.round(100 * c.othersShare)}% during ${name}`).join(', ')} ` +
        `of the ${environment.cores} cores; rerun when idle before trusting those sections`,
    );
  }
  if (ok(compute)) {
    const failed = rows.find((r) => r.id === 'mlp.step.gflops' && r.pass === false);
    const step = stepOf(compute, 'mlp', 'float32');
    const profile = profileOf(compute, 'mlp', 'float32');
    if (failed && step && profile) {
      const productsAtForwardRate = step.flops.trainingStep / (compute.forwardMatmul.gflops * 1e6);
      const budget = step.flops.trainingStep / (TARGETS.mlpStepOfMatmul * compute.forwardMatmul.gflops * 1e6);
      notes.push(
        `MLP step: ${ms(profile.stepMs)} per update in the profiled pass: BatchMatMul ${ms(profile.matmulMs)} (the same ` +
          `products take ${ms(productsAtForwardRate)} at the forward rate; the rest is XNNPACK packing each fresh ` +
          `operand and transposes), optimizer ${ms(profile.optimizerMs)}, other ` +
          `${ms(Math.max(0, profile.stepMs - profile.matmulMs - profile.optimizerMs))}. ${TARGETS.mlpStepOfMatmul} of ` +
          `the forward rate means ${ms(budget)} per step`,
      );
    }
  }
  if (ok(compute)) {
    const copies = compute.profiles.filter((p) => p.identityCalls > 0);
    if (copies.length > 0) {
      notes.push(
        `Identity calls per update (mpx registers an aliasing Identity on wasm, as tfjs-backend-cpu has; stock wasm copies): ` +
          copies.map((p) => `${p.preset}/${p.policy} ${fixed(p.identityCalls, 0)} copies, ${ms(p.identityMs)}`).join('; '),
      );
    }
  }
  if (ok(overhead) && overhead.overheadMs / 1000 > TARGETS.runOverheadS) {
    const p = overhead.probes;
    const [esm, req, execa] = [p['import:tfjs']?.importMs, p['require:tfjs']?.importMs, p['import:execa']?.importMs];
    if (esm !== undefined && req !== undefined && execa !== undefined) {
      notes.push(
        `per-run overhead: loading tfjs with require instead of an ESM import saves ${ms(esm - req)} (Node lexes ` +
          `every CommonJS module an ESM import reaches for its named exports); the worker already skips execa ` +
          `(${ms(execa)} to import)`,
      );
    }
  }
  if (ok(pool) && pool.speedup < TARGETS.twoWorkerSpeedup) {
    const limits: string[] = [];
    if (pool.oneWorkerCpuMs !== null) {
      const cores = pool.oneWorkerCpuMs / pool.oneWorkerMs;
      limits.push(
        `with 1 job the workers used ${fixed(pool.oneWorkerCpuMs / 1000, 1)} s of CPU in ${fixed(pool.oneWorkerMs / 1000, 1)} s ` +
          `(${fixed(cores)} cores: V8 compiles JS and wasm and collects garbage on helper threads), so 2 jobs on ` +
          `${environment.cores} cores can be only about ${fixed(environment.cores / cores)}× faster`,
      );
    }
    if (pool.ceiling < TARGETS.twoWorkerSpeedup) limits.push(`the same pure compute in 2 processes gave only ${fixed(pool.ceiling)}×`);
    if (limits.length > 0) notes.push(`2 workers: ${limits.join('; ')}`);
  }
  return notes;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

export function renderTable(rows: readonly Row[]): string {
  const lines = ['| measurement | value | target | ratio | pass/fail |', '| --- | --- | --- | --- | --- |'];
  for (const row of rows) {
    const verdict = row.pass === null ? '' : row.pass ? 'pass' : '**FAIL**';
    const ratio = row.ratio === null ? '' : fixed(row.ratio, row.ratio >= 10 ? 0 : 2);
    lines.push(`| ${escapeCell(row.measurement)} | ${escapeCell(row.value)} | ${escapeCell(row.target)} | ${ratio} | ${verdict} |`);
  }
  return lines.join('\n');
}

export function renderEnvironment(env: BenchEnvironment): string {
  const tfjs = Object.entries(env.tfjs).map(([name, version]) => `${name.replace('@tensorflow/', '')} ${version}`).join(', ');
  return [
    `cpu: ${env.cpu} (${env.cores} cores), ${env.platform}`,
    `node ${env.node} (V8 ${env.v8}), wasm SIMD ${env.wasmSimd ? 'yes' : 'no'}; ${tfjs}`,
    `load average at start: ${fixed(env.loadAverage)}; ${env.date}`,
  ].join('\n');
}

export function renderText(results: BenchResults, rows: readonly Row[], notes: readonly string[]): string {
  const targets = rows.filter((r) => r.pass !== null);
  const passed = targets.filter((r) => r.pass).length;
  return [
    renderEnvironment(results.environment),
    '',
    renderTable(rows),
    '',
    `${passed} of ${targets.length} targets pass; benchmark took ${fixed(results.durationMs / 1000, 0)} s.`,
    ...notes.map((n) => `note: ${n}`),
  ].join('\n');
}
