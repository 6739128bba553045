/**
 * What `mpx run`, `plan` and `validate` check before anything runs when a spec asks for `backend: torch`: that a
 * Python with PyTorch exists (else exit 2 naming the install command), and which cells its device cannot run (a
 * warning; such runs are recorded as `unsupported`, never faked).
 */
import type { PythonWorker } from '../runner/engines.js';
import { findTorchPython, TORCH_INSTALL_HINT, torchWorkerOf, type TorchProbe } from '../runner/python.js';
import { locateProblems, type SpecPath } from '../spec/locator.js';
import type { Policy } from '../spec/types.js';
import { cellsOf, type PlannedSpec } from './load-specs.js';

export interface TorchCheck {
  /** The worker to run torch cells with; null when no spec has one. */
  worker: PythonWorker | null;
  probe: TorchProbe | null;
  /** One line per spec and policy that the device cannot run. */
  warnings: string[];
}

/**
 * Finds the torch Python when some cell needs it. With none: `mpx run` (`isRequired`) throws MpxError
 * BACKEND_UNAVAILABLE (exit 2) before anything runs; `plan` and `validate` only warn, since the spec itself is fine.
 */
export async function checkTorch(planned: readonly PlannedSpec[], isRequired = true): Promise<TorchCheck> {
  const needing = planned.filter((p) => cellsOf(p).some((c) => c.backend === 'torch'));
  const first = needing[0];
  if (first === undefined) return { worker: null, probe: null, warnings: [] };
  const search = await findTorchPython();
  if (search.found === null) {
    const tried = search.tried.map((t) => `${t.python}: ${t.reason}`).join('; ');
    const error = locateProblems(
      [
        {
          code: 'BACKEND_UNAVAILABLE',
          path: torchPath(first),
          message: `backend torch needs a Python that can import torch, and none was found (${tried})`,
          hint: `${TORCH_INSTALL_HINT}, or point MPX_PYTHON at a Python that has PyTorch`,
        },
      ],
      first.locator,
    );
    if (isRequired) throw error;
    return { worker: null, probe: null, warnings: [`${error.where}: warning: ${error.message}; mpx run will need it (${error.hint ?? ''})`] };
  }
  const { probe } = search.found;
  return { worker: torchWorkerOf(search.found), probe, warnings: needing.flatMap((p) => unsupportedWarnings(p, probe)) };
}

/** `file:line:col: warning: …` for each policy of a spec's torch cells that the probe says this device cannot run. */
export function unsupportedWarnings(planned: PlannedSpec, probe: TorchProbe): string[] {
  const device = probe.cuda && probe.policies.cuda !== null ? 'cuda' : 'cpu';
  const supported = device === 'cuda' ? probe.policies.cuda! : probe.policies.cpu;
  const reasons = (device === 'cuda' ? probe.reasons.cuda : probe.reasons.cpu) ?? {};
  const counts = new Map<Policy, number>();
  for (const cell of cellsOf(planned)) {
    if (cell.backend === 'torch' && !supported[cell.policy]) counts.set(cell.policy, (counts.get(cell.policy) ?? 0) + 1);
  }
  const at = planned.locator.position(torchPath(planned));
  const where = at === undefined ? planned.spec.file : `${planned.spec.file}:${at.line}:${at.col}`;
  return [...counts].map(
    ([policy, n]) =>
      `${where}: warning: ${n} torch cell(s) with policy ${policy} cannot run on this ${device} (${reasons[policy] ?? 'not supported'}); ` +
      'they are recorded as unsupported',
  );
}

/** Where a spec asks for torch: its matrix's backend axis item, or the top-level backend. */
function torchPath({ spec }: PlannedSpec): SpecPath {
  const index = spec.matrix.backend?.indexOf('torch') ?? -1;
  if (index >= 0) return ['matrix', 'backend', index];
  const included = spec.matrix.include.findIndex((entry) => entry.backend === 'torch');
  return included >= 0 ? ['matrix', 'include', included, 'backend'] : ['backend'];
}
