/**
 * Runs one RunConfig in its own Node worker process and turns whatever happens into a RunRecord.
 * Modeled on vitest's fork pool (`packages/vitest/src/node/pools/forks.ts`: one child, typed messages, "Worker
 * exited unexpectedly") and execa's own termination options (`timeout`, `forceKillAfterDelay`, `cancelSignal`).
 */
import { StringDecoder } from 'node:string_decoder';
import type { RunConfig } from '../matrix/types.js';
import { startNodeWorker, startPythonWorker, type PythonWorker, type WorkerChannel, type WorkerProcessOptions } from './engines.js';
import type { GpuMemorySampler } from './gpu-memory.js';
import { startMemoryGuard } from './memory-guard.js';
import { preflight, type MemoryCeilings, type PreflightVerdict } from './preflight.js';
import { formatByteSize } from '../spec/size.js';
import type { BackendName } from '../spec/types.js';
import {
  PROTOCOL_VERSION,
  isChildMessage,
  type ChildMessage,
  type ParentMessage,
  type RunMeasurements,
  type RunRecord,
  type RunStatus,
} from './protocol.js';

export interface SpawnOptions {
  /** The tfjs worker's entry point, e.g. `dist/worker/main.js` (tests pass fake workers). */
  workerFile: string;
  /** The torch worker, for runs with `backend: torch`; absent = no Python with PyTorch was found. */
  python?: PythonWorker;
  /** Sent in `start`: the worker aborts with `oom` once measured bytes pass it. @default null (no budget) */
  memoryLimitBytes?: number | null;
  /** Overrides `run.train.timeoutSeconds`; 0 = no timeout. Unit: ms. */
  timeoutMs?: number;
  /** After SIGTERM (timeout, cancel), SIGKILL the worker this much later if it is still alive. @default 5000 */
  forceKillAfterMs?: number;
  /** Aborting kills the worker; the record becomes `interrupted`, with the signal's reason when it is a string. */
  signal?: AbortSignal;
  /** Added to the inherited environment (spawn-time facts: `MPX_SLOT`, `CUDA_VISIBLE_DEVICES`). */
  env?: Record<string, string>;
  /** Node flags for a tfjs worker. @default process.execArgv (execa's default) */
  nodeOptions?: string[];
  /** Called for every `progress` message. */
  onProgress?: (run: RunConfig, step: number, totalSteps: number) => void;
  /** Samples the worker's GPU memory while it runs (see gpu-memory.ts); absent = no GPU to sample. */
  sampleGpuMemory?: (pid: number) => GpuMemorySampler;
  /** Checked before the worker starts (preflight.ts): a run that cannot fit is an `oom` record and no process. */
  memoryCeilings?: (run: RunConfig) => MemoryCeilings;
  /** The worker is killed, and the run recorded `oom`, once its resident set passes this (memory-guard.ts). */
  workerMemory?: { limitBytes: number; source: string } | null;
}

/** What V8 prints when it aborts on a full heap. */
const V8_HEAP_OOM = /JavaScript heap out of memory|Reached heap limit/;
/** What a Python worker that died of memory prints last when it could not answer itself: MemoryError, PyTorch's allocators. */
const PYTHON_OOM = /MemoryError|can't allocate memory|CUDA out of memory/;

/** A worker exits by itself after its answer; one still alive this much later is killed. */
const EXIT_GRACE_MS = 5_000;
const DEFAULT_FORCE_KILL_AFTER_MS = 5_000;
/** Only the end of stderr is kept (the reason a worker died is at the end); this bounds memory per worker. */
const STDERR_TAIL_CHARS = 8_192;
const STDERR_TAIL_LINES = 4;
const STDERR_LINE_CHARS = 240;

/** Where the worker was when it died, for "… during <phase>" (vitest says "during <state>"). */
type Phase = 'startup' | 'setup' | 'training' | 'shutdown';

/**
 * Starts one worker, sends it `start`, and waits for its answer and its exit. Never throws for anything the worker
 * does: every outcome (answer, crash, signal, timeout, cancel) becomes a RunRecord.
 */
export async function runInWorker(run: RunConfig, options: SpawnOptions): Promise<RunRecord> {
  const startedAtMs = performance.now();
  const verdict = options.memoryCeilings ? preflight(run, options.memoryCeilings(run)) : null;
  if (verdict !== null) return preflightRecord(run, verdict, performance.now() - startedAtMs);
  const timeoutMs = options.timeoutMs ?? run.train.timeoutSeconds * 1000;
  // A group of its own lets us kill the worker's children too (POSIX only; Windows has no process groups).
  const isDetached = process.platform !== 'win32';

  const processOptions: WorkerProcessOptions = {
    timeout: timeoutMs > 0 ? timeoutMs : undefined,
    forceKillAfterDelay: options.forceKillAfterMs ?? DEFAULT_FORCE_KILL_AFTER_MS,
    cancelSignal: options.signal,
    env: { ...options.env },
    detached: isDetached,
  };
  let channel: WorkerChannel;
  if (run.backend !== 'torch') {
    channel = startNodeWorker(options.workerFile, { ...processOptions, nodeOptions: options.nodeOptions });
  } else if (options.python !== undefined) {
    channel = startPythonWorker(options.python, processOptions);
  } else {
    return noPythonRecord(run);
  }
  const { subprocess } = channel;

  const pid = subprocess.pid;
  if (isDetached && pid !== undefined) trackGroup(pid);
  const gpuSampler = pid !== undefined ? options.sampleGpuMemory?.(pid) : undefined;
  let memoryKill: { residentBytes: number; phase: Phase } | null = null;
  const workerMemory = options.workerMemory ?? null;
  const guard =
    pid !== undefined && workerMemory !== null
      ? startMemoryGuard(pid, workerMemory.limitBytes, (residentBytes) => {
          memoryKill = { residentBytes, phase: state.phase };
          if (isDetached) killGroup(pid);
          else subprocess.kill('SIGKILL');
        })
      : undefined;
  // The moment the worker exits, whatever it left behind in its group dies with it (a grandchild holding the stderr
  // pipe open would otherwise also keep execa waiting).
  subprocess.once('exit', () => {
    if (isDetached && pid !== undefined) killGroup(pid);
  });

  const stderrTail = createTail(STDERR_TAIL_CHARS);
  subprocess.stderr?.on('data', (chunk: Buffer) => stderrTail.push(chunk));

  const state: WorkerState = { phase: 'startup', lastStep: null, readyBackend: null, answer: null, protocolMismatch: null };
  let exitTimer: NodeJS.Timeout | undefined;

  // Subscribed before the first await so no message is missed; the loop ends when the channel disconnects (exit).
  const messages = (async () => {
    try {
      for await (const message of channel.messages) {
        if (!isChildMessage(message)) {
          state.protocolMismatch ??= describeForeignMessage(message);
          subprocess.kill();
          continue;
        }
        if (state.answer !== null) continue;
        switch (message.type) {
          case 'ready':
            state.readyBackend = message.backend;
            state.phase = 'setup';
            break;
          case 'progress':
            state.phase = 'training';
            state.lastStep = { step: message.step, totalSteps: message.totalSteps };
            options.onProgress?.(run, message.step, message.totalSteps);
            break;
          case 'result':
          case 'failed':
            state.answer = message;
            state.phase = 'shutdown';
            exitTimer = setTimeout(() => subprocess.kill(), EXIT_GRACE_MS);
            break;
        }
      }
    } catch {
      // An IPC error ends the conversation; the exit status below says what happened.
    }
  })();

  await sendQuietly(channel, { mpx: PROTOCOL_VERSION, type: 'start', run, options: { memoryLimitBytes: options.memoryLimitBytes ?? null } });
  const result = await subprocess;
  await messages;
  clearTimeout(exitTimer);
  const gpuPeakBytes = gpuSampler ? await gpuSampler.stop() : null;
  guard?.stop();
  if (isDetached && pid !== undefined) untrackGroup(pid);

  const wallMs = Math.round(result.durationMs ?? performance.now() - startedAtMs);
  const record = (
    status: RunStatus,
    reason: string | null,
    backend: BackendName | null,
    measurements: RunMeasurements | null = null,
    reachedBytes: number | null = null,
  ): RunRecord => ({
    runId: run.runId,
    cellId: run.cellId,
    cellIndex: run.cellIndex,
    repeat: run.repeat,
    status,
    reason,
    backend,
    wallMs,
    measurements,
    reachedBytes,
    gpuPeakBytes,
    attempts: 1,
  });

  // An answer wins over how the process ended afterwards: the work was done.
  const { answer, phase, lastStep, readyBackend, protocolMismatch } = state;
  if (answer?.type === 'result') return record('ok', null, answer.measurements.backend, answer.measurements);
  if (answer?.type === 'failed') {
    const isOom = answer.kind === 'oom';
    const status = isOom ? 'oom' : answer.kind === 'unsupported' ? 'unsupported' : 'failed';
    return record(status, oneLine(answer.message), answer.backend ?? readyBackend, null, isOom ? (answer.reachedBytes ?? null) : null);
  }

  const during = `during ${phase}${lastStep && phase === 'training' ? ` (step ${lastStep.step}/${lastStep.totalSteps})` : ''}`;
  const stderr = summarizeStderr(stderrTail.text());
  const withStderr = (text: string): string => (stderr.length > 0 ? `${text}; last stderr: ${stderr.join(' | ')}` : text);

  if (protocolMismatch !== null) return record('failed', protocolMismatch, readyBackend);
  const killed = memoryKill as { residentBytes: number; phase: Phase } | null;
  if (killed !== null && workerMemory !== null) {
    const reason =
      `worker killed by mpx's memory guard during ${killed.phase}: its resident set reached ${formatByteSize(killed.residentBytes)}, ` +
      `above its share of this machine (${formatByteSize(workerMemory.limitBytes)}: ${workerMemory.source}); use fewer --jobs or set --worker-memory`;
    return record('oom', reason, readyBackend, null, killed.residentBytes);
  }
  if (result.isCanceled) {
    const reason: unknown = options.signal?.reason;
    return record('interrupted', typeof reason === 'string' ? reason : 'interrupted', readyBackend);
  }
  if (result.timedOut) {
    const forced = result.isForcefullyTerminated ? ', killed with SIGKILL after ignoring SIGTERM' : '';
    return record('timeout', withStderr(`timed out after ${formatSeconds(timeoutMs)} ${during}${forced}`), readyBackend);
  }
  if (result.exitCode === undefined && result.signal === undefined) {
    // Never ran (spawn error such as EAGAIN): execa's message says why.
    return record('crashed', withStderr(`worker could not start: ${oneLine(result.shortMessage ?? 'unknown error')}`), null);
  }
  const how = result.signal !== undefined ? `signal ${result.signal}` : result.exitCode === 0 ? 'exit code 0 without a result' : `exit code ${result.exitCode}`;
  // A full JavaScript heap aborts V8; Python can die of MemoryError before answering: out-of-memory answers, not
  // crashes of mpx's making.
  const stderrText = stderrTail.text();
  if (V8_HEAP_OOM.test(stderrText) || PYTHON_OOM.test(stderrText)) {
    const what = V8_HEAP_OOM.test(stderrText) ? 'JavaScript heap' : 'memory';
    return record('oom', withStderr(`worker ran out of ${what} (${how}) ${during}`), readyBackend);
  }
  return record('crashed', withStderr(`worker exited unexpectedly (${how}) ${during}`), readyBackend);
}

/** What the parent has learnt from the worker's messages so far. */
interface WorkerState {
  phase: Phase;
  lastStep: { step: number; totalSteps: number } | null;
  readyBackend: BackendName | null;
  answer: Extract<ChildMessage, { type: 'result' | 'failed' }> | null;
  /** Set when the worker speaks another protocol version (a stale build). */
  protocolMismatch: string | null;
}


/** A worker that is gone cannot receive messages; that is reported by its exit, not here. */
async function sendQuietly(channel: WorkerChannel, message: ParentMessage): Promise<void> {
  try {
    await channel.send(message);
  } catch {
    // Disconnected already.
  }
}

/** The `oom` record of a run the pre-flight refused: no process was started. */
function preflightRecord(run: RunConfig, verdict: PreflightVerdict, elapsedMs: number): RunRecord {
  return {
    runId: run.runId,
    cellId: run.cellId,
    cellIndex: run.cellIndex,
    repeat: run.repeat,
    status: 'oom',
    reason: verdict.reason,
    backend: null,
    wallMs: Math.round(elapsedMs),
    measurements: null,
    reachedBytes: verdict.reachedBytes,
    gpuPeakBytes: null,
    attempts: 1,
  };
}

/** A torch run without a torch worker: `mpx run` checks for Python before it starts, so only a caller's slip gets here. */
function noPythonRecord(run: RunConfig): RunRecord {
  return {
    runId: run.runId,
    cellId: run.cellId,
    cellIndex: run.cellIndex,
    repeat: run.repeat,
    status: 'failed',
    reason: 'backend torch needs a Python with PyTorch, and none was given to the runner',
    backend: null,
    wallMs: 0,
    measurements: null,
    reachedBytes: null,
    gpuPeakBytes: null,
    attempts: 1,
  };
}

function describeForeignMessage(message: unknown): string {
  const version = typeof message === 'object' && message !== null ? (message as { mpx?: unknown }).mpx : undefined;
  return version === undefined
    ? 'worker sent a message that is not an mpx protocol message'
    : `worker speaks mpx protocol ${JSON.stringify(version)}, expected ${PROTOCOL_VERSION} (rebuild: npm run build)`;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' | ').trim();
}

function formatSeconds(ms: number): string {
  const seconds = ms / 1000;
  return `${Number.isInteger(seconds) ? seconds : seconds.toFixed(1)} s`;
}

// eslint-disable-next-line no-control-regex
const ANSI_PATTERN = /\u001b\[[0-9;?]*[ -/]*[@-~]/g;

/** Keeps the last `maxChars` characters written to a stream. */
function createTail(maxChars: number): { push(chunk: Buffer): void; text(): string } {
  const decoder = new StringDecoder('utf8');
  let text = '';
  return {
    push(chunk) {
      text += decoder.write(chunk);
      if (text.length > 2 * maxChars) text = text.slice(-maxChars);
    },
    text: () => text + decoder.end(),
  };
}

/** Lines that never explain a crash: stack frames (JS and native), Node's version trailer, lone brackets and carets. */
const NOISE_LINE = /^\s*(?:at\s|\d+: 0x[0-9a-f]+\b|Node\.js v\d|[{}[\]^]+\s*$)/;
/** The line that names the failure, e.g. `Error: …`, `mpx worker: RangeError: …`, `FATAL ERROR: … heap out of memory`. */
const ERROR_LINE = /(?:\b[A-Z]\w*)?(?:Error|Exception)\b|FATAL|Aborted|panic/;

/**
 * The few stderr lines worth putting in a reason: noise dropped, starting at the last line that names an error
 * (Node prints the error, then its stack and properties), else the last lines.
 */
export function summarizeStderr(text: string, maxLines = STDERR_TAIL_LINES, maxLineChars = STDERR_LINE_CHARS): string[] {
  const lines = text
    .replace(ANSI_PATTERN, '')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !NOISE_LINE.test(line));
  let from = Math.max(0, lines.length - maxLines);
  for (let i = lines.length - 1; i >= 0; i--) {
    if (ERROR_LINE.test(lines[i]!)) {
      from = i;
      break;
    }
  }
  return lines.slice(from, from + maxLines).map((line) => (line.length > maxLineChars ? `${line.slice(0, maxLineChars - 1)}…` : line));
}

// Process-group bookkeeping. execa's `cleanup` does not apply to detached children, so groups still alive when
// mpx exits are killed here (synchronously: 'exit' handlers cannot wait).
const liveGroups = new Set<number>();
let isExitHookInstalled = false;

function trackGroup(pid: number): void {
  liveGroups.add(pid);
  if (!isExitHookInstalled) {
    isExitHookInstalled = true;
    process.once('exit', () => {
      for (const group of liveGroups) killGroup(group);
    });
  }
}

function untrackGroup(pid: number): void {
  liveGroups.delete(pid);
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is already empty.
  }
}
