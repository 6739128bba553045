/**
 * How much of the machine other processes used while a section of the benchmark ran: machine-wide busy CPU time
 * (/proc/stat, steal included) minus this process's and its finished children's (/proc/self/stat). Linux only;
 * elsewhere `null`. A benchmark on a shared machine is only as good as this number is small.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Clock ticks per second of /proc (USER_HZ): 100 on every Linux this runs on. */
const TICKS_PER_S = 100;

interface CpuSnapshot {
  wallMs: number;
  machineBusyTicks: number;
  ownTicks: number;
}

function snapshot(): CpuSnapshot | null {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu;
    const self = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the parenthesised command name; utime, stime, cutime, cstime are fields 14..17.
    const fields = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number);
    const own = (fields[11] ?? 0) + (fields[12] ?? 0) + (fields[13] ?? 0) + (fields[14] ?? 0);
    return { wallMs: performance.now(), machineBusyTicks: user + nice + system + irq + softirq + steal, ownTicks: own };
  } catch {
    return null;
  }
}

export interface Contention {
  /** Other processes' CPU time as a share of the machine's capacity over the section (0 = alone, 1 = all cores). */
  othersShare: number;
}

/** Starts watching; `stop()` returns the contention since `start`, or null where /proc is missing. */
export function watchContention(): { stop(): Contention | null } {
  const start = snapshot();
  return {
    stop: () => {
      const end = snapshot();
      if (start === null || end === null) return null;
      const capacityTicks = ((end.wallMs - start.wallMs) / 1000) * TICKS_PER_S * availableParallelism();
      if (capacityTicks <= 0) return null;
      const others = end.machineBusyTicks - start.machineBusyTicks - (end.ownTicks - start.ownTicks);
      return { othersShare: Math.max(0, others / capacityTicks) };
    },
  };
}

/** CPU time (user + system) of this process's finished, reaped children so far, in ms; null off Linux. */
export function childrenCpuMs(): number | null {
  try {
    const self = readFileSync('/proc/self/stat', 'utf8');
    const fields = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number);
    return (((fields[13] ?? 0) + (fields[14] ?? 0)) * 1000) / TICKS_PER_S;
  } catch {
    return null;
  }
}
