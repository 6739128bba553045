/**
 * Worker process entry: transport only. Waits for `start`, runs it, answers `result` or `failed` — always answers,
 * even when setup throws (as vitest's workers send `started` with an error). Spawned by src/runner/spawn.ts.
 */
import { getOneMessage, sendMessage } from 'execa';
import { isParentMessage, PROTOCOL_VERSION, type ChildMessage } from '../runner/protocol.js';
import type { BackendName } from '../spec/types.js';
import { isOutOfMemoryError, MemoryBudgetExceeded, TensorLedger } from './measure.js';

async function send(message: ChildMessage): Promise<void> {
  await sendMessage(message);
}

async function main(): Promise<void> {
  const message = await getOneMessage();
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
    if (error instanceof MemoryBudgetExceeded) {
      await send({ mpx: PROTOCOL_VERSION, type: 'failed', kind: 'oom', message: text, backend, reachedBytes: error.reachedBytes });
    } else if (isOutOfMemoryError(text)) {
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
