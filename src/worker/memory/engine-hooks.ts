/**
 * What the ledger learns from tfjs's engine beyond allocations: every kernel that runs (what it reads, which buffers
 * it only used inside), every op recorded on the tape during the forward pass (its layer, what its gradient keeps),
 * and the backward pass gradient by gradient. tfjs runs a recorded op's gradient long after the op, from its tape
 * node; wrapping each node's gradient makes the buffers of the backward pass inherit the context (layer, 16-bit or
 * not) of the forward op they belong to. The engine is wrapped once; the hooks report to the ledger attached last.
 */
import { tf } from '../tfjs.js';
import type { TensorLedger } from './ledger.js';

type Gradient = (dys: tf.Tensor[]) => Record<string, () => tf.Tensor>;
interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: Gradient;
}
interface HookedEngine {
  addTapeNode: (...args: unknown[]) => void;
  runKernelFunc: (params: { kernelName?: string; attrs?: Record<string, unknown>; inputs?: Record<string, unknown> | unknown[] }) => unknown;
  state: { activeTape: TapeNode[] | null };
  mpxHooks?: boolean;
}

let hookedLedger: TensorLedger | null = null;

export function installEngineHooks(ledger: TensorLedger): void {
  const engine = tf.engine() as unknown as HookedEngine;
  hookedLedger = ledger;
  if (engine.mpxHooks) return;
  engine.mpxHooks = true;

  const runKernelFunc = engine.runKernelFunc.bind(engine);
  engine.runKernelFunc = (params) => {
    const ledger = hookedLedger;
    if (!ledger?.isMeasuring) return runKernelFunc(params);
    ledger.onKernelStart();
    let outputs: unknown;
    try {
      outputs = runKernelFunc(params);
      return outputs;
    } finally {
      ledger.onKernelEnd(params.kernelName, params.attrs, tensorsOf(params.inputs), tensorsOf(outputs));
    }
  };

  const addTapeNode = engine.addTapeNode.bind(engine);
  engine.addTapeNode = (...args: unknown[]) => {
    addTapeNode(...args);
    const ledger = hookedLedger;
    const tape = engine.state.activeTape;
    const node = tape?.[tape.length - 1];
    if (!ledger?.isMeasuring || node === undefined) return;
    ledger.onTapeNode(node.id, node.kernelName, node.inputs, node.outputs, node.saved ?? [], (args[5] ?? {}) as Record<string, unknown>);
    if (node.gradient === undefined) return;
    const forwardContext = ledger.context;
    const gradient = node.gradient;
    const inContext = <T>(fn: () => T): T => {
      const previous = ledger.context;
      ledger.enterBackward(forwardContext);
      try {
        return fn();
      } finally {
        ledger.context = previous;
      }
    };
    // A gradient works in its function's body (Sum's) and in the thunks it returns (most); both are its scope.
    node.gradient = (dys) => {
      ledger.onGradientStart(node.id);
      const thunks = inContext(() => ledger.inGradientScope(() => gradient(dys)));
      const wrapped: Record<string, () => tf.Tensor> = {};
      for (const [name, thunk] of Object.entries(thunks)) {
        wrapped[name] = () =>
          inContext(() => {
            const dx = ledger.inGradientScope(thunk);
            ledger.onGradientResult(node.id, name, dx);
            return dx;
          });
      }
      return wrapped;
    };
  };
}

/** The tensors (or tensor infos) in a kernel's inputs or outputs, whatever shape they come in. */
function tensorsOf(value: unknown): Array<{ dataId: object }> {
  const list = Array.isArray(value) ? value : value !== null && typeof value === 'object' && !('dataId' in value) ? Object.values(value) : [value];
  return list.filter((t): t is { dataId: object } => t !== null && typeof t === 'object' && 'dataId' in t);
}
