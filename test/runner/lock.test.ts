import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MpxError } from '../../src/errors.js';
import { acquireResultsLock, isProcessAlive, LOCK_FILE } from '../../src/runner/lock.js';

const tempDir = () => mkdtempSync(join(tmpdir(), 'mpx-lock-'));

describe('acquireResultsLock', () => {
  it('takes a free directory and releases it', () => {
    const dir = tempDir();
    const lock = acquireResultsLock(dir);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid, host: hostname() });
    lock.release();
    lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('refuses a directory held by a live process, naming its pid', () => {
    const dir = tempDir();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: 4242, host: hostname(), startedAt: '2026-01-01T00:00:00Z' }));
    let error: unknown;
    try {
      acquireResultsLock(dir, (pid) => pid === 4242);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(MpxError);
    expect((error as MpxError).code).toBe('RESULTS_LOCKED');
    expect((error as MpxError).message).toBe(`${dir} is in use by pid 4242 (another mpx run, started 2026-01-01T00:00:00Z)`);
    expect((error as MpxError).hint).toMatch(/delete .*\.mpx\.lock/);
  });

  it('takes over a stale lock left by a dead process, or a corrupt one', () => {
    for (const content of [JSON.stringify({ pid: 4242, host: hostname(), startedAt: 'x' }), '{"pid":']) {
      const dir = tempDir();
      writeFileSync(join(dir, LOCK_FILE), content);
      const lock = acquireResultsLock(dir, () => false);
      expect((JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as { pid: number }).pid).toBe(process.pid);
      lock.release();
    }
  });

  it('does not remove a lock that another process took over meanwhile', () => {
    const dir = tempDir();
    const lock = acquireResultsLock(dir);
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: hostname(), startedAt: 'x' }));
    lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(true);
  });

  it('knows this process is alive and a reaped one is not', () => {
    expect(isProcessAlive(process.pid)).toBe(true);
    expect(isProcessAlive(2 ** 22 + 12345)).toBe(false);
  });
});
