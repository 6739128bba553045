/**
 * Ctrl-C and SIGTERM during `mpx run`: the first stops the workers (finished runs are kept, written atomically);
 * a second exits at once.
 */
import { EXIT_INTERRUPTED } from './exit-codes.js';

/** Runs `work` with a signal that aborts on SIGINT/SIGTERM; resolves to whether it was interrupted. */
export async function interruptOnSignals(work: (signal: AbortSignal) => Promise<void>): Promise<boolean> {
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupt.signal.aborted) process.exit(EXIT_INTERRUPTED); // a second Ctrl-C: leave at once
    process.stderr.write(`\nmpx: ${signal}: stopping workers; finished runs are kept (press Ctrl-C again to exit at once)\n`);
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await work(interrupt.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return interrupt.signal.aborted;
}
