/**
 * GPU memory of one worker process, sampled from outside with nvidia-smi (TensorFlow's allocator does not tell
 * tfjs-node how much device memory a process holds). Workers on the GPU run with TF_FORCE_GPU_ALLOW_GROWTH=true, so
 * what nvidia-smi reports grows with use instead of being the whole GPU reserved up front.
 */
import { execa } from 'execa';

export const NVIDIA_SMI_APPS_QUERY = ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'];
/** nvidia-smi takes tens of ms per call; twice a second is enough for steps that last longer than that. */
export const GPU_SAMPLE_INTERVAL_MS = 500;

export interface GpuMemorySampler {
  /** Stops sampling; resolves to the peak seen in bytes, or null if the process never appeared on a GPU. */
  stop(): Promise<number | null>;
}

/**
 * Parses `nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits` (MiB per process and GPU;
 * a process on two GPUs has two lines, summed here). Lines whose memory is not a number (`[N/A]`, `[Not Supported]`,
 * e.g. without permission in a container) are skipped.
 */
export function parseComputeApps(stdout: string): Map<number, number> {
  const bytesByPid = new Map<number, number>();
  for (const line of stdout.split('\n')) {
    const [pidText, memoryText] = line.split(',').map((field) => field.trim());
    if (!pidText || !memoryText || !/^\d+$/.test(pidText) || !/^\d+(\.\d+)?$/.test(memoryText)) continue;
    const pid = Number(pidText);
    bytesByPid.set(pid, (bytesByPid.get(pid) ?? 0) + Number(memoryText) * 1024 * 1024);
  }
  return bytesByPid;
}

export type ComputeAppsReader = () => Promise<string | null>;

/** Reads the compute-app list; null when nvidia-smi is missing or fails. */
export const readComputeApps: ComputeAppsReader = async () => {
  const result = await execa('nvidia-smi', NVIDIA_SMI_APPS_QUERY, { reject: false, timeout: 5_000 });
  return result.exitCode === 0 ? String(result.stdout) : null;
};

/** Samples `pid`'s GPU memory every `intervalMs` until stopped; keeps the peak. */
export function startGpuMemorySampler(pid: number, read: ComputeAppsReader = readComputeApps, intervalMs = GPU_SAMPLE_INTERVAL_MS): GpuMemorySampler {
  let peakBytes: number | null = null;
  let inFlight: Promise<void> = Promise.resolve();
  const sample = () => {
    inFlight = read().then((stdout) => {
      const bytes = stdout === null ? undefined : parseComputeApps(stdout).get(pid);
      if (bytes !== undefined) peakBytes = Math.max(peakBytes ?? 0, bytes);
    });
  };
  sample();
  const timer = setInterval(() => void inFlight.then(sample), intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await inFlight;
      return peakBytes;
    },
  };
}
