/**
 * Worker process entry: transport only. Waits for `start`, runs it, answers `result` or `failed` — always answers,
 * even when setup throws (as vitest's workers send `started` with an error). Spawned by src/runner/spawn.ts.
 */
import { getOneMessage, sendMessage } from 'execa';
import { isParentMessage, PROTOCOL_VERSION, type ChildMessage } from '../runner/protocol.js';
import type { BackendName } from '../spec/types.js';
import { MemoryBudgetExceeded, TensorLedger } from './measure.js';

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
  try {
    // Loaded after the message arrives so that a broken tfjs install is reported as a failed run, not a crash.
    const { startBackend } = await import('./backend.js');
    const { trainRun } = await import('./train.js');
    backend = (await startBackend(run.backend)).name;
    await send({ mpx: PROTOCOL_VERSION, type: 'ready', backend, pid: process.pid });
    const ledger = new TensorLedger(options.memoryLimitBytes);
    ledger.attach();
    const measurements = await trainRun(run, backend, ledger, {
      onProgress: (step, totalSteps) => send({ mpx: PROTOCOL_VERSION, type: 'progress', step, totalSteps }),
    });
    await send({ mpx: PROTOCOL_VERSION, type: 'result', measurements });
  } catch (error) {
    const kind = error instanceof MemoryBudgetExceeded ? 'oom' : 'error';
    const text = error instanceof Error ? error.message : String(error);
    await send({ mpx: PROTOCOL_VERSION, type: 'failed', kind, message: text, backend });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`mpx worker: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
