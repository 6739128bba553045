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
  /**
   * What each slot's `CUDA_VISIBLE_DEVICES` is set to (slot k gets entry k mod length): one GPU per worker; empty on
   * CPU backends.
   */
  devices: string[];
}

/**
 * The GPUs a `CUDA_VISIBLE_DEVICES` value lets this process use, as its entries (indices, `GPU-…` UUIDs or `MIG-…`
 * ids, passed on unchanged); null when the variable is not set. CUDA stops at the first invalid entry: Slurm writes
 * `NoDevFiles` when its GPUs have no device files, and `-1` hides every GPU.
 */
export function parseVisibleDevices(value: string | undefined): string[] | null {
  if (value === undefined) return null;
  const devices: string[] = [];
  for (const entry of value.split(',').map((e) => e.trim())) {
    if (entry === '' || entry === 'NoDevFiles' || /^-\d+$/.test(entry)) break;
    devices.push(entry);
  }
  return devices;
}

/**
 * One worker per core on CPU backends; one per GPU, each pinned to its own, when the workers may train on GPUs (two
 * workers sharing a GPU would measure each other's memory). The GPUs are those `CUDA_VISIBLE_DEVICES` names when it is
 * set (as Slurm, Kubernetes' device plugin and most schedulers set it for a task: the entries are passed on, never
 * re-indexed from nvidia-smi, which may list GPUs the task was not given), else every GPU nvidia-smi lists. `jobs`
 * (`--jobs`) overrides the count, not the pinning.
 */
export function placeWorkers(mayUseGpus: boolean, gpus: readonly GpuInfo[], jobs?: number, visibleDevices?: string): WorkerPlacement {
  const visible = parseVisibleDevices(visibleDevices);
  const devices = !mayUseGpus ? [] : (visible ?? gpus.map((gpu) => String(gpu.index)));
  return { jobs: jobs ?? Math.max(1, devices.length > 0 ? devices.length : availableParallelism()), devices };
}
