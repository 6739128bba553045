/** Small statistics and timing helpers for the benchmark. Pure apart from the clocks. */

import { median as medianOrNull } from '../util/stats.js';

/** The median of timings; NaN when there are none (the report shows it as missing). */
export function median(values: readonly number[]): number {
  return medianOrNull(values) ?? Number.NaN;
}

/** One timed call: wall time and this process's CPU time (user + system), both in ms. */
export interface Timing {
  wallMs: number;
  cpuMs: number;
}

export function timeCall(fn: () => void): Timing {
  const cpu = process.cpuUsage();
  const started = performance.now();
  fn();
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { wallMs, cpuMs: (used.user + used.system) / 1000 };
}

export async function timeAsync<T>(fn: () => Promise<T>): Promise<{ wallMs: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  return { wallMs: performance.now() - started, value };
}

/** Summary of repeated timings: medians, and how much of the wall time this process had the CPU (1 = alone). */
export interface TimingSummary {
  samples: number;
  wallMs: number;
  cpuMs: number;
  minWallMs: number;
  /** cpu / wall over all samples: well below 1 means other processes competed for the core. */
  cpuShare: number;
}

export function summarize(timings: readonly Timing[]): TimingSummary {
  const wall = timings.map((t) => t.wallMs);
  const totalWall = wall.reduce((a, b) => a + b, 0);
  const totalCpu = timings.reduce((a, t) => a + t.cpuMs, 0);
  return {
    samples: timings.length,
    wallMs: median(wall),
    cpuMs: median(timings.map((t) => t.cpuMs)),
    minWallMs: Math.min(...wall),
    cpuShare: totalWall > 0 ? totalCpu / totalWall : 1,
  };
}
