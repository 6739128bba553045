/**
 * Worker process entry: transport only. Waits for `start`, runs it, answers `result` or `failed` — always answers,
 * even when setup throws (as vitest's workers send `started` with an error). Spawned by src/runner/spawn.ts.
 */
import { isParentMessage, PROTOCOL_VERSION, type ChildMessage } from '../runner/protocol.js';
import type { BackendName } from '../spec/types.js';
import type { TensorLedger } from './memory/ledger.js';

// Node's own IPC rather than execa's child-side helpers (which take ~80 ms to import, per run): the parent's execa
// sends and receives plain `process.send` messages.
function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) return reject(new Error('mpx worker: no IPC channel (it is started by mpx run)'));
    process.send(message, undefined, {}, (error) => (error ? reject(error) : resolve()));
  });
}

function nextMessage(): Promise<unknown> {
  return new Promise((resolve) => process.once('message', resolve));
}

async function main(): Promise<void> {
  const message = await nextMessage();
  if (!isParentMessage(message) || message.type !== 'start') {
    throw new Error(`expected a start message of protocol ${PROTOCOL_VERSION}, got ${JSON.stringify(message).slice(0, 200)}`);
  }
  const { run, options } = message;
  let backend: BackendName | null = null;
  let ledger: TensorLedger | null = null;
  try {
    // Loaded after the message arrives so that a broken tfjs install is reported as a failed run, not a crash.
    const { startBackend } = await import('./backend.js');
    const { trainRun } = await import('./train.js');
    const { TensorLedger } = await import('./memory/ledger.js');
    backend = (await startBackend(run.backend)).name;
    await send({ mpx: PROTOCOL_VERSION, type: 'ready', backend, pid: process.pid });
    ledger = new TensorLedger(options.memoryLimitBytes ?? run.memoryLimitBytes);
    ledger.attach();
    const measurements = await trainRun(run, backend, ledger, {
      onProgress: (step, totalSteps) => send({ mpx: PROTOCOL_VERSION, type: 'progress', step, totalSteps }),
    });
    await send({ mpx: PROTOCOL_VERSION, type: 'result', measurements });
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    // null when tfjs itself cannot load
    const [ledgerModule, processModule] = await Promise.all([import('./memory/ledger.js'), import('./memory/process.js')]).catch(() => [null, null]);
    if (ledgerModule && error instanceof ledgerModule.MemoryBudgetExceeded) {
      await send({ mpx: PROTOCOL_VERSION, type: 'failed', kind: 'oom', message: text, backend, reachedBytes: error.reachedBytes });
    } else if (processModule?.isOutOfMemoryError(text)) {
      const reached = ledger?.peakBytes ?? null;
      const message = `out of memory: ${text}${reached === null ? '' : ` (measured tensor bytes had reached ${reached})`}`;
      await send({ mpx: PROTOCOL_VERSION, type: 'failed', kind: 'oom', message, backend, reachedBytes: reached });
    } else {
      await send({ mpx: PROTOCOL_VERSION, type: 'failed', kind: 'error', message: text, backend });
    }
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`mpx worker: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
