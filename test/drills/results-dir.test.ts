/**
 * Results-directory drills with the real CLI: two `mpx run` on one directory at once, a stale lock and stale temp
 * files of a dead mpx, a results path under a regular file, a read-only file system and a full disk. The last two use
 * a real tmpfs of 1 MiB in a private mount namespace (`unshare --user --map-root-user --mount`, no real root needed);
 * where unprivileged namespaces are not allowed they are skipped, and the test title says so. Build first.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  assertBuilt,
  CLI,
  DRILLS,
  drillSpec,
  firstLine,
  isPidLive,
  killLeftovers,
  readCsv,
  readRecords,
  recordFiles,
  removeTempDirs,
  runMpx,
  STACK,
  startMpx,
  strayFiles,
  tempDir,
  waitFor,
  waitGone,
} from './helpers.js';

beforeAll(assertBuilt);
afterEach(killLeftovers);
afterAll(removeTempDirs);

const FOUR = drillSpec('four.yaml');
const OOM = drillSpec('oom.yaml');
const LOCK = '.mpx.lock';
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A pid that certainly belongs to no process now: a child that has already exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  expect(isPidLive(child.pid)).toBe(false);
  return child.pid;
}

describe('drill: two mpx run on the same results directory', () => {
  it('the second exits 2 with "in use by pid N" while the first finishes normally', async () => {
    const cwd = tempDir('lock');
    const results = join(cwd, 'results');
    const a = startMpx(['run', FOUR, '--results-dir', results, '--jobs', '2'], { cwd });
    // A holds the lock and is running workers
    await waitFor('A to take the lock and start a worker', () => {
      const lockFile = join(results, LOCK);
      return existsSync(lockFile) && readFileSync(lockFile, 'utf8').includes(`"pid":${a.pid}`) && a.workers.length > 0;
    });
    const b = await runMpx(['run', FOUR, '--results-dir', results, '--jobs', '2'], { cwd });

    expect(b.exitCode, b.stderr).toBe(2);
    expect(firstLine(b.stderr)).toMatch(new RegExp(`^mpx: ${escape(join(results, LOCK))}: ${escape(results)} is in use by pid ${a.pid} \\(another mpx run, started `));
    expect(b.stderr).toMatch(/hint: wait for it to finish or stop it, or use another --results-dir/);
    expect(b.stderr).not.toMatch(STACK);
    expect(b.workers).toEqual([]);
    expect(a.hasExited()).toBe(false);

    const result = await a.done;
    expect(result.exitCode, result.stderr).toBe(0);
    expect(readCsv(results, 'drill-four').map((r) => r.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(readRecords(results, 'drill-four')).toHaveLength(4);
    expect(existsSync(join(results, LOCK))).toBe(false);
    expect(await waitGone(a.workers)).toEqual([]);
  });

  it('a lock and temp files left by a dead mpx are taken over and cleaned up; a live process\'s are not touched', async () => {
    const cwd = tempDir('stale-lock');
    const results = join(cwd, 'results');
    mkdirSync(results);
    const dead = deadPid();
    writeFileSync(join(results, LOCK), JSON.stringify({ pid: dead, host: hostname(), startedAt: '2020-01-01T00:00:00.000Z' }));
    const deadTemp = `.drill-oom.csv.${dead}.0badf00d.tmp`;
    const liveTemp = `.drill-oom.csv.${process.pid}.0badf00d.tmp`; // this test process is alive
    writeFileSync(join(results, deadTemp), 'cell,cell_id\n0,');
    writeFileSync(join(results, liveTemp), 'cell,cell_id\n0,');
    const result = await runMpx(['run', OOM, '--results-dir', results], { cwd });

    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(/in use by/);
    expect(readCsv(results, 'drill-oom').map((r) => r.status)).toEqual(['oom', 'oom']);
    expect(existsSync(join(results, LOCK))).toBe(false);
    expect(existsSync(join(results, deadTemp))).toBe(false);
    expect(strayFiles(results)).toEqual([liveTemp]);
  });
});

describe('drill: a results directory that cannot be written', () => {
  it('a path under a regular file (ENOTDIR) → exit 2 with a hint; nothing run, nothing written', async () => {
    const cwd = tempDir('enotdir');
    const file = join(cwd, 'not-a-dir');
    writeFileSync(file, 'a regular file\n');
    const results = join(file, 'results');
    const result = await runMpx(['run', OOM, '--results-dir', results], { cwd });

    expect(result.exitCode, result.stderr).toBe(2);
    expect(firstLine(result.stderr)).toMatch(new RegExp(`^mpx: ${escape(results)}: cannot write results: ENOTDIR`));
    expect(result.stderr).toMatch(/hint: part of .* is a file, not a directory/);
    expect(result.stderr).not.toMatch(STACK);
    expect(result.stderr).not.toMatch(/runs from/);
    expect(result.workers).toEqual([]);
    expect(readFileSync(file, 'utf8')).toBe('a regular file\n');
  });
});

// ----- real EROFS / ENOSPC on a private 1 MiB tmpfs -----

function canMountTmpfs(): boolean {
  try {
    execFileSync(
      'unshare',
      ['--user', '--map-root-user', '--mount', 'sh', '-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d"; s=$?; umount "$d" 2>/dev/null; rmdir "$d"; exit $s'],
      { stdio: 'ignore', timeout: 10_000 },
    );
    return true;
  } catch {
    return false;
  }
}
const HAS_TMPFS = process.platform === 'linux' && canMountTmpfs();
const PAGE = HAS_TMPFS ? Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim()) : 4096;
const tmpfsNote = HAS_TMPFS ? '' : ' [SKIPPED: unshare/mount of a private tmpfs not permitted here]';

interface TmpfsRun {
  rc: number;
  stderr: string;
  /** results/ inside the tmpfs, as the CLI saw it. */
  results: string;
  /** ls -A of results/ after the run. */
  listing: string[];
  /** A copy of results/ taken after the run. */
  copy: string;
  /** With `rerun`: the same command run again after the space was freed. */
  rerun?: Omit<TmpfsRun, 'rerun' | 'results'>;
}

async function runOnTmpfs(label: string, mode: string, args: string[], rerun = false): Promise<TmpfsRun> {
  const out = tempDir(label);
  const result = await execa('unshare', ['--user', '--map-root-user', '--mount', 'sh', join(DRILLS, 'in-tmpfs.sh'), out, mode, ...args], {
    // No CSV rebuild while runs finish: where the disk fills up must not depend on how fast this machine runs them.
    env: { NODE: process.execPath, MPX_CLI: CLI, MPX_DEBUG: '', MPX_DRILL_RERUN: rerun ? '1' : '', MPX_REBUILD_INTERVAL_MS: '3600000' },
    reject: false,
    timeout: 90_000,
  });
  expect(result.exitCode, String(result.stderr)).toBe(0);
  const outcome = (dir: string) => {
    const read = (name: string) => readFileSync(join(dir, name), 'utf8');
    return {
      rc: Number(read('rc').trim()),
      stderr: read('stderr'),
      listing: read('listing').split('\n').filter((n) => n !== ''),
      copy: join(dir, 'copy'),
    };
  };
  return { ...outcome(out), results: join(out, 'mnt', 'results'), ...(rerun ? { rerun: outcome(join(out, 'rerun')) } : {}) };
}

describe(`drill: read-only file system and full disk (real tmpfs)${tmpfsNote}`, () => {
  it.skipIf(!HAS_TMPFS)('read-only results directory (EROFS) → exit 2 with a hint; nothing run', async () => {
    const run = await runOnTmpfs('erofs', 'ro', [OOM]);
    expect(run.rc, run.stderr).toBe(2);
    expect(firstLine(run.stderr)).toMatch(new RegExp(`^mpx: ${escape(run.results)}: cannot write results: EROFS`));
    expect(run.stderr).toMatch(/hint: .* is on a read-only file system; choose another results directory/);
    expect(run.stderr).not.toMatch(STACK);
    expect(run.stderr).not.toMatch(/runs from/);
    expect(run.listing).toEqual([]);
  });

  it.skipIf(!HAS_TMPFS)('a disk that is already full (ENOSPC on the lock) → exit 2 "disk is full"; no empty lock left', async () => {
    const run = await runOnTmpfs('enospc-start', 'free=0', [OOM]);
    expect(run.rc, run.stderr).toBe(2);
    expect(firstLine(run.stderr)).toMatch(new RegExp(`^mpx: ${escape(join(run.results, LOCK))}: cannot write the lock file: ENOSPC`));
    expect(run.stderr).toMatch(/hint: the disk holding the results directory is full/);
    expect(run.stderr).not.toMatch(/internal error|runs from/);
    expect(run.stderr).not.toMatch(STACK);
    expect(run.listing).toEqual([]);
  });

  it.skipIf(!HAS_TMPFS)('the disk fills up while results are merged → exit 2 "disk is full"; no record lost; with space, the next run merges', async () => {
    // 4 free pages: the lock, the record file (header and both records), runs.jsonl; the CSV finds the disk full.
    const run = await runOnTmpfs('enospc-merge', `free=${4 * PAGE}`, [OOM, '--jobs', '1'], true);
    expect(run.rc, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/\[2\/2\] oom/);
    const error = run.stderr.split('\n').find((line) => line.startsWith('mpx: /'))!;
    expect(error).toMatch(new RegExp(`^mpx: ${escape(run.results)}/drill-oom\\.(csv|meta\\.json|runs\\.jsonl): cannot write results: ENOSPC`));
    expect(run.stderr).toMatch(/hint: the disk holding .* is full \(or over quota\); free some space and run again/);
    expect(run.stderr).not.toMatch(/internal error/);
    expect(run.stderr).not.toMatch(STACK);
    // no temp file, no lock; both finished runs are on disk (in the record file, kept because the merge failed)
    expect(run.listing.filter((name) => name.endsWith('.tmp') || name === LOCK)).toEqual([]);
    expect(recordFiles(run.copy, 'drill-oom')).toHaveLength(1);
    expect(readRecords(run.copy, 'drill-oom').map((r) => r.status)).toEqual(['oom', 'oom']);

    // space freed: nothing to run, the merge completes
    const rerun = run.rerun!;
    expect(rerun.rc, rerun.stderr).toBe(0);
    expect(rerun.stderr).toContain('drill-oom: reusing 2 of 2 runs');
    expect(rerun.stderr).toContain('nothing to run');
    expect(rerun.listing.sort()).toEqual(['drill-oom.csv', 'drill-oom.meta.json', 'drill-oom.runs.jsonl']);
    expect(readCsv(rerun.copy, 'drill-oom').map((r) => r.status)).toEqual(['oom', 'oom']);
    const meta = JSON.parse(readFileSync(join(rerun.copy, 'drill-oom.meta.json'), 'utf8')) as { runs: { oom: number } };
    expect(meta.runs.oom).toBe(2);
  });

  it.skipIf(!HAS_TMPFS)('the disk fills up in the middle of appending a record → exit 2; earlier records intact, the cut line ignored; the next run redoes only the rest', async () => {
    // 2 free pages: the lock and the record file's first page (header and the first records); the append that needs
    // a second page is cut off at the page boundary (a short write), then fails.
    const run = await runOnTmpfs('enospc-append', `free=${2 * PAGE}`, [FOUR, '--jobs', '1'], true);
    expect(run.rc, run.stderr).toBe(2);
    const error = run.stderr.split('\n').find((line) => line.startsWith('mpx: /'))!;
    expect(error).toMatch(new RegExp(`^mpx: ${escape(run.results)}/drill-four\\.records/run\\.[^:]+\\.jsonl: cannot write results: ENOSPC`));
    expect(run.stderr).not.toMatch(STACK);
    const [file] = recordFiles(run.copy, 'drill-four');
    const text = readFileSync(join(run.copy, 'drill-four.records', file!), 'utf8');
    expect(text.endsWith('\n'), 'the append was cut off mid-line').toBe(false);
    const kept = readRecords(run.copy, 'drill-four');
    expect(kept.length).toBeGreaterThanOrEqual(1);
    expect(kept.length).toBeLessThan(4);
    expect(kept.every((r) => r.status === 'ok')).toBe(true);

    const rerun = run.rerun!;
    expect(rerun.rc, rerun.stderr).toBe(0);
    expect(rerun.stderr).toContain(`drill-four: reusing ${kept.length} of 4 runs`);
    expect(rerun.stderr).toContain(`mpx: ${4 - kept.length} runs from 1 spec(s)`);
    expect(readCsv(rerun.copy, 'drill-four').map((r) => r.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
    const all = readRecords(rerun.copy, 'drill-four');
    expect(all).toHaveLength(4);
    const lines = new Set(all.map((r) => r.line));
    for (const record of kept) expect(lines.has(record.line), `record ${record.runId} was rewritten or lost`).toBe(true);
    expect(recordFiles(rerun.copy, 'drill-four')).toEqual([]);
  });
});
