/**
 * The memory report of one measurement window, from its event log: the log holds every allocation, free and role
 * change of one training update, in order, and the ops that ran (what each kernel read, each tape node, each step of
 * the backward pass). Replaying the allocations and frees as tfjs made them gives the measured peak and its breakdown
 * by role, and the peak of the policy's memory model (16-bit activations at 2 bytes, plus virtual 16-bit working
 * copies); `liveness.ts` replays the same log with the lifetimes TensorFlow would give the tensors.
 */
export const MEMORY_ROLES = ['parameters', 'gradients', 'optimizer', 'accumulators', 'activations', 'other'] as const;
export type MemoryRole = (typeof MEMORY_ROLES)[number];
export type RoleBytes = Record<MemoryRole, number>;

/** What a new buffer is, decided by who allocates it (the training loop sets it around each phase). */
export interface AllocationContext {
  role: MemoryRole;
  /** Keras would hold this tensor in 16 bits under the run's policy (activations of a 16-bit layer). */
  halfPrecision: boolean;
  /** Layer index for forward/backward buffers (the loss is layers.length); null elsewhere. */
  layer: number | null;
  /**
   * The buffer is part of a variable update (optimizer, gradient accumulation): TensorFlow's ResourceApply* and
   * AssignAdd kernels update in place, so the TF-liveness model does not count it. @default false
   */
  isUpdate?: boolean;
  /**
   * The buffer exists only because of how tfjs composes an op (tf.where materialising a broadcast scalar, which
   * TensorFlow's SelectV2 and PyTorch's where broadcast inside the kernel): measured, but not in the runtime replays.
   * @default false
   */
  isTfjsOnly?: boolean;
  /** The ops recorded now compose one call of a Keras-level op that a runtime may run as one kernel (TapeNodeInfo.fused). */
  fused?: FusedOp;
}

/** One call of a Keras-level op made of several tfjs ops, which a runtime may run as one kernel (PyTorch's F.gelu). */
export interface FusedOp {
  name: string;
  /** Distinguishes calls: the ops of one call share it. */
  call: number;
}

export interface MemoryReport {
  /** Live bytes when the window opened: the state kept between updates. */
  restingBytes: number;
  peakBytes: number;
  /** Bytes per role at the moment of `peakBytes`. */
  peakByRole: RoleBytes;
  /** The largest activation bytes at any moment of the window (activations and activation gradients). */
  activationsPeakBytes: number;
  /** Peak of the policy's memory model (equals peakBytes for float32). */
  peakModeledBytes: number;
  activationsPeakModeledBytes: number;
  /** Peak under the policy with the lifetimes TensorFlow would give the same tensors (`liveness.ts`). */
  peakTfModeledBytes: number;
  activationsPeakTfModeledBytes: number;
  /** The same replay with PyTorch's rules (`runtime-rules.ts`): what the torch engine should measure. */
  peakTorchModeledBytes: number;
}

/** One buffer (or virtual 16-bit copy) seen during a window. */
export interface BufferRecord {
  bytes: number;
  /** A float tensor: only these shrink to 2 bytes per element in a 16-bit layer (bool masks and int ids do not). */
  isFloat: boolean;
  /**
   * A policy cast (`policy-cast.ts`): in tfjs's measured bytes the same buffer as this record (the fp32 graph has no
   * cast), in the modeled replays a tensor of its own.
   */
  measuredAliasOf?: BufferRecord;
  /** Role from the first event on; a retroactive retag (gradients) rewrites it. */
  role: MemoryRole;
  halfPrecision: boolean;
  /** Virtual records exist only in the model: they have modeled bytes and no measured bytes. */
  isVirtual: boolean;
  /** Role during replay. */
  replayRole: MemoryRole;
  /** Allocated by a variable update (see AllocationContext.isUpdate). */
  isUpdate: boolean;
  /** Allocated before the backward pass began (a forward value, the input batch), or during or after it. */
  isForward: boolean;
  /**
   * A temporary of one kernel or of one gradient: allocated and dropped inside it, never handed on. TensorFlow's
   * kernels (cuBLAS, cuDNN, the fused *Grad kernels) do not hold such tensors, so the TF-liveness model skips them.
   */
  isTemporary: boolean;
}

/** A recorded op of the forward pass (a tfjs tape node): what TensorFlow's gradient of it would keep. */
export interface TapeNodeInfo {
  id: number;
  kernelName: string;
  /** The layer it belongs to and whether that layer computes in 16 bits under the policy. */
  layer: number | null;
  isHalf: boolean;
  inputs: Record<string, BufferRecord | undefined>;
  outputs: Array<BufferRecord | undefined>;
  /** What tfjs saved for the gradient (its registration's inputsToSave / outputsToSave). */
  saved: Array<BufferRecord | undefined>;
  /** The kernel's attributes (strides, padding, …) and its inputs' shapes, for rules that depend on them. */
  attrs: Readonly<Record<string, unknown>>;
  inputShapes: Readonly<Record<string, readonly number[]>>;
  /** The Keras-level op call this node is part of, when a runtime may run that op as one kernel. */
  fused?: FusedOp;
}

export type LogEvent =
  | { kind: 'alloc'; record: BufferRecord }
  | { kind: 'free'; record: BufferRecord }
  | { kind: 'retag'; record: BufferRecord; role: MemoryRole }
  /** A kernel finished; it read these buffers (they were alive until it did). */
  | { kind: 'kernel'; reads: BufferRecord[] }
  /** An op was recorded on the tape during the forward pass. */
  | { kind: 'node'; node: TapeNodeInfo }
  /** The gradient of a tape node begins: from here on the backward pass runs. */
  | { kind: 'gradient-start'; nodeId: number }
  /** One gradient function of a tape node finished (the node's saved tensors were needed until now); `result` is what it returned for input `input`. */
  | { kind: 'gradient'; nodeId: number; input?: string; result?: BufferRecord }
  /** A backward pass is over (with accumulation, another micro-batch's forward pass may follow). */
  | { kind: 'backward-end' };


/** The bytes the policy would give a buffer in this role: 16-bit activations at 2 bytes per element, virtual copies as they are. */
export function modeledBytes(record: BufferRecord, role: MemoryRole): number {
  if (record.isVirtual) return record.bytes;
  return role === 'activations' && record.halfPrecision && record.isFloat ? record.bytes / 2 : record.bytes;
}

export function emptyRoles(): RoleBytes {
  return { parameters: 0, gradients: 0, optimizer: 0, accumulators: 0, activations: 0, other: 0 };
}

/** Replays a window's log in order: measured and modeled totals, their peaks, and the roles at the peak. */
export function replay(initial: BufferRecord[], log: LogEvent[], restingBytes: number): Omit<MemoryReport, 'peakTfModeledBytes' | 'activationsPeakTfModeledBytes' | 'peakTorchModeledBytes'> {
  const measured = emptyRoles();
  const modeled = emptyRoles();
  /** Live members of each measured buffer: a policy cast shares its source's (the fp32 graph holds one buffer). */
  const members = new Map<BufferRecord, number>();
  const rootOf = (record: BufferRecord): BufferRecord => {
    let root = record;
    while (root.measuredAliasOf !== undefined) root = root.measuredAliasOf;
    return root;
  };
  const measure = (record: BufferRecord, sign: 1 | -1) => {
    if (record.isVirtual) return;
    const root = rootOf(record);
    const count = (members.get(root) ?? 0) + sign;
    if ((sign === 1 && count === 1) || (sign === -1 && count === 0)) measured[root.replayRole] += sign * root.bytes;
    if (count === 0) members.delete(root);
    else members.set(root, count);
  };
  const apply = (record: BufferRecord, role: MemoryRole, sign: 1 | -1) => {
    measure(record, sign);
    modeled[role] += sign * modeledBytes(record, role);
  };
  // Buffers alive when the window opened start in their (possibly retroactively corrected) role.
  for (const record of initial) {
    record.replayRole = record.role;
    apply(record, record.role, 1);
  }
  const sum = (bytes: RoleBytes) => MEMORY_ROLES.reduce((total, role) => total + bytes[role], 0);
  let peakBytes = sum(measured);
  let peakByRole = { ...measured };
  let peakModeledBytes = sum(modeled);
  let activationsPeakBytes = measured.activations;
  let activationsPeakModeledBytes = modeled.activations;
  for (const event of log) {
    if (event.kind !== 'alloc' && event.kind !== 'free' && event.kind !== 'retag') continue;
    const { record } = event;
    if (event.kind === 'alloc') {
      record.replayRole = record.role;
      apply(record, record.role, 1);
    } else if (event.kind === 'free') {
      apply(record, record.replayRole, -1);
    } else {
      // A retag moves a whole buffer between roles (casts are never retagged).
      if (!record.isVirtual) {
        measured[record.replayRole] -= record.bytes;
        measured[event.role] += record.bytes;
      }
      modeled[record.replayRole] -= modeledBytes(record, record.replayRole);
      record.replayRole = event.role;
      modeled[event.role] += modeledBytes(record, event.role);
    }
    const total = sum(measured);
    if (total > peakBytes) {
      peakBytes = total;
      peakByRole = { ...measured };
    }
    peakModeledBytes = Math.max(peakModeledBytes, sum(modeled));
    activationsPeakBytes = Math.max(activationsPeakBytes, measured.activations);
    activationsPeakModeledBytes = Math.max(activationsPeakModeledBytes, modeled.activations);
  }
  return {
    restingBytes,
    peakBytes,
    peakByRole,
    activationsPeakBytes,
    peakModeledBytes: Math.round(peakModeledBytes),
    activationsPeakModeledBytes: Math.round(activationsPeakModeledBytes),
  };
}
