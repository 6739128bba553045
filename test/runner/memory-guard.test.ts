import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseResidentBytes, readResidentBytes, startMemoryGuard } from '../../src/runner/memory-guard.js';

describe('parseResidentBytes', () => {
  it('reads VmRSS from a real /proc/<pid>/status', () => {
    const status = readFileSync(new URL('../fixtures/proc/status-cat.txt', import.meta.url), 'utf8');
    expect(parseResidentBytes(status)).toBe(1740 * 1024);
  });

  it('is null without a VmRSS line (a kernel thread, a zombie)', () => {
    expect(parseResidentBytes('Name:\tkworker/0:1\nState:\tI (idle)\n')).toBeNull();
  });
});

describe('startMemoryGuard', () => {
  it('fires once, with the bytes, when the resident set passes the limit, and keeps the peak', async () => {
    const samples = [100, 200, 300, 250, 400];
    const fired: number[] = [];
    const guard = startMemoryGuard(1, 220, (bytes) => fired.push(bytes), { intervalMs: 1, read: () => samples.shift() ?? null });
    // Until every sample is read, not a fixed time: on a loaded machine 50 ms did not always give five 1 ms ticks.
    while (samples.length > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(guard.stop()).toBe(400);
    expect(fired).toEqual([300]);
  });

  it('reads a real process: a child that touches 200 MiB is seen above 150 MiB', async () => {
    const child = spawn(process.execPath, ['-e', 'const b = Buffer.alloc(200 * 2 ** 20, 1); process.stdout.write("ready"); setTimeout(() => b.length, 60000)'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      expect(readResidentBytes(child.pid!)).toBeGreaterThan(200 * 2 ** 20);
      const seen = await new Promise<number>((resolve) => {
        const guard = startMemoryGuard(child.pid!, 150 * 2 ** 20, (bytes) => {
          guard.stop();
          resolve(bytes);
        }, { intervalMs: 10 });
      });
      expect(seen).toBeGreaterThan(200 * 2 ** 20);
    } finally {
      child.kill('SIGKILL');
    }
    expect(readResidentBytes(2 ** 22 + 12345)).toBeNull(); // no such process
  });
});
