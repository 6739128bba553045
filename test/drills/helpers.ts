/**
 * Shared machinery of the fault drills: start the BUILT CLI (dist/cli/main.js) with real workers (dist/worker/main.js),
 * watch its worker processes with `ps`, poll the results files, and make sure nothing is left running afterwards.
 * Every drill really does the fault (kills, signals, locks, full disks); nothing here is mocked.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { execa, type ResultPromise } from 'execa';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
export const WORKER = fileURLToPath(new URL('../../dist/worker/main.js', import.meta.url));
export const DRILLS = fileURLToPath(new URL('../fixtures/drills/', import.meta.url));
export const drillSpec = (name: string): string => join(DRILLS, name);
/** NODE_OPTIONS that load the drill preload into every worker (a stderr line; optionally a grandchild). */
export const PRELOAD_OPTIONS = `--import ${join(DRILLS, 'worker-preload.mjs')}`;

/** A stack trace line: output for people must never contain one. */
export const STACK = /\n\s+at /;

export function assertBuilt(): void {
  if (!existsSync(CLI) || !existsSync(WORKER)) throw new Error(`${CLI} or ${WORKER} is missing: build first (npx tsc -p .)`);
}

// ---------------------------------------------------------------------------------------------------------------
// processes

export interface Proc {
  pid: number;
  ppid: number;
  pgid: number;
  /** ps state letters; a leading Z is a zombie (dead, waiting to be reaped). */
  stat: string;
  args: string;
}

export function listProcesses(): Proc[] {
  const out = execFileSync('ps', ['-o', 'pid=,ppid=,pgid=,stat=,args=', '-e'], { encoding: 'utf8' });
  const procs: Proc[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    if (m) procs.push({ pid: Number(m[1]), ppid: Number(m[2]), pgid: Number(m[3]), stat: m[4]!, args: m[5]! });
  }
  return procs;
}

const isLive = (p: Proc): boolean => !p.stat.startsWith('Z');

/** Live processes that are one of `pids` or in one of their process groups (workers lead groups of their own). */
export function survivorsOf(pids: Iterable<number>): Proc[] {
  const set = new Set(pids);
  return listProcesses().filter((p) => isLive(p) && (set.has(p.pid) || set.has(p.pgid)));
}

/** Waits (up to `timeoutMs`) until none of `pids` nor anything in their process groups is alive; returns survivors. */
export async function waitGone(pids: Iterable<number>, timeoutMs = 5_000): Promise<Proc[]> {
  const list = [...pids];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = survivorsOf(list);
    if (left.length === 0 || Date.now() > deadline) return left;
    await sleep(100);
  }
}

export function isPidLive(pid: number): boolean {
  return survivorsOf([pid]).some((p) => p.pid === pid);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | undefined | false, timeoutMs = 30_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// the CLI

export interface MpxProcess {
  pid: number;
  /** Resolves when the CLI has exited (execa does not reject: reject: false). */
  done: Promise<{ exitCode?: number; signal?: string; stderr: string; stdout: string; exitedAt: number }>;
  stderr(): string;
  /** Worker pids seen as children of the CLI (`ps`, polled every 50 ms while it runs), in order of appearance. */
  workers: number[];
  hasExited(): boolean;
}

const started = new Set<{ child: ResultPromise; proc: MpxProcess }>();

export function startMpx(args: string[], options: { cwd: string; env?: Record<string, string> }): MpxProcess {
  const child = execa(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    env: { MPX_DEBUG: '', ...options.env },
    reject: false,
    buffer: false,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    // A drill that goes wrong must not hang the suite.
    timeout: 90_000,
  });
  let stderr = '';
  let stdout = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  const pid = child.pid!;
  const workers: number[] = [];
  let exited = false;
  const watch = setInterval(() => {
    if (exited) return;
    try {
      for (const p of listProcesses()) {
        if (p.ppid === pid && p.args.includes('worker/main.js') && !workers.includes(p.pid)) workers.push(p.pid);
      }
    } catch {
      // ps failed once; the next poll tries again
    }
  }, 50);
  const done = child.then((result) => {
    exited = true;
    clearInterval(watch);
    return { exitCode: result.exitCode, signal: result.signal, stderr, stdout, exitedAt: Date.now() };
  });
  const proc: MpxProcess = { pid, done, stderr: () => stderr, workers, hasExited: () => exited };
  started.add({ child, proc });
  return proc;
}

/** Runs the CLI to the end. */
export async function runMpx(args: string[], options: { cwd: string; env?: Record<string, string> }) {
  const proc = startMpx(args, options);
  const result = await proc.done;
  return { ...result, workers: proc.workers };
}

/** afterEach: SIGKILL whatever a failed drill left: CLIs still running and their workers' process groups. */
export async function killLeftovers(): Promise<void> {
  for (const entry of started) {
    const { child, proc } = entry;
    if (!proc.hasExited()) child.kill('SIGKILL');
    for (const worker of proc.workers) {
      try {
        process.kill(-worker, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await proc.done.catch(() => undefined);
    started.delete(entry);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// results files

export interface RunRecordLine {
  line: string;
  runId: string;
  cellIndex: number;
  status: string;
  reason: string | null;
  attempts: number;
  backend: string | null;
  reachedBytes: number | null;
}

export function readRecords(dir: string, spec: string): RunRecordLine[] {
  const path = join(dir, `${spec}.runs.jsonl`);
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => ({ line, ...(JSON.parse(line) as Omit<RunRecordLine, 'line'>) }));
}

export type CsvRow = Record<string, string>;

/** Parses `<dir>/<spec>.csv` strictly (every row as wide as the header). */
export function readCsv(dir: string, spec: string): CsvRow[] {
  return parse<CsvRow>(readFileSync(join(dir, `${spec}.csv`), 'utf8'), { columns: true, relax_column_count: false });
}

/** Files a crash in the middle of an atomic write would leave behind (`.<name>.<pid>.<hex>.tmp`, `.mpx-probe-*`). */
export function strayFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.endsWith('.tmp') || name.startsWith('.mpx-probe') || name.includes('.stale-'));
}

export function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `mpx-drill-${label}-`));
  tempDirs.push(dir);
  return dir;
}

const tempDirs: string[] = [];
export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** The first line of stderr that is an mpx error message (`mpx: file:line:col: …`). */
export function firstLine(stderr: string): string {
  return stderr.split('\n')[0] ?? '';
}
