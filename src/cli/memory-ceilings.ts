/**
 * The memory ceilings of each run of this `mpx run`, from the facts of this machine: the budget (the spec's
 * `memoryLimit` or `--memory-limit`), the engine's addressable memory (the wasm heap where a run lands on wasm), and
 * the worker's share of the machine's memory where the run's tensors live in it (not on a GPU). Pure given the facts,
 * so each combination is tested without the hardware.
 */
import type { RunConfig } from '../matrix/types.js';
import { engineCeiling, type MemoryCeilings } from '../runner/preflight.js';
import { formatByteSize } from '../spec/size.js';

export interface MachineMemoryFacts {
  /** This machine's memory (os.totalmem()). */
  totalBytes: number;
  jobs: number;
  /** `--worker-memory`, overriding total ÷ jobs. */
  workerMemoryBytes: number | null;
  /** `--memory-limit`, overriding each spec's memoryLimit. */
  budgetOverrideBytes: number | null;
  /** @tensorflow/tfjs-node(-gpu) is installed: `auto` runs there, not on wasm. */
  hasTensorflowPackage: boolean;
  /** GPUs nvidia-smi lists (tensorflow runs may put their tensors there). */
  gpuCount: number;
  /** The torch worker's PyTorch sees a CUDA GPU (its tensors live there); false without torch. */
  torchHasCuda: boolean;
}

/** The share one worker may take, and how it was set (for reasons and `mpx env`). */
export function workerMemoryShare(facts: Pick<MachineMemoryFacts, 'totalBytes' | 'jobs' | 'workerMemoryBytes'>): { limitBytes: number; source: string } {
  if (facts.workerMemoryBytes !== null) return { limitBytes: facts.workerMemoryBytes, source: '--worker-memory' };
  return {
    limitBytes: Math.floor(facts.totalBytes / facts.jobs),
    source: `${formatByteSize(facts.totalBytes)} total ÷ ${facts.jobs} job${facts.jobs === 1 ? '' : 's'}`,
  };
}

export function createMemoryCeilings(facts: MachineMemoryFacts): (run: RunConfig) => MemoryCeilings {
  const share = workerMemoryShare(facts);
  return (run) => {
    const lands = run.backend === 'auto' ? (facts.hasTensorflowPackage ? 'tensorflow' : 'wasm') : run.backend;
    const isOnHost = lands === 'wasm' || lands === 'cpu' || (lands === 'tensorflow' && facts.gpuCount === 0) || (lands === 'torch' && !facts.torchHasCuda);
    return {
      budgetBytes: facts.budgetOverrideBytes ?? run.memoryLimitBytes,
      engine: engineCeiling(lands),
      workerShare: isOnHost ? share : null,
    };
  };
}
