/**
 * The committed capacity study, `experiments/capacity.yaml`, searched from nothing by the whole CLI in a fresh process
 * (`mpx run --force` into a scratch results directory): its wall time, and the probes each search used, read back
 * from the capacity CSV it wrote. The targets: under a minute on 2 cores, about 6 probes per search.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { parseCapacityCsv } from '../results/capacity.js';

export interface CapacityTiming {
  searches: number;
  /** Wall time of the whole `mpx run`, in ms. */
  wallMs: number;
  /** Probes per search that found a boundary (status ok), in matrix order. */
  probes: number[];
  /** The search that used the most probes, in words. */
  mostProbes: string;
}

export async function measureCapacity(cliFile: string): Promise<CapacityTiming> {
  const root = join(dirname(cliFile), '..', '..');
  const dir = mkdtempSync(join(tmpdir(), 'mpx-bench-capacity-'));
  try {
    const started = performance.now();
    await execa(process.execPath, [cliFile, 'run', join(root, 'experiments', 'capacity.yaml'), '--force', '--results-dir', dir], { cwd: root });
    const wallMs = performance.now() - started;
    const table = parseCapacityCsv(readFileSync(join(dir, 'capacity.capacity.csv'), 'utf8'), 'capacity', 'capacity.capacity.csv');
    const found = table.rows.filter((r) => r.status === 'ok');
    const most = found.reduce((a, b) => (b.probes > a.probes ? b : a), found[0]!);
    return {
      searches: table.rows.length,
      wallMs,
      probes: found.map((r) => r.probes),
      mostProbes: `${most.model} ${most.policy} acc=${most.accumulationSteps}`,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
