/**
 * What TensorFlow would hold for the update the ledger logged: the same tensors, at the policy's sizes, with the
 * lifetimes TensorFlow gives them instead of tfjs's. tfjs keeps every forward intermediate until the whole backward
 * pass has finished and materialises kernel temporaries; TensorFlow frees a tensor as soon as its last consumer has
 * run. The rules, each applied to the logged ops:
 *
 * 1. **Forward tensors** (and the input batch) live until the last forward kernel that reads them, or — if the
 *    gradient of an op keeps them — until that gradient has run. Which tensors a gradient keeps is TensorFlow's own
 *    gradient function (`runtime-rules.ts`), not what tfjs's gradient happens to read, and only for the gradients
 *    that are needed: those of inputs on a path from a variable (TensorFlow's graph runs no other gradient op).
 * 2. **Backward tensors** (activation gradients, weight gradients) live until the last kernel that reads them: the
 *    next gradient, the gradient sum, the optimizer.
 * 3. **Temporaries** are not counted: buffers a kernel allocates and drops inside itself (tfjs's im2col chunks and
 *    transposes) and tensors a tfjs gradient function makes on the way to its result (Relu's `step(x)`), because
 *    TensorFlow computes these with cuBLAS/cuDNN and fused gradient kernels (ReluGrad, MaxPoolGrad, BiasAddGrad,
 *    Conv2DBackpropInput/Filter). cuDNN's and cuBLAS's own workspaces are not modeled either.
 * 4. **Variable updates are in place**: ResourceApplyAdam, ResourceApplyGradientDescent, ResourceApplyKerasMomentum
 *    and AssignAdd(Variable) write into the variable, so the optimizer's new values and temporaries and the
 *    accumulation sums are not counted, and parameters, slots and accumulators stay what they were.
 * 5. **Sizes** are the policy's (`modeledBytes`): activations of 16-bit layers at 2 bytes per element, the 16-bit
 *    copies of weights and inputs kept from a layer's forward to its backward; a 16-bit layer's gradient keeps those
 *    copies, not the fp32 tensors they were cast from (which then die after their last forward read). Casts Keras
 *    makes inside a layer (`policy-cast.ts`) are tensors of their own, at their precision; a runtime's sparse
 *    gradient (TensorFlow's embedding gradient) has the runtime's size.
 */
import { emptyRoles, modeledBytes, MEMORY_ROLES, type BufferRecord, type LogEvent, type MemoryRole, type TapeNodeInfo } from './replay.js';
import { RUNTIME_RULES, type NeedsGradient, type Runtime, type RuntimeRules } from './runtime-rules.js';

/** The state kept between updates. */
const PERSISTENT: ReadonlySet<MemoryRole> = new Set(['parameters', 'optimizer', 'accumulators']);

export interface LivenessReport {
  peakBytes: number;
  activationsPeakBytes: number;
}

/**
 * The peak of the logged update with `runtime`'s lifetimes and extra holdings (`runtime-rules.ts`): `tensorflow` is
 * the model mpx reports; `pytorch` replays the same ops with PyTorch's rules, to check the replay against the torch
 * engine.
 */
export function replayLiveness(initial: readonly BufferRecord[], log: readonly LogEvent[], runtime: Runtime = 'tensorflow'): LivenessReport {
  const rules = RUNTIME_RULES[runtime];
  const fused = fusedCalls(log, rules);
  const start = new Map<BufferRecord, number>();
  const end = new Map<BufferRecord, number>();
  const extend = (record: BufferRecord, index: number) => {
    const current = end.get(record);
    if (current !== undefined && index > current) end.set(record, index);
  };
  const nodes = new Map<number, TapeNodeInfo>();
  /** What the runtime holds besides tensors (rules.extra): activation bytes added at an event, removed at another. */
  const extras: Array<{ from: number; to: number; bytes: number }> = [];
  const keptFrom = new Map<number, { from: number; to: number; bytes: number }>();
  /** Each gradient's span, from its start to its last thunk: the runtime's transient holdings for the op's gradient. */
  const gradientSpans = new Map<number, { from: number; to: number }>();
  /** Buffers that became persistent state (an accumulator assigned a gradient): already counted as that state. */
  const absorbed = new Set<BufferRecord>();
  /** Tensors on a path from a variable: only their gradients are computed, so only those keep forward tensors. */
  const requiresGradient = new Set<BufferRecord>(initial.filter((record) => record.role === 'parameters'));
  /** What the runtime holds for a gradient result whose size is not the tensor's (TensorFlow's sparse gathers). */
  const bytesOverride = new Map<BufferRecord, number>();
  let isBackward = false;

  log.forEach((event, index) => {
    switch (event.kind) {
      case 'alloc':
        if (event.record.isTemporary || event.record.isUpdate || fused.internal.has(event.record)) return;
        start.set(event.record, index);
        // Virtual copies live as the ledger logged them (a layer's forward to its backward); others until read.
        end.set(event.record, event.record.isVirtual ? Number.POSITIVE_INFINITY : index);
        return;
      case 'free':
        if (event.record.isVirtual && start.has(event.record)) end.set(event.record, index);
        return;
      case 'retag':
        // A gradient assigned to an accumulator: TensorFlow copies it into the accumulator (counted from the start),
        // and it dies there; later reads of the buffer are reads of the accumulator.
        if (PERSISTENT.has(event.role)) {
          extend(event.record, index);
          absorbed.add(event.record);
        }
        return;
      case 'kernel':
        for (const record of event.reads) {
          // In the backward pass, reads of forward tensors are the gradients' saved tensors: rule 1 decides those.
          if (!(isBackward && record.isForward) && !absorbed.has(record)) extend(record, index);
        }
        return;
      case 'gradient-start':
        isBackward = true;
        gradientSpans.set(event.nodeId, { from: index, to: index });
        return;
      case 'backward-end':
        isBackward = false;
        return;
      case 'node': {
        nodes.set(event.node.id, event.node);
        if (Object.values(event.node.inputs).some((record) => record !== undefined && requiresGradient.has(record))) {
          for (const record of event.node.outputs) if (record !== undefined) requiresGradient.add(record);
        }
        const { keptBytes, transientBytes } = rules.extra(event.node);
        // Held until the op's gradient has run, or to the end if it never does (a node off the path to the variables).
        if (keptBytes > 0) keptFrom.set(event.node.id, { from: index, to: log.length - 1, bytes: keptBytes });
        if (transientBytes > 0) extras.push({ from: index, to: index, bytes: transientBytes });
        return;
      }
      case 'gradient': {
        const span = gradientSpans.get(event.nodeId);
        if (span !== undefined) span.to = index;
        const node = nodes.get(event.nodeId);
        if (node === undefined) return;
        const needsGradient = (input: string) => {
          const record = node.inputs[input];
          return record !== undefined && requiresGradient.has(record);
        };
        const call = node.fused === undefined ? undefined : fused.inputs.get(node.fused.call);
        for (const record of call ?? keptForGradient(node, rules, needsGradient)) extend(record, index);
        const bytes = event.result === undefined ? undefined : rules.resultBytes(node, event.result);
        if (bytes !== undefined) bytesOverride.set(event.result!, bytes);
        const kept = keptFrom.get(node.id);
        if (kept !== undefined) kept.to = index;
        return;
      }
    }
  });

  // Sweep: a record counts from its start event through its end event.
  const deltas = new Map<number, Array<[BufferRecord | number, 1 | -1]>>();
  const at = (index: number) => {
    let list = deltas.get(index);
    if (list === undefined) deltas.set(index, (list = []));
    return list;
  };
  for (const [record, index] of start) {
    at(index).push([record, 1]);
    const last = end.get(record)!;
    if (Number.isFinite(last)) at(last).push([record, -1]);
  }
  extras.push(...keptFrom.values());
  for (const [nodeId, span] of gradientSpans) {
    const node = nodes.get(nodeId);
    const transientBytes = node === undefined ? 0 : rules.extra(node).transientBytes;
    if (transientBytes > 0) extras.push({ ...span, bytes: transientBytes });
  }
  for (const extra of extras) {
    at(extra.from).push([extra.bytes, 1]);
    at(extra.to).push([extra.bytes, -1]);
  }
  const bytes = emptyRoles();
  for (const record of initial) bytes[record.role] += modeledBytes(record, record.role);
  const total = () => MEMORY_ROLES.reduce((sum, role) => sum + bytes[role], 0);
  let peak = total();
  let activationsPeak = bytes.activations;
  for (let index = 0; index < log.length; index++) {
    const changes = deltas.get(index);
    if (changes === undefined) continue;
    // Allocations of an event count before the frees it causes: a kernel's inputs are alive while it writes outputs.
    const apply = (item: BufferRecord | number, sign: 1 | -1) => {
      if (typeof item === 'number') bytes.activations += sign * item;
      else bytes[item.role] += sign * (bytesOverride.get(item) ?? modeledBytes(item, item.role));
    };
    for (const [item, sign] of changes) if (sign === 1) apply(item, 1);
    peak = Math.max(peak, total());
    activationsPeak = Math.max(activationsPeak, bytes.activations);
    for (const [item, sign] of changes) if (sign === -1) apply(item, -1);
  }
  return { peakBytes: Math.round(peak), activationsPeakBytes: Math.round(activationsPeak) };
}

/**
 * The calls of ops the runtime fuses (`rules.fusedOps`): the records internal to each call — forward outputs read
 * only by the call's own ops, and the gradients the call's ops return for those — which the fused kernel never holds,
 * and each call's external inputs, which its gradient keeps.
 */
function fusedCalls(log: readonly LogEvent[], rules: RuntimeRules): { internal: Set<BufferRecord>; inputs: Map<number, BufferRecord[]> } {
  const producedIn = new Map<BufferRecord, number>();
  const consumers = new Map<BufferRecord, Set<number | undefined>>();
  const nodes = new Map<number, TapeNodeInfo>();
  const seen = new Set<BufferRecord>();
  for (const event of log) {
    if (event.kind !== 'node') continue;
    const node = event.node;
    nodes.set(node.id, node);
    const call = node.fused !== undefined && rules.fusedOps.has(node.fused.name) ? node.fused.call : undefined;
    for (const record of Object.values(node.inputs)) {
      if (record === undefined) continue;
      let set = consumers.get(record);
      if (set === undefined) consumers.set(record, (set = new Set()));
      set.add(call);
    }
    // Made by the call: not seen before it (tfjs's op wrappers record alias nodes whose output is their input).
    const inputs = Object.values(node.inputs);
    for (const record of node.outputs) {
      if (record !== undefined && call !== undefined && !seen.has(record) && !inputs.includes(record)) producedIn.set(record, call);
    }
    for (const record of [...Object.values(node.inputs), ...node.outputs]) if (record !== undefined) seen.add(record);
  }
  const internal = new Set<BufferRecord>();
  for (const [record, call] of producedIn) {
    const readers = consumers.get(record);
    if (readers !== undefined && [...readers].every((reader) => reader === call)) internal.add(record);
  }
  const inputs = new Map<number, BufferRecord[]>();
  for (const node of nodes.values()) {
    if (node.fused === undefined || !rules.fusedOps.has(node.fused.name)) continue;
    const list = inputs.get(node.fused.call) ?? [];
    for (const record of Object.values(node.inputs)) {
      if (record !== undefined && producedIn.get(record) !== node.fused.call && !list.includes(record)) list.push(record);
    }
    inputs.set(node.fused.call, list);
  }
  for (const event of log) {
    if (event.kind !== 'gradient' || event.result === undefined || event.input === undefined) continue;
    const node = nodes.get(event.nodeId);
    const target = node?.inputs[event.input];
    if (target !== undefined && internal.has(target)) internal.add(event.result);
  }
  return { internal, inputs };
}

/**
 * The forward tensors the gradient of `node` keeps (rule 1), as the policy's graph holds them: a 16-bit layer's ops
 * read 16-bit copies of their fp32 inputs (virtual records that live until the layer's backward), so the fp32
 * originals are not kept for them.
 */
function keptForGradient(node: TapeNodeInfo, rules: RuntimeRules, needsGradient: NeedsGradient): BufferRecord[] {
  const saved = rules.saved(node, needsGradient).filter((record): record is BufferRecord => record !== undefined);
  return node.isHalf ? saved.filter((record) => record.halfPrecision || record.isVirtual) : saved;
}
