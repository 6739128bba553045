/**
 * Progress output for `mpx run`. The format* functions are pure (they return strings, tested with golden strings);
 * only the object from `createProgress` keeps state, reads the clock and writes to the stream.
 * TTY: finished runs scroll up as plain lines and a live block below them is redrawn in place with ANSI cursor
 * movement (what vitest's and npm's reporters do). Not a TTY (CI logs): one line per finished run, nothing else.
 */
import { formatCellLabel } from '../matrix/label.js';
import type { RunConfig } from '../matrix/types.js';
import { RECORDED_STATUSES, type RunRecord, type RunStatus } from './protocol.js';

export interface ProgressOptions {
  /** Runs in the whole experiment. */
  total: number;
  /** Live block redrawn in place when true; one line per finished run when false. */
  isTTY: boolean;
  stream: NodeJS.WritableStream & { columns?: number };
  /** Workers running at once, for the ETA. @default 1 */
  jobs?: number;
  /** Clock in ms (tests pass a fake). @default performance.now */
  now?: () => number;
  /**
   * A finished ok run's peak memory for its line, e.g. `29.88 MB modeled` (the CLI passes the choice of
   * `results/peak.ts`, downstream of the runner); null or absent: the line shows none.
   */
  describePeak?: (record: RunRecord, run: RunConfig) => string | null;
}

export interface Progress {
  start(run: RunConfig): void;
  progress(run: RunConfig, step: number, totalSteps: number): void;
  finish(record: RunRecord, run: RunConfig): void;
  /** Removes the live block (TTY); call once at the end, also after an interrupt. */
  done(): void;
}

export interface RunningRun {
  run: RunConfig;
  /** null until the first `progress` message. */
  step: { step: number; totalSteps: number } | null;
  startedAtMs: number;
}

/** Everything the live block shows, at one instant. */
export interface ProgressSnapshot {
  total: number;
  jobs: number;
  counts: Record<RunStatus, number>;
  /** Sum of `wallMs` over finished runs. */
  finishedWallMs: number;
  running: RunningRun[];
  nowMs: number;
}

/** Progress messages can come many times a second per worker; the block is redrawn at most this often for them. */
const REDRAW_INTERVAL_MS = 100;
const STATUS_WIDTH = 11; // the longest status: 'unsupported'

const ESC = '\u001b[';

/** `mlp bs=128 mixed_float16 acc=4` */
export function formatRunLabel(run: RunConfig): string {
  return formatCellLabel({ ...run, model: run.model.name });
}

/** `850 ms`, `2.1 s`, `1m 05s`, `2h 03m` */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const totalSeconds = Math.round(seconds);
  const minutes = Math.floor(totalSeconds / 60);
  if (minutes < 60) return `${minutes}m ${String(totalSeconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`;
}

/** `412 ms/step`, `3.7 ms/step`, `0.42 ms/step` */
export function formatStepMs(ms: number): string {
  const text = ms >= 100 ? String(Math.round(ms)) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
  return `${text} ms/step`;
}

/**
 * The line for one finished run, numbered by finishing order, with its peak memory when `peak` is given:
 * `[ 3/36] ok          mlp bs=128 mixed_float16 acc=4  412 ms/step  29.88 MB modeled  (2.1 s)`
 * `[ 4/36] crashed     mlp bs=128 float32 acc=1  worker exited unexpectedly (…)  (0.4 s)`
 */
export function formatFinishedLine(record: RunRecord, run: RunConfig, finishedCount: number, total: number, peak: string | null = null): string {
  const counter = `[${String(finishedCount).padStart(String(total).length)}/${total}]`;
  const detail =
    record.status === 'ok' && record.measurements ? [formatStepMs(record.measurements.stepMsMedian), peak ?? ''].filter((p) => p !== '').join('  ') : (record.reason ?? '');
  const parts = [`${counter} ${record.status.padEnd(STATUS_WIDTH)} ${formatRunLabel(run)}`, detail, `(${formatDuration(record.wallMs)})`];
  return parts.filter((part) => part !== '').join('  ');
}

/** Mean wall time of finished runs × runs left, spread over the workers; null before anything finished. */
export function estimateRemainingMs(snapshot: Pick<ProgressSnapshot, 'total' | 'jobs' | 'counts' | 'finishedWallMs'>): number | null {
  const finished = countFinished(snapshot.counts);
  const remaining = snapshot.total - finished;
  if (finished === 0) return null;
  if (remaining <= 0) return 0;
  return ((snapshot.finishedWallMs / finished) * remaining) / Math.max(1, Math.min(snapshot.jobs, remaining));
}

/**
 * The live block: a header and one line per running run, each cut to `columns - 1` characters so no line wraps
 * (a wrapped line would break the cursor-up count).
 * `3/36 done · 1 crashed · 2 running · ETA 1m 20s`
 * `  mlp bs=128 mixed_float16 acc=4  step 12/30  (4.2 s)`
 */
export function formatLiveBlock(snapshot: ProgressSnapshot, columns?: number): string[] {
  const header = [`${countFinished(snapshot.counts)}/${snapshot.total} done`];
  for (const status of ['failed', 'crashed', 'timeout', 'oom', 'unsupported'] as const) {
    if (snapshot.counts[status] > 0) header.push(`${snapshot.counts[status]} ${status}`);
  }
  header.push(`${snapshot.running.length} running`);
  const etaMs = estimateRemainingMs(snapshot);
  if (etaMs !== null) header.push(`ETA ${formatDuration(etaMs)}`);

  const lines = [header.join(' · ')];
  for (const { run, step, startedAtMs } of snapshot.running) {
    const where = step === null ? 'starting' : `step ${step.step}/${step.totalSteps}`;
    lines.push(`  ${formatRunLabel(run)}  ${where}  (${formatDuration(Math.max(0, snapshot.nowMs - startedAtMs))})`);
  }
  return columns !== undefined && columns > 1 ? lines.map((line) => truncate(line, columns - 1)) : lines;
}

/** ANSI to replace a block of `previousLineCount` lines (the cursor is just below it) with `lines`. */
export function formatRedraw(previousLineCount: number, lines: readonly string[]): string {
  const erase = previousLineCount > 0 ? `${ESC}${previousLineCount}A${ESC}0J` : '';
  return erase + lines.map((line) => `${line}\n`).join('');
}

export function createProgress(options: ProgressOptions): Progress {
  const { total, isTTY, stream, jobs = 1, now = () => performance.now(), describePeak } = options;
  const counts: Record<RunStatus, number> = { ok: 0, failed: 0, timeout: 0, crashed: 0, oom: 0, unsupported: 0, interrupted: 0 };
  const running = new Map<string, RunningRun>();
  let finishedWallMs = 0;
  let blockLineCount = 0;
  let lastDrawMs = Number.NEGATIVE_INFINITY;

  const snapshot = (): ProgressSnapshot => ({ total, jobs, counts, finishedWallMs, running: [...running.values()], nowMs: now() });

  /** Replaces the live block, writing `permanent` lines above it first (TTY only). */
  const redraw = (permanent: string[] = []): void => {
    const block = formatLiveBlock(snapshot(), stream.columns);
    stream.write(formatRedraw(blockLineCount, [...permanent, ...block]));
    blockLineCount = block.length;
    lastDrawMs = now();
  };

  return {
    start(run) {
      running.set(run.runId, { run, step: null, startedAtMs: now() });
      if (isTTY) redraw();
    },
    progress(run, step, totalSteps) {
      const entry = running.get(run.runId);
      if (entry === undefined) return;
      entry.step = { step, totalSteps };
      if (isTTY && now() - lastDrawMs >= REDRAW_INTERVAL_MS) redraw();
    },
    finish(record, run) {
      running.delete(run.runId);
      counts[record.status] += 1;
      finishedWallMs += record.wallMs;
      const peak = record.status === 'ok' && describePeak ? describePeak(record, run) : null;
      const line = formatFinishedLine(record, run, countFinished(counts), total, peak);
      if (isTTY) redraw([line]);
      else stream.write(`${line}\n`);
    },
    done() {
      if (isTTY && blockLineCount > 0) stream.write(formatRedraw(blockLineCount, []));
      blockLineCount = 0;
    },
  };
}

/** Runs with a record: every status but `interrupted`. */
function countFinished(counts: Record<RunStatus, number>): number {
  return RECORDED_STATUSES.reduce((sum, status) => sum + counts[status], 0);
}

function truncate(line: string, maxChars: number): string {
  return line.length > maxChars ? `${line.slice(0, Math.max(0, maxChars - 1))}…` : line;
}
