/**
 * Watches a worker's resident set and stops the worker when it passes its share of the machine, so that no run can
 * take the machine whatever the engine does (a runtime that ignores the budget, an allocation the ledger does not see,
 * a leak). Linux: reads `/proc/<pid>/status` a few times a second; where there is no /proc the guard is inactive.
 */
import { readFileSync } from 'node:fs';

export const MEMORY_GUARD_INTERVAL_MS = 200;

/** `VmRSS` of a /proc/<pid>/status text, in bytes; null when absent. */
export function parseResidentBytes(status: string): number | null {
  const match = /^VmRSS:\s+(\d+)\s+kB\s*$/m.exec(status);
  return match ? Number(match[1]) * 1024 : null;
}

/** The resident set of a live process in bytes; null when it cannot be read (no /proc, or the process is gone). */
export function readResidentBytes(pid: number): number | null {
  try {
    return parseResidentBytes(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return null;
  }
}

export interface MemoryGuard {
  /** Stops watching; the largest resident set seen (null if never read). */
  stop(): number | null;
}

/**
 * Calls `onExceeded` once, with the bytes, the first time the resident set of `pid` is above `limitBytes`; the caller
 * kills the worker. `read` is injectable for tests.
 */
export function startMemoryGuard(
  pid: number,
  limitBytes: number,
  onExceeded: (residentBytes: number) => void,
  options: { intervalMs?: number; read?: (pid: number) => number | null } = {},
): MemoryGuard {
  const read = options.read ?? readResidentBytes;
  let peakBytes: number | null = null;
  let hasFired = false;
  const check = () => {
    const bytes = read(pid);
    if (bytes === null) return;
    peakBytes = Math.max(peakBytes ?? 0, bytes);
    if (!hasFired && bytes > limitBytes) {
      hasFired = true;
      onExceeded(bytes);
    }
  };
  const timer = setInterval(check, options.intervalMs ?? MEMORY_GUARD_INTERVAL_MS);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      return peakBytes;
    },
  };
}
