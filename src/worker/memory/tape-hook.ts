/**
 * tfjs runs a recorded op's gradient long after the op, from its tape node. Wrapping each node's gradient function
 * makes the buffers of the backward pass inherit the context (layer, 16-bit or not) of the forward op they belong to.
 */
import { tf } from '../tfjs.js';
import type { TensorLedger } from './ledger.js';

let tapeLedger: TensorLedger | null = null;
export function installTapeHook(ledger: TensorLedger): void {
  const engine = tf.engine() as unknown as {
    addTapeNode: (...args: unknown[]) => void;
    state: { activeTape: Array<{ gradient?: (dys: tf.Tensor[]) => Record<string, () => tf.Tensor> }> | null };
    mpxTapeHook?: boolean;
  };
  tapeLedger = ledger;
  if (engine.mpxTapeHook) return;
  engine.mpxTapeHook = true;
  const original = engine.addTapeNode.bind(engine);
  engine.addTapeNode = (...args: unknown[]) => {
    original(...args);
    const ledgerNow = tapeLedger;
    const tape = engine.state.activeTape;
    const node = tape?.[tape.length - 1];
    if (!ledgerNow?.isMeasuring || !node?.gradient) return;
    const forwardContext = ledgerNow.context;
    const gradient = node.gradient;
    const inContext = <T>(fn: () => T): T => {
      const previous = ledgerNow.context;
      ledgerNow.enterBackward(forwardContext);
      try {
        return fn();
      } finally {
        ledgerNow.context = previous;
      }
    };
    node.gradient = (dys) => {
      const thunks = inContext(() => gradient(dys));
      const wrapped: Record<string, () => tf.Tensor> = {};
      for (const [name, thunk] of Object.entries(thunks)) wrapped[name] = () => inContext(thunk);
      return wrapped;
    };
  };
}
