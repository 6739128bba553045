/**
 * What the parent can learn about devices without loading tfjs: whether the `tensorflow` backend is installed and
 * which NVIDIA GPUs `nvidia-smi` lists. Used for the default `--jobs` (one worker per GPU on the GPU backend).
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { execa } from 'execa';
import { TENSORFLOW_PACKAGES } from '../worker/packages.js';

export interface GpuInfo {
  index: number;
  name: string;
  memoryTotalBytes: number | null;
  driverVersion: string | null;
}

export const NVIDIA_SMI_GPU_QUERY = ['--query-gpu=index,name,memory.total,driver_version', '--format=csv,noheader,nounits'];

/** Parses `nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader,nounits` (MiB). */
export function parseNvidiaSmiGpuList(stdout: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const line of stdout.split('\n')) {
    const fields = line.split(',').map((f) => f.trim());
    if (fields.length < 2 || !/^\d+$/.test(fields[0]!)) continue;
    const memoryMiB = Number(fields[2]);
    gpus.push({
      index: Number(fields[0]),
      name: fields[1]!,
      memoryTotalBytes: Number.isFinite(memoryMiB) && fields[2] !== '' ? memoryMiB * 1024 * 1024 : null,
      driverVersion: fields[3] || null,
    });
  }
  return gpus;
}

/** GPUs listed by nvidia-smi; empty when there is no nvidia-smi or it fails (no driver, no GPU). */
export async function detectGpus(): Promise<GpuInfo[]> {
  const result = await execa('nvidia-smi', NVIDIA_SMI_GPU_QUERY, { reject: false, timeout: 10_000 });
  return result.exitCode === 0 ? parseNvidiaSmiGpuList(String(result.stdout)) : [];
}

/** The first installed package that provides the `tensorflow` backend, resolved without loading it. */
export function findTensorflowPackage(resolve: (id: string) => string = createRequire(import.meta.url).resolve): string | null {
  for (const name of TENSORFLOW_PACKAGES) {
    try {
      resolve(name);
      return name;
    } catch {
      // not installed: try the next one
    }
  }
  return null;
}

/** Where `mpx run` puts its workers. */
export interface WorkerPlacement {
  /** Workers at once. */
  jobs: number;
  /** GPUs the workers are pinned to, one per slot (`CUDA_VISIBLE_DEVICES`); empty on CPU backends. */
  gpus: GpuInfo[];
}

/**
 * One worker per core on CPU backends; one per GPU, each pinned to its own, when the workers may train on GPUs (two
 * workers sharing a GPU would measure each other's memory). `jobs` (`--jobs`) overrides the count, not the pinning.
 */
export function placeWorkers(mayUseGpus: boolean, gpus: readonly GpuInfo[], jobs?: number): WorkerPlacement {
  const used = mayUseGpus ? [...gpus] : [];
  return { jobs: jobs ?? Math.max(1, used.length > 0 ? used.length : availableParallelism()), gpus: used };
}
