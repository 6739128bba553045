/**
 * What `results/<name>.meta.json` says about how the results were produced, so a diff between two CSVs can be read
 * against the machines and versions behind them. `collectMetadata` is pure (the caller gathers the facts);
 * `readProvenance` is the one part that runs processes.
 */
import { execa } from 'execa';
import type { RunRecord, RunStatus } from '../runner/protocol.js';
import type { BackendName } from '../spec/types.js';
import { STATUS_SEVERITY } from './aggregate.js';

/** The git state of the working tree the runs were started from. */
export interface Provenance {
  /** Full hash of HEAD. */
  commit: string;
  /** Tracked files differ from HEAD (untracked files, such as fresh results, do not count); null if unknown. */
  dirty: boolean | null;
}

export interface MetadataInput {
  mpxVersion: string;
  /** `process.version`. */
  nodeVersion: string;
  /** Package name → version of the tfjs packages in use, e.g. `{ '@tensorflow/tfjs-core': '4.22.0' }`. */
  tfjsVersions: Readonly<Record<string, string>>;
  /** `os.cpus()` (only `model` is read; the length is the core count). */
  cpus: ReadonlyArray<{ model: string }>;
  /** GPU description, null when none was used. */
  gpu: string | null;
  /** From `readProvenance`; null outside a git checkout. */
  provenance: Provenance | null;
  spec: { name: string; file: string; sha256: string };
  /** When the results were produced. */
  date: Date;
  /** Runs the plan has (cells × repeats). */
  plannedRuns: number;
  /** The records written alongside (the source of the backends and the counts). */
  records: readonly RunRecord[];
}

export interface RunMetadata {
  mpxVersion: string;
  nodeVersion: string;
  tfjsVersions: Record<string, string>;
  /** Backends that ran at least one recorded run, sorted. */
  backends: BackendName[];
  /** Unique CPU model names joined with ` | ` (null if the OS reports none), and logical core count. */
  cpu: { model: string | null; cores: number };
  gpu: string | null;
  git: Provenance | null;
  spec: { name: string; file: string; sha256: string };
  /** ISO 8601, UTC. */
  date: string;
  runs: { planned: number; recorded: number } & Record<RunStatus, number>;
}

export function collectMetadata(input: MetadataInput): RunMetadata {
  const byStatus = Object.fromEntries(STATUS_SEVERITY.map((s) => [s, 0])) as Record<RunStatus, number>;
  for (const record of input.records) byStatus[record.status] += 1;

  const backends = new Set<BackendName>();
  for (const record of input.records) if (record.backend !== null) backends.add(record.backend);

  const cpuModels = [...new Set(input.cpus.map((c) => c.model.trim()).filter((m) => m !== ''))];

  return {
    mpxVersion: input.mpxVersion,
    nodeVersion: input.nodeVersion,
    tfjsVersions: Object.fromEntries(Object.entries(input.tfjsVersions).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    backends: [...backends].sort(),
    cpu: { model: cpuModels.length === 0 ? null : cpuModels.join(' | '), cores: input.cpus.length },
    gpu: input.gpu,
    git: input.provenance === null ? null : { ...input.provenance },
    spec: { name: input.spec.name, file: input.spec.file, sha256: input.spec.sha256 },
    date: input.date.toISOString(),
    runs: { planned: input.plannedRuns, recorded: input.records.length, ...byStatus },
  };
}

const GIT_TIMEOUT_MS = 10_000;

/**
 * HEAD's commit and whether tracked files are modified, for the checkout containing `cwd`. Never throws: null when
 * git is not installed, `cwd` is not in a repository, or git fails. `dirty` ignores untracked files (as
 * `git describe --dirty` does) so results written by an earlier run do not mark the tree dirty.
 */
export async function readProvenance(cwd: string): Promise<Provenance | null> {
  try {
    const git = (args: string[]) => execa('git', args, { cwd, reject: false, timeout: GIT_TIMEOUT_MS, stdin: 'ignore' });
    const head = await git(['rev-parse', '--verify', 'HEAD']);
    const commit = typeof head.stdout === 'string' ? head.stdout.trim() : '';
    if (head.failed || !/^[0-9a-f]{40,64}$/.test(commit)) return null;
    const status = await git(['status', '--porcelain', '--untracked-files=no']);
    const dirty = status.failed || typeof status.stdout !== 'string' ? null : status.stdout.trim() !== '';
    return { commit, dirty };
  } catch {
    return null;
  }
}
